"""The gateway's state and the request path: resolve → select → retry/fallback → ledger."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from laneway.catalog import Catalog
from laneway.errors import LanewayError
from laneway.ledger import LedgerRow, LedgerWriter, token_cost
from laneway.providers import (
    ChatModel,
    ChatRequest,
    ChatResult,
    StreamDelta,
    UpstreamClient,
    Usage,
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
from laneway.server._deployments import Deployment, Resolution, Resolver, select_candidates
from laneway.server._metrics import Metrics
from laneway.settings import Settings

__all__ = ["CallOutcome", "Gateway", "RequestContext"]

log = logging.getLogger("laneway.gateway")


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
    prompt: str | None = None


@dataclass(slots=True)
class CallOutcome:
    status: int
    usage: Usage | None = None
    error: LanewayError | None = None
    partial: bool = False
    ttft: float | None = None


class Gateway:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        deployments: Mapping[str, Deployment],
        ledger: LedgerWriter | None,
        metrics: Metrics,
        *,
        upstream: UpstreamClient | None = None,
        owns_upstream: bool = False,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.deployments = dict(deployments)
        self.resolver = Resolver(settings, self.deployments)
        self.ledger = ledger
        self.metrics = metrics
        self.retry_budget = RetryBudget(settings.retry)
        self.started_at = time.time()
        self._upstream = upstream
        self._owns_upstream = owns_upstream

    async def start(self) -> None:
        """Start the ledger writer and load embedded models (off the event loop)."""
        if self.ledger is not None:
            self.ledger.start()
        loop = asyncio.get_running_loop()
        for d in self.deployments.values():
            load = getattr(d.adapter, "load", None)
            if load is not None:
                await loop.run_in_executor(None, load)

    async def aclose(self) -> None:
        """Stop embedded models, close the upstream client, flush the ledger."""
        for d in self.deployments.values():
            close = getattr(d.adapter, "close", None)
            if close is not None:
                close()
        if self._owns_upstream and self._upstream is not None:
            await self._upstream.close()
        if self.ledger is not None:
            self.ledger.close()

    @staticmethod
    def new_request_id() -> str:
        return "chatcmpl-" + secrets.token_hex(12)

    # -- building the chain ----------------------------------------------------
    def _chain(self, ctx: RequestContext, request: ChatRequest) -> tuple[ChatModel, Resolution]:
        resolution = self.resolver.resolve(request.model)
        ctx.resolution = resolution
        chosen = select_candidates(resolution.deployments, self.deployments, request, ctx.trace)
        self.retry_budget.deposit()
        members: list[ChatModel] = [
            RetryingModel(
                Candidate(d.name, d.adapter, d.breaker),
                self.settings.retry,
                self.retry_budget,
                ctx.trace,
            )
            for d in chosen
        ]
        return (members[0] if len(members) == 1 else FallbackModel(members)), resolution

    async def complete(self, ctx: RequestContext, request: ChatRequest) -> ChatResult:
        chain, _ = self._chain(ctx, request)
        return await chain.complete(request)

    async def open_stream(
        self, ctx: RequestContext, request: ChatRequest
    ) -> tuple[StreamDelta, AsyncIterator[StreamDelta]]:
        """Start the stream and wait for its first delta, so that every failure before
        the first byte can still fall back or become a normal JSON error."""
        chain, _ = self._chain(ctx, request)
        iterator = aiter(chain.stream(request))
        try:
            first = await anext(iterator)
        except BaseException:
            await _aclose(iterator)
            raise
        return first, iterator

    # -- money ---------------------------------------------------------------------
    def cost_of(self, deployment: str | None, usage: Usage | None) -> Decimal | None:
        """Known token cost of one call; ``None`` when unknown or amortised hourly."""
        if deployment is None or usage is None:
            return None
        d = self.deployments.get(deployment)
        if d is None:
            return None
        if d.amortised:
            return Decimal(0) if d.hourly_cost == 0 else None
        if d.prices is None:
            return None
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
        m = self.metrics
        m.requests.labels(label, str(outcome.status)).inc()
        m.latency.labels(label).observe(latency)
        if outcome.ttft is not None:
            m.ttft.labels(label).observe(outcome.ttft)
        if outcome.error is not None:
            m.errors.labels(label, outcome.error.code).inc()
        for attempt in ctx.trace.attempts:
            m.attempts.labels(attempt.deployment, "error" if attempt.error else "ok").inc()
            if attempt.usage is not None:
                m.tokens.labels(attempt.deployment, "prompt").inc(attempt.usage.prompt_tokens)
                m.tokens.labels(attempt.deployment, "completion").inc(
                    attempt.usage.completion_tokens
                )
                m.add_cost(attempt.deployment, self.cost_of(attempt.deployment, attempt.usage))
        for name, d in self.deployments.items():
            m.circuit_open.labels(name).set(1 if d.breaker.state is CircuitState.OPEN else 0)
        if self.ledger is None:
            return
        ts = datetime.now(UTC)
        resolution = ctx.resolution
        usage = outcome.usage
        audit = {"skipped": [{"deployment": n, "reason": r} for n, r in ctx.trace.skipped]}
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
                cost_usd=self.request_cost(ctx),
                hourly_cost_usd=deployment.hourly_cost if deployment else None,
                latency_ms=latency * 1000.0,
                ttft_ms=None if outcome.ttft is None else outcome.ttft * 1000.0,
                status=outcome.status,
                error_kind=outcome.error.code if outcome.error else None,
                fallbacks=ctx.trace.fallbacks,
                partial=outcome.partial,
                route_reason=resolution.reason if resolution else None,
                route_score=None,
                prompt=ctx.prompt,
                audit=audit,
            )
        )
        for number, attempt in enumerate(ctx.trace.attempts, start=1):
            self.ledger.record(self._attempt_row(ctx, number, attempt, ts))

    def _attempt_row(
        self, ctx: RequestContext, number: int, attempt: Attempt, ts: datetime
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
            cost_usd=self.cost_of(attempt.deployment, usage) if usage else None,
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
