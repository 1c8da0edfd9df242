"""Governance settings: sensitive-data routing, license / origin policy, output checks."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "FAST_KINDS",
    "NER_KINDS",
    "CustomDetector",
    "InjectionPolicy",
    "KeyPolicy",
    "PolicySettings",
    "SensitiveAction",
    "SensitivePolicy",
]

SensitiveAction = Literal["self_hosted_only", "block", "redact", "allow"]

# The fast default detectors (regex + validators) and the opt-in named-entity kinds.
FAST_KINDS = (
    "email",
    "phone",
    "national_id",
    "payment_card",
    "iban",
    "ip_address",
    "date_of_birth",
    "api_key",
    "jwt",
    "private_key",
)
NER_KINDS = ("person", "location", "organization")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CustomDetector(_Frozen):
    """A team's own detector: a regular expression plus an optional check digit."""

    kind: str
    pattern: str
    validator: Literal["none", "luhn", "mod97"] = "none"
    ignore_case: bool = False

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if not _KIND.match(value):
            raise ValueError("kind: lowercase letters, digits and _, starting with a letter")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None
        return value


class SensitivePolicy(_Frozen):
    """What counts as sensitive and what happens to a request that contains it.

    ``self_hosted_only`` (default) routes it to self-hosted / embedded deployments only and
    fails closed (503 ``no_private_route``); ``block`` refuses it (403); ``redact`` replaces
    the values with typed placeholders before an external call and restores them in the
    answer; ``allow`` only records the finding in the audit."""

    action: SensitiveAction = "self_hosted_only"
    kinds: tuple[str, ...] | None = None  # None = every fast kind, custom and (if on) NER kind
    ner: bool = False
    custom: tuple[CustomDetector, ...] = ()


class InjectionPolicy(_Frozen):
    flag: bool = True
    block: bool = False


class PolicySettings(_Frozen):
    sensitive: SensitivePolicy = SensitivePolicy()
    allowed_licenses: tuple[str, ...] = ()  # SPDX / named ids or licence classes; empty = any
    denied_origins: tuple[str, ...] = ()  # ISO-3166 alpha-2 codes of the model's maker
    require_open_weights: bool = False
    output_scan: bool = False  # flag secrets / sensitive values coming back from external models
    redact_output: bool = False
    injection: InjectionPolicy = InjectionPolicy()
    deprecation_warning_days: int = Field(default=30, ge=0)

    @field_validator("denied_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for code in value:
            if not re.fullmatch(r"[A-Za-z]{2}", code):
                raise ValueError(f"{code!r} is not an ISO-3166 alpha-2 country code")
        return tuple(code.upper() for code in value)


class KeyPolicy(_Frozen):
    """Per-key overrides of the global policy (stored with the key)."""

    sensitive_action: SensitiveAction | None = None
    sensitive_deployments: tuple[str, ...] = ()  # external deployments this key may send
    # sensitive data to (e.g. a vendor under a BAA)
    allowed_licenses: tuple[str, ...] | None = None
    denied_origins: tuple[str, ...] | None = None
    require_open_weights: bool | None = None
