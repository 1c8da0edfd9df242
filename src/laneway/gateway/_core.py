"""The gateway: its state (deployments, governance, ledger, metrics, router, shadow) and
the two entry points a protocol calls once per request, :meth:`Gateway.complete` and
:meth:`Gateway.stream`. What happens inside them (admit → route → policy filter →
candidates → call → account → ledger) is here and in ``_life`` / ``_records``."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping
from decimal import Decimal

import orjson
from sqlalchemy import Engine

from laneway.catalog import Catalog
from laneway.errors import (
    LanewayError,
    ModelNotFound,
    NoDeploymentAvailable,
    UpstreamError,
)
from laneway.gateway import _embed, _life, _records, _relay
from laneway.gateway._cascade import replay_stream, run_cascade
from laneway.gateway._context import CallOutcome, RequestContext
from laneway.gateway._deployments import Deployment, Resolution, Resolver, select_candidates
from laneway.gateway._embed import EmbedRequest
from laneway.gateway._metrics import Metrics
from laneway.gateway._relay import RelayOutcome, RelayRequest
from laneway.gateway._secrets import KeyScrubber, deployment_secrets, scrub_literals
from laneway.gateway._shadow import ShadowMirror
from laneway.governance import (
    PRIVATE_HOSTING,
    Governance,
    RedactingModel,
    SchemaCheckedModel,
)
from laneway.ledger import LedgerWriter, token_cost
from laneway.providers import (
    ChatModel,
    ChatRequest,
    ChatResult,
    StreamDelta,
    UpstreamClient,
    Usage,
    estimate_completion_tokens,
    estimate_prompt_tokens,
    estimate_usage,
)
from laneway.resilience import (
    Candidate,
    CircuitState,
    FallbackModel,
    RetryBudget,
    RetryingModel,
)
from laneway.router import Router
from laneway.settings import Settings

__all__ = ["OFFLOAD_SCAN_FROM", "Gateway"]

log = logging.getLogger("laneway.gateway")

# Characters of request text above which governance (the sensitive-data scan) runs in a
# worker thread: ~32 KB scans in a few ms; smaller requests keep the cheaper inline call.
OFFLOAD_SCAN_FROM = 32_768


class Gateway:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        deployments: Mapping[str, Deployment],
        ledger: LedgerWriter | None,
        metrics: Metrics,
        governance: Governance,
        *,
        upstream: UpstreamClient | None = None,
        owns_upstream: bool = False,
        engine: Engine | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine  # the ledger's database (others keep their tables there too)
        self.catalog = catalog
        self.deployments = dict(deployments)
        self.resolver = Resolver(settings, self.deployments)
        self._candidates = {  # immutable, so built once rather than per request
            name: Candidate(name, d.adapter, d.breaker) for name, d in self.deployments.items()
        }
        self.ledger = ledger
        self.metrics = metrics
        self.governance = governance
        self.router: Router | None = None
        self.shadow: ShadowMirror | None = None  # shadow copies to candidate deployments
        metrics.circuit_open = self._circuit_gauges
        metrics.inflight = lambda: self.inflight
        self.inflight = 0
        self.retry_budget = RetryBudget(settings.retry)
        self.started_at = time.time()
        self._id_prefix = secrets.token_hex(8)
        self._ids = itertools.count(1)
        self._upstream = upstream
        self._owns_upstream = owns_upstream
        self._secrets = deployment_secrets(self.deployments.values())
        self._scrub_key_shapes = KeyScrubber()

    async def start(self) -> None:
        """Start the ledger writer and load embedded models (off the event loop)."""
        if self.ledger is not None:
            self.ledger.start()
        if self.shadow is not None:
            self.shadow.start()
        loop = asyncio.get_running_loop()
        from laneway.governance import pin_problem

        for d in self.deployments.values():
            problem = await loop.run_in_executor(None, pin_problem, d.settings)
            if problem is not None:
                d.disabled_reason = problem
                self.governance.invalidate()
                log.error("deployment %s disabled: %s", d.name, problem)
                continue
            load = getattr(d.adapter, "load", None)
            if load is not None:
                await loop.run_in_executor(None, load)

    async def aclose(self) -> None:
        """Stop embedded models, close the upstream client, flush the ledger."""
        if self.shadow is not None:
            await self.shadow.stop()
        for d in self.deployments.values():
            close = getattr(d.adapter, "close", None)
            if close is not None:
                close()
        if self._owns_upstream and self._upstream is not None:
            await self._upstream.close()
        if self.ledger is not None:
            self.ledger.close()
        kills = self.governance.kills
        if kills is not None:
            kills.stop()

    def _circuit_gauges(self) -> dict[str, int]:
        return {
            name: 1 if d.breaker.state is CircuitState.OPEN else 0
            for name, d in self.deployments.items()
        }

    # -- the entry points: one call per request ---------------------------------------
    def new_request_id(self) -> str:
        """Unique without a system call per request (os.urandom costs ~90 µs in some
        sandboxes): a random per-process prefix and a counter."""
        return f"chatcmpl-{self._id_prefix}{next(self._ids):08x}"

    # Answer a request in full and record it (``await gateway.complete(ctx, request)``):
    # never raises ``LanewayError`` (a failure is the outcome's ``error``, safe to show the
    # client); raises ``CancelledError`` only when ``ctx.client_gone`` (the request is
    # recorded). The function itself, not a method wrapping it: one call less a request.
    complete = _life.complete

    def stream(
        self, ctx: RequestContext, request: ChatRequest
    ) -> AsyncGenerator[StreamDelta | CallOutcome, None]:
        """Stream the answer to ``request``: the deltas worth sending, then one final
        :class:`CallOutcome` (finish reason, usage and cost, or the error). A failure
        before the first delta is an outcome as the first item. The request is recorded
        when the generator ends or is closed (close it: ``close_stream``)."""
        return _life.stream(self, ctx, request)

    def embed(self, ctx: RequestContext, request: EmbedRequest) -> Awaitable[CallOutcome]:
        """Embed ``request.texts`` and record the request; as :meth:`complete`."""
        return _embed.embed(self, ctx, request)

    def relay(self, ctx: RequestContext, request: RelayRequest) -> Awaitable[RelayOutcome]:
        """Relay ``request`` to a Responses API deployment and record it; as
        :meth:`complete` (``outcome.response`` is the upstream's answer)."""
        return _relay.relay(self, ctx, request)

    def relay_stream(
        self, ctx: RequestContext, request: RelayRequest
    ) -> Awaitable[CallOutcome | AsyncGenerator[bytes | LanewayError, None]]:
        """Open a relayed Responses stream: a recorded refusal, or the upstream's events
        byte for byte (then the error, when it fails after the start); the request is
        recorded when that generator ends or is closed (``close_stream``)."""
        return _relay.relay_stream(self, ctx, request)

    def finish(self, ctx: RequestContext, outcome: CallOutcome) -> None:
        """Record one request (metrics, ledger rows, budget settlement); never raises."""
        _records.finish(self, ctx, outcome)

    def record_refused(
        self,
        error: LanewayError,
        *,
        request_id: str | None = None,
        key_id: str | None = None,
        client: str | None = None,
        path: str = "",
    ) -> None:
        """Ledger (and so audit) row for a request refused before it was parsed."""
        _records.record_refused(
            self, error, request_id=request_id, key_id=key_id, client=client, path=path
        )

    def sanitize(self, exc: LanewayError) -> LanewayError:
        """Upstream error messages may echo the prompt or the gateway's own upstream key:
        replace every configured deployment key (also one cut off at the end of the
        message), any key-shaped token and any detected sensitive value before the
        message reaches the client."""
        message = scrub_literals(exc.message, self._secrets)
        upstream = isinstance(exc, UpstreamError)
        if upstream or self.governance.scanner.scan_text(message):
            from laneway.governance import redact_text

            message = redact_text(message, self.governance.scanner)
        if upstream:
            message = self._scrub_key_shapes(message)
        if message != exc.message:
            exc.message = message
            exc.args = (message,)  # str(exc) in a log line must not carry the key either
        return exc

    # -- admit, route, filter: the chain of candidates ------------------------------------
    async def _govern(self, ctx: RequestContext, request: ChatRequest) -> list[Deployment]:
        """Governance before routing: scan, rate limit, policy / kill / sensitive filters,
        capability selection and the budget reservation. Raises the client's error."""
        governance = self.governance
        long_text = _text_size(request) > OFFLOAD_SCAN_FROM  # must not stall the loop
        if long_text:
            admission = await asyncio.to_thread(governance.admit, request, ctx.key)
        else:
            admission = governance.admit(request, ctx.key)
        ctx.admission = admission
        key = ctx.key
        store = governance.store
        if key is not None and (key.rpm or key.tpm) and store is not None:
            estimate = len(request.messages) and _estimate_tokens(request)
            await asyncio.to_thread(store.take_rate, key, estimate)
        if long_text and _is_auto(request.model):  # the router reads all of it too
            resolution = await asyncio.to_thread(self._resolve, ctx, request)
        else:
            resolution = self._resolve(ctx, request)
        ctx.resolution = resolution
        names = governance.filter(resolution.deployments, resolution.tier, request.model, admission)
        probe = admission.redacted if admission.redacted is not None else request
        chosen = select_candidates(names, self.deployments, probe, ctx.trace)
        if key is not None and key.budget_usd is not None and store is not None:
            amount = governance.max_cost(request, [d.name for d in chosen])
            ctx.reservation = await asyncio.to_thread(store.reserve, key, amount)
        return chosen

    def _resolve(self, ctx: RequestContext, request: ChatRequest) -> Resolution:
        model = request.model
        if not _is_auto(model):
            return self.resolver.resolve(model)
        tiers = self.resolver.tiers
        if not tiers:
            raise ModelNotFound("'auto' needs tiers in the config", param="model")
        profile = model[5:] or None
        router = self.router
        fallback = self.settings.default_tier or next(iter(tiers))
        try:
            if router is None:
                raise RuntimeError("no router loaded")
            decision = router.route(request.messages, profile, ctx.task)
        except ModelNotFound:
            raise
        except Exception as exc:  # the scorer must never fail a request
            log.warning("router failed (%s); using the default tier", type(exc).__name__)
            return Resolution(tiers[fallback], fallback, f"auto:router_error:{type(exc).__name__}")
        ctx.route_score = decision.score
        cascade = decision.cascade
        if cascade is not None and cascade.from_tier in tiers and cascade.to_tier in tiers:
            ctx.cascade = cascade
            tier = cascade.from_tier
            reason = f"auto:{decision.profile}:cascade:{cascade.from_tier}->{cascade.to_tier}"
            return Resolution(tiers[tier], tier, reason)
        tier = decision.tier if decision.tier in tiers else fallback
        return Resolution(tiers[tier], tier, f"auto:{decision.profile}:{decision.reason}")

    def member(
        self, ctx: RequestContext, d: Deployment, request: ChatRequest, *, check_schema: bool = True
    ) -> ChatModel:
        """``d`` wrapped for this request: retries, redaction, the answer's schema check
        (not for a cascade's cheap tier, whose answer the cascade checks itself)."""
        model: ChatModel = RetryingModel(
            self._candidates[d.name],
            self.settings.retry,
            self.retry_budget,
            ctx.trace,
        )
        admission = ctx.admission
        if (
            admission is not None
            and admission.redacted is not None
            and d.hosting not in PRIVATE_HOSTING
        ):
            model = RedactingModel(model, admission.redacted, admission.redaction)
        schema = request.json_schema
        if (
            check_schema
            and schema is not None
            and not request.stream
            and isinstance(schema.get("schema"), dict)
        ):
            model = SchemaCheckedModel(model, schema["schema"])
        return model

    async def _chain(self, ctx: RequestContext, request: ChatRequest) -> ChatModel:
        chosen = await self._govern(ctx, request)
        check_schema = ctx.cascade is None  # a cascade checks its cheap answer itself
        members = [self.member(ctx, d, request, check_schema=check_schema) for d in chosen]
        return members[0] if len(members) == 1 else FallbackModel(members)

    # -- call ---------------------------------------------------------------------------
    async def answer(self, ctx: RequestContext, request: ChatRequest) -> ChatResult:
        """The whole answer (governed, routed, with retries and fallbacks); raises the
        client's error. Usage the upstream did not send is estimated."""
        try:
            chain = await self._chain(ctx, request)
            if ctx.cascade is not None:
                result = await run_cascade(self, ctx, request, chain)
            else:
                result = await chain.complete(request)
        except (UpstreamError, NoDeploymentAvailable) as exc:
            raise _records.private_failure(ctx, exc) from exc
        if result.usage is None:
            self.estimate_usage(ctx, request, estimate_completion_tokens(result))
        ctx.served_model = result.model or None
        ctx.fingerprint = result.system_fingerprint
        self._scan_output(ctx, result)
        return result

    async def open_stream(
        self, ctx: RequestContext, request: ChatRequest
    ) -> tuple[StreamDelta, AsyncIterator[StreamDelta]]:
        """Start the stream and wait for its first delta, so that every failure before
        the first byte can still fall back or become a normal error answer."""
        try:
            chain = await self._chain(ctx, request)
            if ctx.cascade is not None:  # buffered: nothing reaches the client before the check
                result = await run_cascade(self, ctx, request, chain)
        except (UpstreamError, NoDeploymentAvailable) as exc:
            raise _records.private_failure(ctx, exc) from exc
        if ctx.cascade is not None:
            if result.usage is None:
                self.estimate_usage(ctx, request, estimate_completion_tokens(result))
                result.usage = ctx.estimated_usage
            self._scan_output(ctx, result)
            return await replay_stream(result)
        iterator = aiter(chain.stream(request))
        try:
            first = await anext(iterator)
        except (UpstreamError, NoDeploymentAvailable) as exc:
            await _life.close_stream(iterator)
            raise _records.private_failure(ctx, exc) from exc
        except BaseException:
            await _life.close_stream(iterator)
            raise
        return first, iterator

    def _scan_output(self, ctx: RequestContext, result: ChatResult) -> None:
        """Optional output scan of answers from external deployments (audit; redaction
        where the policy says so)."""
        policies = self.settings.policies
        if not policies.output_scan or result.content is None:
            return
        served = self.deployments.get(ctx.trace.served_by or "")
        if served is None or served.hosting in PRIVATE_HOSTING:
            return
        from laneway.governance import redact_text, scan_output

        counts = scan_output(result.content, self.governance.scanner)
        if counts and ctx.admission is not None:
            ctx.admission.audit["output"] = dict(counts)
            if policies.redact_output:
                result.content = redact_text(result.content, self.governance.scanner)

    # -- account ------------------------------------------------------------------------
    def estimate_usage(
        self, ctx: RequestContext, request: ChatRequest, completion_tokens: int
    ) -> Usage:
        """The served call sent no ``usage``: bill an estimate (prompt from the request,
        completion from the answer) so that cost and budgets are never settled at $0;
        the ledger row is marked ``estimated``."""
        usage = estimate_usage(request, completion_tokens)
        for attempt in reversed(ctx.trace.attempts):
            if attempt.deployment == ctx.trace.served_by and attempt.error is None:
                if attempt.usage is None:
                    attempt.usage = usage
                break
        ctx.estimated = True
        ctx.estimated_usage = usage
        return usage

    def cost_of(self, deployment: str | None, usage: Usage | None) -> Decimal | None:
        """Known token cost of one call; ``None`` when unknown or amortised hourly."""
        if deployment is None or usage is None:
            return None
        d = self.deployments.get(deployment)
        if d is None:
            return None
        if d.prices is None:
            return Decimal(0) if d.amortised and d.hourly_cost == 0 else None
        return token_cost(
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens,
            input_per_mtok=d.prices.input_per_mtok,
            output_per_mtok=d.prices.output_per_mtok,
            cached_input_per_mtok=d.prices.cached_input_per_mtok,
            cache_write_tokens=usage.cache_creation_tokens,
            cache_write_1h_tokens=usage.cache_creation_1h_tokens,
            cache_write_input_per_mtok=d.prices.cache_write_input_per_mtok,
            cache_write_1h_input_per_mtok=d.prices.cache_write_1h_input_per_mtok,
        )

    def request_cost(self, ctx: RequestContext) -> Decimal | None:
        """Sum of every attempt's cost (a failed try that produced tokens is billed)."""
        total = Decimal(0)
        for attempt in ctx.trace.attempts:
            if attempt.usage is None:
                continue
            cost = self.cost_of(attempt.deployment, attempt.usage)
            if cost is None:
                return None
            total += cost
        if ctx.trace.served_by is None and not ctx.trace.attempts:
            return Decimal(0)
        return total

    def served_model_id(self, ctx: RequestContext, request: ChatRequest) -> str:
        """The model id to show the client: the served deployment's, else the name asked."""
        served = ctx.trace.served_by
        deployment = self.deployments.get(served) if served else None
        return deployment.model_id if deployment is not None else request.model


def _is_auto(model: str) -> bool:
    """``auto`` or ``auto:<profile>``: the router picks the tier."""
    return model == "auto" or model.startswith("auto:")


def _text_size(request: ChatRequest) -> int:
    """Characters of text the scanner reads in ``request`` (message content, text parts,
    image URLs, which it decodes, tool-call arguments, and the other fields it scans:
    tools, schema, stop, options); a loop over the messages, no copies."""
    size = 0
    for message in request.messages:
        content = message.get("content")
        if type(content) is str:
            size += len(content)
        elif isinstance(content, list):
            size += sum(len(t) for part in content if isinstance(t := part.get("text"), str))
            size += sum(
                len(str(p["image_url"].get("url", ""))) for p in content if "image_url" in p
            )
        for call in message.get("tool_calls") or ():
            size += len(call["function"]["arguments"])
    if request.tools or request.response_format or request.options or request.stop:
        extra = (request.tools, request.response_format, request.options, request.stop)
        size += len(orjson.dumps(extra, default=str))
    return size


def _estimate_tokens(request: ChatRequest) -> int:
    """Prompt tokens + output cap (for tokens-per-minute limits)."""
    return estimate_prompt_tokens(request) + (request.max_tokens or 0)
