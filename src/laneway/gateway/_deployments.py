"""Deployments at run time: adapter, circuit breaker, hosting, catalog entry, price; the
name table that resolves a request's ``model``; candidate selection inside a tier."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from laneway.catalog import Catalog, ModelInfo
from laneway.errors import (
    CircuitOpen,
    ContextLengthExceeded,
    LanewayError,
    ModelNotFound,
    NoDeploymentAvailable,
    UnsupportedParameter,
)
from laneway.governance import on_private_network
from laneway.providers import ChatModel, ChatRequest, prompt_upper_bound, vendor_for
from laneway.resilience import CircuitBreaker, Trace
from laneway.settings import DeploymentSettings, LocalModelSettings, Settings

__all__ = ["Deployment", "Prices", "Resolution", "Resolver", "select_candidates"]


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens for one deployment; ``None`` = unknown."""

    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    cached_input_per_mtok: Decimal | None
    source: str
    cache_write_input_per_mtok: Decimal | None = None  # 5-minute cache writes
    cache_write_1h_input_per_mtok: Decimal | None = None


@dataclass(slots=True)
class Deployment:
    settings: DeploymentSettings
    adapter: ChatModel
    breaker: CircuitBreaker
    hosting: str
    info: ModelInfo | None
    prices: Prices | None
    hourly_cost: Decimal | None
    provider_names: tuple[str, ...] = ()
    disabled_reason: str | None = None

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def model_id(self) -> str:
        return self.info.id if self.info is not None else self.settings.model

    @property
    def amortised(self) -> bool:
        return self.hosting in ("self_hosted", "embedded")


def hosting_of(settings: DeploymentSettings) -> str:
    if settings.hosting is not None:
        return settings.hosting
    if settings.provider == "local":
        return "embedded"
    vendor = vendor_for(settings)
    if vendor is not None:
        return vendor.hosting
    # an OpenAI-compatible server of no known vendor: one's own only where it is priced by
    # the hour or on a private network; else anyone's API (sensitive data never goes there)
    if settings.hourly_cost_usd is not None or on_private_network(settings.api_base or ""):
        return "self_hosted"
    return "serverless"


def prices_of(settings: DeploymentSettings, info: ModelInfo | None) -> Prices | None:
    if settings.price is not None:
        p = settings.price
        return Prices(
            p.input_per_mtok,
            p.output_per_mtok,
            p.cached_input_per_mtok,
            "config",
            p.cache_write_input_per_mtok,
            p.cache_write_1h_input_per_mtok,
        )
    if info is None:
        return None
    vendor = vendor_for(settings)
    key = vendor.id if vendor is not None else settings.provider
    price = info.price_for(key)
    if price is None:
        return None
    return Prices(
        price.input_per_mtok,
        price.output_per_mtok,
        price.cached_input_per_mtok,
        f"catalog:{price.source}@{price.date}",
        price.cache_write_input_per_mtok,
        price.cache_write_1h_input_per_mtok,
    )


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a request's ``model`` named: the deployments to try, in order."""

    deployments: tuple[str, ...]
    tier: str | None
    reason: str


_CACHE_LIMIT = 1024


class Resolver:
    """Resolves ``model`` in the documented order: deployment name → catalog model id or
    alias → ``tier:<name>`` (``auto`` is added by the router)."""

    def __init__(self, settings: Settings, deployments: Mapping[str, Deployment]) -> None:
        self._tiers = {name: tuple(members) for name, members in settings.tiers.items()}
        tier_of: dict[str, str] = {}
        for tier, members in self._tiers.items():
            for member in members:
                tier_of.setdefault(member, tier)
        self._tier_of = tier_of
        by_model: dict[str, list[str]] = {}
        for deployment in deployments.values():
            keys = {deployment.settings.model.lower()}
            if deployment.info is not None:
                keys.add(deployment.info.id.lower())
                keys.update(a.lower() for a in deployment.info.aliases)
            for key in keys:
                by_model.setdefault(key, []).append(deployment.name)
        self._by_model = {k: tuple(v) for k, v in by_model.items()}
        self._deployments = tuple(deployments)
        self._resolved: dict[str, Resolution] = {}

    @property
    def tiers(self) -> Mapping[str, tuple[str, ...]]:
        return self._tiers

    def model_names(self) -> tuple[str, ...]:
        return tuple(sorted(set(self._by_model) - set(self._deployments)))

    def resolve(self, model: str) -> Resolution:
        """What ``model`` names. Answers depend on the config only, so they are cached;
        names that do not resolve are never kept, and the cache stops growing at
        ``_CACHE_LIMIT`` names (catalog ids match in any letter case)."""
        cached = self._resolved.get(model)
        if cached is not None:
            return cached
        resolution = self._resolve(model)
        if len(self._resolved) < _CACHE_LIMIT:
            self._resolved[model] = resolution
        return resolution

    def _resolve(self, model: str) -> Resolution:
        if model in self._deployments:
            return Resolution((model,), self._tier_of.get(model), f"deployment:{model}")
        found = self._by_model.get(model.lower())
        if found is not None:
            return Resolution(found, self._tier_of.get(found[0]), f"model:{model}")
        if model.startswith("tier:"):
            tier = model[5:]
            members = self._tiers.get(tier)
            if members:
                return Resolution(members, tier, f"tier:{tier}")
        auto = ("auto", "auto:<profile>") if self._tiers else ()  # routed by the gateway
        valid = [
            *self._deployments,
            *(f"tier:{t}" for t in self._tiers),
            *auto,
            *self.model_names(),
        ]
        raise ModelNotFound(
            f"model {model!r} is not served here; valid names: {', '.join(valid)}",
            param="model",
        )


