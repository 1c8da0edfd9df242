"""An embeddings request's life in the core: governed like chat (every input string is
scanned as one user message, so a sensitive input only goes to self-hosted or embedded
deployments; policy filter, key rate limits and budget reservation apply), routed to the
deployments whose adapter can embed, each tried once in order (the next one after an
availability failure), and recorded as one ledger row in one ``finally``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from laneway.errors import (
    CircuitOpen,
    LanewayError,
    NoDeploymentAvailable,
    UnsupportedParameter,
    UpstreamError,
)
from laneway.gateway._context import CallOutcome, RequestContext
from laneway.gateway._deployments import Deployment
from laneway.gateway._life import Accounted
from laneway.gateway._records import AVAILABILITY_FAULTS, private_failure
from laneway.governance import PRIVATE_HOSTING
from laneway.providers import ChatRequest, Message, Usage, estimate_prompt_tokens
from laneway.resilience import Attempt, may_fall_back

if TYPE_CHECKING:
    from laneway.gateway._core import Gateway

__all__ = ["EmbedRequest", "embed"]


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    """A validated embeddings request: non-empty strings, optional dimensions."""

    model: str
    texts: tuple[str, ...]
    dimensions: int | None = None
    user: str | None = None

    def as_chat(self) -> ChatRequest:
        """The request as governance reads it: one user message per input string."""
        messages = tuple(Message(role="user", content=t) for t in self.texts)
        return ChatRequest(model=self.model, messages=messages, max_tokens=1, user=self.user)


class _Embedder(Protocol):
    async def embed(
        self, texts: Sequence[str], *, dimensions: int | None, user: str | None
    ) -> tuple[list[list[float]], Usage | None]: ...


async def embed(gateway: Gateway, ctx: RequestContext, request: EmbedRequest) -> CallOutcome:
    """The vectors (``outcome.vectors``) or the error; as :meth:`Gateway.complete`."""
    chat = request.as_chat()
    ctx.request = chat
    with Accounted(gateway, ctx, chat, CallOutcome(status=200)) as outcome:
        chosen = await _govern(gateway, ctx, chat, request.dimensions)
        try:
            vectors, usage = await _call_chain(ctx, chosen, request)
        except (UpstreamError, NoDeploymentAvailable) as exc:
            raise private_failure(ctx, exc) from exc
        if usage is None:  # the upstream never said: bill an estimate, marked as such
            usage = Usage(prompt_tokens=estimate_prompt_tokens(chat), completion_tokens=0)
            ctx.trace.attempts[-1].usage = usage
            ctx.estimated = True
        outcome.vectors = vectors
        outcome.usage = usage
        outcome.cost = gateway.request_cost(ctx)
        outcome.priced = True
    if outcome.error is not None:
        gateway.sanitize(outcome.error)
    return outcome


async def _govern(
    gateway: Gateway, ctx: RequestContext, chat: ChatRequest, dimensions: int | None
) -> list[Deployment]:
    """Scan, rate limit, resolve, keep the deployments that can embed (and honour
    ``dimensions``), policy filter, budget reservation (as chat's: the reservation is
    settled by ``finish``)."""
    governance = gateway.governance
    admission = await asyncio.to_thread(governance.admit, chat, ctx.key)
    ctx.admission = admission
    key = ctx.key
    store = governance.store
    if key is not None and (key.rpm or key.tpm) and store is not None:
        await asyncio.to_thread(store.take_rate, key, estimate_prompt_tokens(chat))
    resolution = gateway.resolver.resolve(chat.model)
    ctx.resolution = resolution
    able: list[str] = []
    for name in resolution.deployments:
        d = gateway.deployments[name]  # a catalog model that is not an embedding one: chat only
        if callable(getattr(d.adapter, "embed", None)) and (d.info is None or d.info.can_embed):
            able.append(name)
        else:
            ctx.trace.skipped.append((name, "cannot_embed"))
    able, refusal = _honouring(gateway, ctx, able, dimensions)
    if not able and refusal is not None:
        raise refusal
    if not able:
        raise UnsupportedParameter(
            f"model {chat.model!r} has no deployment that can embed (embeddings need an "
            "embedding model on an OpenAI-format deployment (OpenAI, an OpenAI-compatible "
            "vendor, vLLM, TEI's OpenAI route), a Gemini one or TEI's native /embed "
            "(vendor: tei))",
            param="model",
        )
    names = governance.filter(able, resolution.tier, chat.model, admission)
    chosen = [gateway.deployments[n] for n in names]
    if key is not None and key.budget_usd is not None and store is not None:
        amount = governance.max_cost(chat, names)
        ctx.reservation = await asyncio.to_thread(store.reserve, key, amount)
    return chosen


def _honouring(
    gateway: Gateway, ctx: RequestContext, names: list[str], dimensions: int | None
) -> tuple[list[str], UnsupportedParameter | None]:
    """The deployments whose adapter can honour the request's options (an adapter may say
    so by ``check_embed``: TEI's /embed cannot shorten vectors), so that the next deployment
    of the tier serves it; the first refusal, for when none can."""
    kept: list[str] = []
    refusal: UnsupportedParameter | None = None
    for name in names:
        check = getattr(gateway.deployments[name].adapter, "check_embed", None)
        try:
            if callable(check):
                check(dimensions=dimensions)
        except UnsupportedParameter as exc:
            ctx.trace.skipped.append((name, "unsupported"))
            refusal = refusal or exc
            continue
        kept.append(name)
    return kept, refusal


async def _call_chain(
    ctx: RequestContext, chosen: list[Deployment], request: EmbedRequest
) -> tuple[list[list[float]], Usage | None]:
    """Each candidate once, in order; the next one after an availability failure."""
    last: LanewayError | None = None
    for d in chosen:
        breaker = d.breaker
        if not breaker.acquire():
            ctx.trace.skipped.append((d.name, "circuit_open"))
            last = CircuitOpen(
                f"deployment {d.name!r} is failing (circuit open)",
                retry_after=breaker.retry_after(),
            )
            continue
        embedder: _Embedder = d.adapter  # type: ignore[assignment]  # checked in _govern
        attempt = Attempt(d.name, time.perf_counter())
        ctx.trace.attempts.append(attempt)
        try:
            texts, user = _texts_for(ctx, d, request)
            vectors, usage = await embedder.embed(texts, dimensions=request.dimensions, user=user)
        except LanewayError as exc:
            attempt.ended = time.perf_counter()
            attempt.error = exc
            if isinstance(exc, AVAILABILITY_FAULTS):
                breaker.failure()
            else:
                breaker.abandon()
            if not may_fall_back(exc):
                raise
            last = exc
            continue
        except BaseException:  # cancelled: no verdict on the deployment
            breaker.abandon()
            raise
        breaker.success()
        attempt.ended = attempt.first_byte = time.perf_counter()
        attempt.usage = usage
        ctx.trace.served_by = d.name
        return vectors, usage
    if last is None:
        raise NoDeploymentAvailable("no deployment can serve this embeddings request")
    raise last


def _texts_for(
    ctx: RequestContext, d: Deployment, request: EmbedRequest
) -> tuple[Sequence[str], str | None]:
    """The redacted texts and ``user`` for a deployment outside the private network when
    the policy redacts sensitive values; the texts and ``user`` as sent otherwise."""
    admission = ctx.admission
    redacted = admission.redacted if admission is not None else None
    if redacted is None or d.hosting in PRIVATE_HOSTING:
        return request.texts, request.user
    return [str(m.get("content", "")) for m in redacted.messages], redacted.user
