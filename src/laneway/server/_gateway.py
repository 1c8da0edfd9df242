"""The gateway's state and the request path: resolve → select → retry/fallback → ledger."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from laneway.catalog import Catalog
from laneway.errors import (
    LanewayError,
    ModelNotFound,
    NoDeploymentAvailable,
    NoPrivateRoute,
    StreamInterrupted,
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
)
from laneway.gateway import ShadowMirror
from laneway.governance import (
    PRIVATE_HOSTING,
    Admission,
    Governance,
    RedactingModel,
    SchemaCheckedModel,
)
from laneway.ledger import LedgerRow, LedgerWriter, token_cost
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
    Attempt,
    Candidate,
    CircuitState,
    FallbackModel,
    RetryBudget,
    RetryingModel,
    Trace,
)
from laneway.server._cascade import replay_stream, run_cascade
from laneway.server._deployments import Deployment, Resolution, Resolver, select_candidates
from laneway.server._metrics import Metrics
from laneway.server._response_store import ResponseStore
from laneway.settings import Settings

__all__ = ["OFFLOAD_SCAN_FROM", "CallOutcome", "Gateway", "RequestContext"]

log = logging.getLogger("laneway.gateway")

# Characters of request text above which governance (the sensitive-data scan) runs in a
# worker thread: ~32 KB scans in a few ms; smaller requests keep the cheaper inline call.
OFFLOAD_SCAN_FROM = 32_768
_MIN_SECRET = 6  # shorter configured keys are not scrubbed (they would mangle messages)
_MIN_PREFIX = 8  # a cut-off key: at least this many of its first characters end the message


@dataclass(slots=True)
class RequestContext:
    """Everything the ledger needs about one client request."""

    request_id: str
    started: float
    requested_model: str
    key_id: str | None = None
    source: str = "api"
    stream: bool = False
    resolution: Resolution | None = None
    trace: Trace = field(default_factory=Trace)
    request: ChatRequest | None = None
    log_prompt: bool | None = None
    key: Any = None
    route_score: float | None = None
    admission: Admission | None = None
    reservation: Any = None
    estimated: bool = False  # the served call's usage is an estimate (upstream sent none)
    estimated_usage: Usage | None = None
    task: str | None = None  # x-laneway-task / metadata.laneway_task (per-task routing)
    served_model: str | None = None  # the model id the upstream said answered
    fingerprint: str | None = None  # its system_fingerprint, when it sent one
    cascade: Any = None  # the router's CascadeSpec when this request cascades
    cascade_audit: dict[str, Any] | None = None


_UNSET: Any = object()


@dataclass(slots=True)
class CallOutcome:
    status: int
    usage: Usage | None = None
    error: LanewayError | None = None
    partial: bool = False
    ttft: float | None = None
    cost: Any = _UNSET  # the request's cost when the caller already computed it


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
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.deployments = dict(deployments)
        self.resolver = Resolver(settings, self.deployments)
        self._candidates = {  # immutable, so built once rather than per request
            name: Candidate(name, d.adapter, d.breaker) for name, d in self.deployments.items()
        }
        self.ledger = ledger
        self.metrics = metrics
        self.governance = governance
        self.router: Any = None
        self.responses: ResponseStore | None = None  # stored /v1/responses answers
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
        self._secrets = _deployment_secrets(self.deployments.values())
        self._secret_finder: Any = None  # built on the first upstream error

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
        if self.responses is not None:
            self.responses.close()
        kills = self.governance.kills
        if kills is not None:
            kills.stop()

    def _circuit_gauges(self) -> dict[str, int]:
        return {
            name: 1 if d.breaker.state is CircuitState.OPEN else 0
            for name, d in self.deployments.items()
        }

    def sanitize(self, exc: LanewayError) -> LanewayError:
        """Upstream error messages may echo the prompt or the gateway's own upstream key:
        replace every configured deployment key (also one cut off at the end of the
        message), any key-shaped token and any detected sensitive value before the
        message reaches the client."""
        message = _scrub_literals(exc.message, self._secrets)
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

    def _scrub_key_shapes(self, message: str) -> str:
        finder = self._secret_finder
        if finder is None:
            from laneway.governance import secret_finder

            finder = self._secret_finder = secret_finder()
        spans = sorted(finder(message))
        if not spans:
            return message
        out: list[str] = []
        pos = 0
        for start, end in spans:
            if start >= pos:
                out += [message[pos:start], "[API_KEY]"]
                pos = end
        out.append(message[pos:])
        return "".join(out)

    def new_request_id(self) -> str:
        """Unique without a system call per request (os.urandom costs ~90 µs in some
        sandboxes): a random per-process prefix and a counter."""
        return f"chatcmpl-{self._id_prefix}{next(self._ids):08x}"

    # -- building the chain ----------------------------------------------------
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
        if key is not None and (key.rpm or key.tpm) and governance.store is not None:
            estimate = len(request.messages) and _estimate_tokens(request)
            await asyncio.to_thread(governance.store.take_rate, key, estimate)
        if long_text and _is_auto(request.model):  # the router reads all of it too
            resolution = await asyncio.to_thread(self._resolve, ctx, request)
        else:
            resolution = self._resolve(ctx, request)
        ctx.resolution = resolution
        names = governance.filter(resolution.deployments, resolution.tier, request.model, admission)
        probe = admission.redacted if admission.redacted is not None else request
        chosen = select_candidates(names, self.deployments, probe, ctx.trace)
        if key is not None and key.budget_usd is not None and governance.store is not None:
            amount = governance.max_cost(request, [d.name for d in chosen])
            ctx.reservation = await asyncio.to_thread(governance.store.reserve, key, amount)
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

    async def complete(self, ctx: RequestContext, request: ChatRequest) -> ChatResult:
        try:
            chain = await self._chain(ctx, request)
            if ctx.cascade is not None:
                result = await run_cascade(self, ctx, request, chain)
            else:
                result = await chain.complete(request)
        except (UpstreamError, NoDeploymentAvailable) as exc:
            raise _private_failure(ctx, exc) from exc
        if result.usage is None:
            self.estimate_usage(ctx, request, estimate_completion_tokens(result))
        ctx.served_model = result.model or None
        ctx.fingerprint = result.system_fingerprint
        self._scan_output(ctx, result)
        return result

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

    async def open_stream(
        self, ctx: RequestContext, request: ChatRequest
    ) -> tuple[StreamDelta, AsyncIterator[StreamDelta]]:
        """Start the stream and wait for its first delta, so that every failure before
        the first byte can still fall back or become a normal JSON error."""
        try:
            chain = await self._chain(ctx, request)
            if ctx.cascade is not None:  # buffered: nothing reaches the client before the check
                result = await run_cascade(self, ctx, request, chain)
        except (UpstreamError, NoDeploymentAvailable) as exc:
            raise _private_failure(ctx, exc) from exc
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
            await _aclose(iterator)
            raise _private_failure(ctx, exc) from exc
        except BaseException:
            await _aclose(iterator)
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

    # -- money ---------------------------------------------------------------------
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

    # -- ledger and metrics --------------------------------------------------------
    def record_refused(
        self,
        scope: Mapping[str, Any],
        error: LanewayError,
        *,
        request_id: str | None = None,
        key_id: str | None = None,
    ) -> None:
        """Ledger (and so audit) row for a request refused before it was parsed (bad
        headers or body, wrong key, too large, too slow): status, error code, key and
        client address, never the body. Abuse shows up in ``laneway audit``."""
        if self.ledger is None:
            return
        try:
            client = scope.get("client")
            address = str(client[0])[:64] if client else None
            path = str(scope.get("path", ""))[:128]
            self.ledger.record(
                LedgerRow(
                    request_id=request_id or self.new_request_id(),
                    attempt=0,
                    ts=datetime.now(UTC),
                    key_id=key_id,
                    requested_model="",
                    status=error.status,
                    error_kind=error.code,
                    cost_usd=Decimal(0),  # nothing was sent upstream: known to cost nothing
                    client=address,
                    audit={"refused": error.code, "path": path},
                )
            )
        except Exception:  # bookkeeping must never fail a request
            log.exception("failed to record a refused request")

    def finish(self, ctx: RequestContext, outcome: CallOutcome) -> None:
        """Record one request (summary row + one row per attempt); never raises."""
        try:
            self._finish(ctx, outcome)
        except Exception:  # bookkeeping must never fail a request
            log.exception("failed to record request %s", ctx.request_id)

    def _finish(self, ctx: RequestContext, outcome: CallOutcome) -> None:
        now = time.perf_counter()
        served = ctx.trace.served_by
        deployment = self.deployments.get(served) if served else None
        label = served or "none"
        latency = now - ctx.started
        self.metrics.observe_request(label, outcome.status, latency, outcome.ttft, outcome.error)
        attempts = ctx.trace.attempts
        if len(attempts) == 1 and outcome.cost is not _UNSET and outcome.error is None:
            costs = [outcome.cost]  # the request's cost is its one call's, already computed
        else:
            costs = [self.cost_of(a.deployment, a.usage) if a.usage else None for a in attempts]
        for attempt, cost in zip(attempts, costs, strict=True):
            usage = attempt.usage
            self.metrics.observe_attempt(
                attempt.deployment,
                attempt.error is None,
                usage.prompt_tokens if usage else 0,
                usage.completion_tokens if usage else 0,
                cost,
            )
        if self.ledger is None:
            return
        ts = datetime.now(UTC)
        resolution = ctx.resolution
        usage = outcome.usage
        audit: dict[str, Any] = dict(ctx.admission.audit) if ctx.admission else {}
        if ctx.trace.skipped:
            audit["skipped"] = [{"deployment": n, "reason": r} for n, r in ctx.trace.skipped]
        if ctx.cascade_audit is not None:
            audit["cascade"] = ctx.cascade_audit
        if ctx.reservation is not None:
            self._settle(ctx)
        self.ledger.record(
            LedgerRow(
                request_id=ctx.request_id,
                attempt=0,
                ts=ts,
                key_id=ctx.key_id,
                source=ctx.source,
                requested_model=ctx.requested_model,
                tier=resolution.tier if resolution else None,
                deployment=served,
                hosting=deployment.hosting if deployment else None,
                model_id=deployment.model_id if deployment else None,
                stream=ctx.stream,
                prompt_tokens=usage.prompt_tokens if usage else None,
                completion_tokens=usage.completion_tokens if usage else None,
                cached_tokens=usage.cached_tokens if usage else None,
                cost_usd=outcome.cost if outcome.cost is not _UNSET else self.request_cost(ctx),
                hourly_cost_usd=deployment.hourly_cost if deployment else None,
                latency_ms=latency * 1000.0,
                ttft_ms=None if outcome.ttft is None else outcome.ttft * 1000.0,
                status=outcome.status,
                error_kind=outcome.error.code if outcome.error else None,
                fallbacks=ctx.trace.fallbacks,
                partial=outcome.partial,
                route_reason=resolution.reason if resolution else None,
                route_score=ctx.route_score,
                prompt=self._ledger_prompt(ctx),
                audit=audit,
                estimated=ctx.estimated,
                task=ctx.task,
                served_model=ctx.served_model,
                fingerprint=ctx.fingerprint,
            )
        )
        if _single_call(ctx, outcome):
            return  # the summary row is also the record of its one call (see LedgerRow)
        for number, (attempt, cost) in enumerate(zip(ctx.trace.attempts, costs, strict=True), 1):
            self.ledger.record(self._attempt_row(ctx, number, attempt, ts, cost))

    def _ledger_prompt(self, ctx: RequestContext) -> str | None:
        """Prompt text for the ledger: only when prompt logging is on (globally, per key
        or per call), and with detected sensitive values replaced by placeholders."""
        wanted = ctx.log_prompt
        if wanted is None:
            wanted = self.settings.ledger.log_prompts or bool(
                getattr(ctx.key, "log_prompts", False)
            )
        if not wanted or ctx.request is None:
            return None
        messages = ctx.request.messages
        admission = ctx.admission
        if admission is not None and admission.sensitive:
            from laneway.governance import redact_request

            redacted = admission.redacted or redact_request(ctx.request, self.governance.scanner)[0]
            messages = redacted.messages
        return orjson.dumps(messages).decode()

    def _settle(self, ctx: RequestContext) -> None:
        """Settle the budget reservation with the actual cost, off the event loop."""
        store = self.governance.store
        reservation, ctx.reservation = ctx.reservation, None
        cost = self.request_cost(ctx)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            store.settle(reservation, cost)
            return
        loop.run_in_executor(None, store.settle, reservation, cost)

    def _attempt_row(
        self, ctx: RequestContext, number: int, attempt: Attempt, ts: datetime, cost: Any
    ) -> LedgerRow:
        d = self.deployments.get(attempt.deployment)
        usage = attempt.usage
        error = attempt.error
        return LedgerRow(
            request_id=ctx.request_id,
            attempt=number,
            ts=ts,
            key_id=ctx.key_id,
            source=ctx.source,
            requested_model=ctx.requested_model,
            tier=ctx.resolution.tier if ctx.resolution else None,
            deployment=attempt.deployment,
            hosting=d.hosting if d else None,
            model_id=d.model_id if d else None,
            stream=ctx.stream,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cached_tokens=usage.cached_tokens if usage else None,
            cost_usd=cost,
            hourly_cost_usd=d.hourly_cost if d else None,
            latency_ms=attempt.latency_ms,
            ttft_ms=attempt.ttft_ms,
            status=_attempt_status(error),
            error_kind=error.code if error else None,
            fallbacks=0,
            partial=attempt.partial,
            route_reason=None,
            route_score=None,
            prompt=None,
            audit=None,
        )


def _single_call(ctx: RequestContext, outcome: CallOutcome) -> bool:
    """A request answered in full by its first and only upstream call: its summary row
    holds everything an attempt row would (deployment, tokens, cost), so no attempt row
    is written. Saves about 40% of the ledger's instructions per request on the common
    path (measured with valgrind: ~195 k → ~110 k)."""
    attempts = ctx.trace.attempts
    if len(attempts) != 1 or outcome.status != 200 or outcome.partial:
        return False
    only = attempts[0]
    return only.error is None and not only.partial and only.deployment == ctx.trace.served_by


# Failures that mean "no deployment answered", as opposed to the request's own fault
# (invalid, too long, filtered): for a sensitive request these become no_private_route.
_AVAILABILITY_FAULTS = (
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamConnectionError,
    UpstreamRateLimited,
    UpstreamBadResponse,
    UpstreamAuthError,
    NoDeploymentAvailable,
)


def _private_failure(ctx: RequestContext, exc: LanewayError) -> LanewayError:
    """A sensitive request that may only go to self-hosted deployments, none of which
    answered (down, silent, refusing, circuit open): the README's 503 ``no_private_route``
    rather than the last upstream error. Other errors are returned unchanged."""
    admission = ctx.admission
    if (
        admission is None
        or not admission.sensitive
        or admission.action != "self_hosted_only"
        or isinstance(exc, NoPrivateRoute)
        or not isinstance(exc, _AVAILABILITY_FAULTS)
        or isinstance(exc, StreamInterrupted)
    ):
        return exc
    retry_after = getattr(exc, "retry_after", None)
    return NoPrivateRoute(
        "the request contains sensitive data and no self-hosted or embedded deployment "
        f"answered (last failure: {exc.code})",
        retry_after=retry_after if isinstance(retry_after, int | float) else None,
    )


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


def _deployment_secrets(deployments: Any) -> tuple[str, ...]:
    """The resolved upstream keys (and secret-looking extra header values) of every
    deployment, longest first. Held in memory only; never logged."""
    found: set[str] = set()
    for d in deployments:
        endpoint = getattr(d.adapter, "endpoint", None)
        key = getattr(endpoint, "api_key", None)
        if isinstance(key, str):
            found.add(key)
        headers = getattr(endpoint, "extra_headers", None) or {}
        for name, value in headers.items():
            if any(w in name.lower() for w in ("key", "auth", "token", "secret")):
                found.add(value.removeprefix("Bearer ").strip())
    return tuple(sorted((k for k in found if len(k) >= _MIN_SECRET), key=len, reverse=True))


def _scrub_literals(message: str, secrets: tuple[str, ...]) -> str:
    """``message`` with every secret, and a secret's prefix that ends the message (the
    adapters cut upstream messages to a few hundred characters), replaced."""
    for secret in secrets:
        if secret in message:
            message = message.replace(secret, "[API_KEY]")
        for cut in range(len(secret) - 1, _MIN_PREFIX - 1, -1):
            if message.endswith(secret[:cut]):
                message = message[: len(message) - cut] + "[API_KEY]"
                break
    return message


def _estimate_tokens(request: ChatRequest) -> int:
    """Prompt tokens + output cap (for tokens-per-minute limits)."""
    return estimate_prompt_tokens(request) + (request.max_tokens or 0)


def _attempt_status(error: LanewayError | None) -> int:
    if error is None:
        return 200
    upstream = getattr(error, "upstream_status", None)
    return upstream if isinstance(upstream, int) else error.status


async def _aclose(iterator: AsyncIterator[StreamDelta]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        with contextlib.suppress(LanewayError, asyncio.CancelledError):
            await close()