class _PromptSize:
    """The request's estimated size, computed at most once per request (it serialises the
    messages) and only when some deployment has a context window to compare with."""

    __slots__ = ("_request", "_tokens")

    def __init__(self, request: ChatRequest) -> None:
        self._request = request
        self._tokens: int | None = None

    @property
    def tokens(self) -> int:
        if self._tokens is None:
            request = self._request
            self._tokens = prompt_upper_bound(request) + (request.max_tokens or 0)
        return self._tokens


def _capability_gap(deployment: Deployment, request: ChatRequest, size: _PromptSize) -> str | None:
    info = deployment.info
    if info is None:
        return None
    caps = info.capabilities
    if request.tools and caps.tools is False:
        return "model does not support tools"
    if request.has_images and caps.images is False:
        return "model does not accept images"
    if request.json_schema is not None and caps.json_schema is False:
        return "model does not support JSON schema output"
    window = caps.context_window
    if deployment.settings.provider == "local":  # llama.cpp runs with its own n_ctx
        n_ctx = (deployment.settings.local or LocalModelSettings()).n_ctx
        window = n_ctx if window is None else min(window, n_ctx)
    if window is not None:
        needed = size.tokens
        if needed > window:
            return f"{_CONTEXT}: request (~{needed} tokens) exceeds the context window ({window})"
    return None


_CONTEXT = "context too long"


def select_candidates(
    names: Sequence[str],
    deployments: Mapping[str, Deployment],
    request: ChatRequest,
    trace: Trace,
) -> list[Deployment]:
    """The deployments to try in order: those that cannot serve the request, and those
    whose circuit is open (or whose one half-open probe is out), are skipped with the
    reason recorded in ``trace``. When only circuit-open ones could serve it, fail fast
    with :class:`~laneway.errors.CircuitOpen` (503, Retry-After until the first probe)."""
    ready: list[Deployment] = []
    tripped: list[Deployment] = []
    refusals: list[LanewayError] = []
    size = _PromptSize(request)
    for name in names:
        deployment = deployments[name]
        gap = _capability_gap(deployment, request, size)
        if gap is not None:
            trace.skipped.append((name, gap))
            refusal = ContextLengthExceeded if gap.startswith(_CONTEXT) else UnsupportedParameter
            refusals.append(refusal(f"{name}: {gap}"))
            continue
        try:
            deployment.adapter.check(request)
        except UnsupportedParameter as exc:
            trace.skipped.append((name, exc.message))
            refusals.append(exc)
            continue
        if deployment.breaker.allows():
            ready.append(deployment)
        else:
            trace.skipped.append((name, "circuit open"))
            tripped.append(deployment)
    if ready:
        return ready
    if tripped:
        names_open = ", ".join(d.name for d in tripped)
        raise CircuitOpen(
            f"every deployment that could serve this request is failing (circuit open: "
            f"{names_open}); try again later",
            retry_after=min(d.breaker.retry_after() for d in tripped),
        )
    if len(refusals) == 1 or all(isinstance(r, ContextLengthExceeded) for r in refusals):
        if len(refusals) > 1:
            raise ContextLengthExceeded(
                "the request is too long for every deployment: "
                + "; ".join(e.message for e in refusals)
            )
        raise refusals[0]
    if refusals:
        raise UnsupportedParameter(
            "no deployment can serve this request: " + "; ".join(e.message for e in refusals)
        )
    raise NoDeploymentAvailable("no deployment is available for this request")


def load_deployments(
    settings: Settings,
    catalog: Catalog,
    adapters: Mapping[str, ChatModel],
    make_breaker: type[CircuitBreaker] = CircuitBreaker,
) -> dict[str, Deployment]:
    result: dict[str, Deployment] = {}
    for spec in settings.deployments:
        info = catalog.get(spec.model)
        hosting = hosting_of(spec)
        vendor = vendor_for(spec)
        providers = (spec.provider,) + ((vendor.id,) if vendor is not None else ())
        result[spec.name] = Deployment(
            settings=spec,
            adapter=adapters[spec.name],
            breaker=make_breaker(settings.circuit),
            hosting=hosting,
            info=info,
            # self-hosted deployments are amortised by the hour unless given token prices
            prices=(
                prices_of(spec, info)
                if spec.price is not None or hosting not in ("self_hosted", "embedded")
                else None
            ),
            hourly_cost=spec.hourly_cost_usd,
            provider_names=tuple(dict.fromkeys(providers)),
        )
    return result
