"""Typed, immutable settings: YAML file + environment, validated once at start-up."""

from laneway.settings._load import (
    Vendor,
    default_settings,
    find_config,
    load_settings,
    resolve_secret,
    vendors,
)
from laneway.settings._model import (
    DEFAULT_TIERS,
    CircuitSettings,
    DatabaseSettings,
    DeploymentSettings,
    Hosting,
    LedgerSettings,
    LocalModelSettings,
    PriceOverride,
    ProviderKind,
    RetrySettings,
    ServerSettings,
    Settings,
    TimeoutSettings,
)

__all__ = [
    "DEFAULT_TIERS",
    "CircuitSettings",
    "DatabaseSettings",
    "DeploymentSettings",
    "Hosting",
    "LedgerSettings",
    "LocalModelSettings",
    "PriceOverride",
    "ProviderKind",
    "RetrySettings",
    "ServerSettings",
    "Settings",
    "TimeoutSettings",
    "Vendor",
    "default_settings",
    "find_config",
    "load_settings",
    "resolve_secret",
    "vendors",
]
