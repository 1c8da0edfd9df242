"""``POST /v1/responses`` requests that only OpenAI's Responses API can honour, relayed to
it: reasoning items replayed from an earlier answer, ``include:
["reasoning.encrypted_content"]``, or a ``previous_response_id`` that names a response
relayed before (its state lives upstream). Every other request takes the translated
path (``_responses_render``: any deployment, through chat completions).

A relay request is validated like any Responses request (the same parser, reasoning
items checked on their own), then governed like chat: every string is scanned (the
messages, tools, schema, metadata and reasoning summaries; not ``encrypted_content``,
OpenAI's own ciphertext, which only goes back to OpenAI), key limits and the budget
reservation apply, the policy filter runs. It goes only to deployments whose vendor
serves the Responses API (``responses_api`` quirk: OpenAI), each tried once in order,
the next after an availability failure; the body goes out unchanged but for ``model``,
and the answer (JSON, or the upstream's SSE events byte for byte) comes back unchanged,
with the ``x-laneway-*`` headers. Usage and cost come from the upstream's ``usage``; one
ledger row per request. When ``store`` is on, the upstream's response is kept too (so
``GET /v1/responses/{id}`` answers and ``previous_response_id`` finds its deployment).

Refused with a 400 naming the deployments: a relay request whose model resolves to no
Responses-capable deployment; a ``previous_response_id`` answered on the translated path.
A request the policy would redact is refused (403 ``sensitive_data_blocked``): relayed
items cannot be redacted. The output scan (``policies.output_scan`` / ``redact_output``)
applies to non-streamed answers' ``output_text``; a relayed stream goes out as the
upstream sent it, its final response scanned for the audit only. Not applied: cascades
and shadow copies. A client that leaves is ledgered 499 (its prompt billed as an
estimate).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message as ASGIMessage
from starlette.types import Receive, Scope, Send

from laneway.errors import (
    CircuitOpen,
    InvalidRequest,
    LanewayError,
    NoDeploymentAvailable,
    SensitiveDataBlocked,
    UnsupportedParameter,
    UpstreamError,
)
from laneway.gateway import CallOutcome, Deployment, Gateway, RequestContext, close_stream
from laneway.governance import PRIVATE_HOSTING
from laneway.providers import (
    ChatRequest,
    RelayEvent,
    ResponsesRelay,
    Usage,
    estimate_prompt_tokens,
    relay_for,
)
from laneway.resilience import Attempt, may_fall_back
from laneway.server._chat import (
    JSONBytesResponse,
    _raw_route_headers,
    call_core,
    error_response,
    handle,
    read_request,
    refuse,
)
from laneway.server._jsonlimits import check_depth, expect_str, load_object, only_keys
from laneway.server._protocol import ClientProtocol
from laneway.server._render import error_body, money
from laneway.server._response_store import ResponseStore
from laneway.server._responses import parse_responses_body
from laneway.settings import ResponsesSettings

__all__ = ["RELAY_MARK", "serve_responses"]

RELAY_MARK = "laneway_relay"  # the stored conversation of a relayed response: its deployment
_INCLUDE = "reasoning.encrypted_content"
_REASONING_KEYS = frozenset({"type", "id", "summary", "encrypted_content", "content", "status"})


@dataclasses.dataclass(slots=True)
class _Plan:
    doc: dict[str, Any]
    why: str  # what makes it a relay request, for the refusal's message
    deployment: str | None  # the deployment that holds the previous response upstream
    store: bool
    scan: ChatRequest  # every text of the request, as governance reads it


async def serve_responses(
    gateway: Gateway,
    request: Request,
    protocol: ClientProtocol,
    store: ResponseStore | None,
    settings: ResponsesSettings,
) -> Response:
    """``POST /v1/responses``: relayed when only the Responses API can honour it, else the
    translated path (``protocol``), which reads the same body again."""
    limits = gateway.settings.server
    request_id = gateway.new_request_id()
    ctx = RequestContext(request_id=request_id, started=time.perf_counter(), requested_model="")
    try:
        body, _ = await read_request(gateway, request, ctx, request.headers.get("authorization"))
        plan = await _plan(body, limits.max_json_depth, store, ctx.key_id, settings)
    except ClientDisconnect:
        gateway.metrics.observe_rejected(499, None)
        return Response(status_code=499)
    except LanewayError as exc:
        refuse(gateway, request.scope, exc, request_id, ctx.key_id)
        return error_response(exc, request_id, protocol)
    if plan is None:
        return await handle(gateway, Request(request.scope, _replay(body)), protocol)
    ctx.requested_model = str(plan.doc["model"])
    ctx.request = plan.scan
    ctx.stream = bool(plan.doc.get("stream"))
    try:
        chosen = await _govern(gateway, ctx, plan)
    except LanewayError as exc:
        gateway.finish(ctx, CallOutcome(status=exc.status, error=exc))
        return error_response(gateway.sanitize(exc) or exc, request_id, protocol)
    if ctx.stream:
        return await _stream(gateway, ctx, chosen, plan, protocol)
    return await _complete(gateway, ctx, chosen, plan, store, protocol, request.receive)


def _replay(body: bytes) -> Receive:
    """A ``receive`` that hands the body already read to the translated path once."""
    sent = False

    async def receive() -> ASGIMessage:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # nothing more arrives; the handler may watch
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


# -- planning ----------------------------------------------------------------------------


async def _plan(
    body: bytes,
    max_depth: int,
    store: ResponseStore | None,
    key_id: str | None,
    settings: ResponsesSettings,
) -> _Plan | None:
    """``None`` for a request the translated path serves; the relay plan otherwise."""
    if b"reasoning" not in body and b"previous_response_id" not in body:
        return None  # the usual case, without parsing twice (an escaped name: refused there)
    doc = load_object(body, max_depth)
    if max_depth < 1024 and body.count(b"[") + body.count(b"{") > max_depth:
        check_depth(doc, max_depth)
    why = _relay_reason(doc)
    previous = doc.get("previous_response_id")
    deployment = None
    if isinstance(previous, str) and store is not None:
        found = await store.load(previous, key_id)
        relayed = (
            found is not None
            and found.conversation[:1]
            and found.conversation[0].get("role") == RELAY_MARK
        )
        if relayed:
            assert found is not None
            deployment = str(found.conversation[0]["deployment"])
            why = why or f"previous response {previous!r} was relayed to the Responses API"
        elif why is not None:
            raise InvalidRequest(
                f"{why}, but previous response {previous!r} was not answered by OpenAI's "
                "Responses API (it was translated): leave previous_response_id out and send "
                "the whole conversation",
                param="previous_response_id",
            )
    if why is None:
        return None
    rest, summaries = _split_reasoning(doc)
    parsed = parse_responses_body(
        orjson.dumps(rest), max_depth=max_depth, store_default=settings.store
    )
    from laneway.server._validate import parse_chat_request

    chat = parse_chat_request(orjson.dumps(parsed.chat), max_depth=max_depth)
    extra = tuple({"role": "assistant", "content": s} for s in summaries)
    options = dict(chat.options)
    if isinstance(doc.get("metadata"), dict):
        options["metadata"] = doc["metadata"]  # all of it is sent upstream: all of it scanned
    scan = dataclasses.replace(
        chat,
        messages=(*chat.messages, *extra),  # type: ignore[arg-type]
        options=options,
        stream=bool(doc.get("stream")),
    )
    return _Plan(doc, why, deployment, parsed.store, scan)


def _relay_reason(doc: Mapping[str, Any]) -> str | None:
    items = doc.get("input")
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, dict) and item.get("type") == "reasoning":
                return f"'input[{i}]' is a reasoning item"
    include = doc.get("include")
    if isinstance(include, list) and _INCLUDE in include:
        return f"'include' asks for {_INCLUDE}"
    return None


def _split_reasoning(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The body without its reasoning items and ``include`` (for the Responses parser),
    and the reasoning summaries' texts (for the scan); reasoning items are checked."""
    include = doc.get("include")
    if include is not None and (
        not isinstance(include, list) or any(v != _INCLUDE for v in include)
    ):
        raise InvalidRequest(f"'include' may only hold {_INCLUDE!r}", param="include")
    items = doc.get("input")
    kept: Any = items
    summaries: list[str] = []
    if isinstance(items, list):
        kept = []
        for i, item in enumerate(items):
            if not (isinstance(item, dict) and item.get("type") == "reasoning"):
                kept.append(item)
                continue
            where = f"input[{i}]"
            only_keys(item, _REASONING_KEYS, where)
            if item.get("encrypted_content") is not None:
                expect_str(item["encrypted_content"], f"{where}.encrypted_content")
            for j, part in enumerate(item.get("summary") or ()):
                at = f"{where}.summary[{j}]"
                if not isinstance(part, dict) or part.get("type") != "summary_text":
                    raise InvalidRequest(f"'{at}' must be a summary_text part", param=at)
                summaries.append(expect_str(part.get("text"), f"{at}.text"))
        if not kept:  # only reasoning items: a turn of its own is still a valid input
            kept = [{"role": "user", "content": ""}]
    rest = {k: v for k, v in doc.items() if k != "include"}
    rest["input"] = kept
    return rest, summaries


# -- governing and calling ----------------------------------------------------------------


async def _govern(gateway: Gateway, ctx: RequestContext, plan: _Plan) -> list[Deployment]:
    """Scan, key limits, resolve, keep the deployments that speak the Responses API (the
    one holding the previous response, when there is one), policy filter, budget."""
    governance = gateway.governance
    admission = await asyncio.to_thread(governance.admit, plan.scan, ctx.key)
    ctx.admission = admission
    if admission.redacted is not None:
        raise SensitiveDataBlocked(
            "the request holds sensitive data and the policy redacts it, but a relayed "
            "Responses request (reasoning items) cannot be redacted: remove the values"
        )
    key, store = ctx.key, governance.store
    if key is not None and (key.rpm or key.tpm) and store is not None:
        await asyncio.to_thread(store.take_rate, key, estimate_prompt_tokens(plan.scan))
    model = plan.scan.model
    if model == "auto" or model.startswith("auto:"):
        raise UnsupportedParameter(
            f"{plan.why}: a relayed Responses request needs a deployment, model or tier, not "
            "'auto' (reasoning items belong to the model that wrote them; routing by the "
            "prompt could send them to another)",
            param="model",
        )
    resolution = gateway.resolver.resolve(model)
    ctx.resolution = resolution
    able: list[str] = []
    for name in resolution.deployments:
        if relay_for(gateway.deployments[name].adapter) is None:
            ctx.trace.skipped.append((name, "no_responses_api"))
        elif plan.deployment is not None and name != plan.deployment:
            ctx.trace.skipped.append((name, "not_the_previous_deployment"))
        else:
            able.append(name)
    if not able:
        names = ", ".join(repr(n) for n in resolution.deployments)
        holder = f" (the previous response lives on {plan.deployment!r})" if plan.deployment else ""
        raise UnsupportedParameter(
            f"{plan.why}: such requests pass through to OpenAI's Responses API only, and "
            f"model {plan.scan.model!r} resolves to deployment(s) {names}, none of which "
            f"serves it{holder}; leave reasoning items and include out to use any "
            "deployment, or choose an OpenAI deployment",
            param="model",
        )
    names_ok = governance.filter(able, resolution.tier, plan.scan.model, admission)
    if key is not None and key.budget_usd is not None and store is not None:
        amount = governance.max_cost(plan.scan, names_ok)
        ctx.reservation = await asyncio.to_thread(store.reserve, key, amount)
    return [gateway.deployments[n] for n in names_ok]


def _begin(ctx: RequestContext, d: Deployment) -> tuple[ResponsesRelay, Attempt] | None:
    if not d.breaker.acquire():
        ctx.trace.skipped.append((d.name, "circuit_open"))
        return None
    relay = relay_for(d.adapter)
    assert relay is not None  # kept by _govern
    attempt = Attempt(d.name, time.perf_counter())
    ctx.trace.attempts.append(attempt)
    return relay, attempt


def _failed(d: Deployment, attempt: Attempt, exc: LanewayError) -> None:
    attempt.ended = time.perf_counter()
    attempt.error = exc
    if isinstance(exc, UpstreamError) and may_fall_back(exc):
        d.breaker.failure()
    else:
        d.breaker.abandon()


def _usage(ctx: RequestContext, plan: _Plan, usage: Usage | None) -> Usage:
    if usage is None:  # the upstream never said: bill an estimate, marked as such
        usage = Usage(prompt_tokens=estimate_prompt_tokens(plan.scan), completion_tokens=0)
        ctx.estimated = True
    ctx.trace.attempts[-1].usage = usage
    return usage


def _exhausted(ctx: RequestContext, last: LanewayError | None) -> LanewayError:
    if last is not None:
        return last
    open_ = [name for name, why in ctx.trace.skipped if why == "circuit_open"]
    if open_:
        return CircuitOpen(f"deployment {open_[0]!r} is failing (circuit open)")
    return NoDeploymentAvailable("no deployment can serve this relayed Responses request")


def _scan_output(
    gateway: Gateway, ctx: RequestContext, response: dict[str, Any], *, sent: bool = False
) -> None:
    """As chat's output scan: the answer's ``output_text`` parts from an external
    deployment are scanned for the audit, and redacted where the policy says so (unless
    ``sent``: a stream's final response, whose text the client already has)."""
    policies = gateway.settings.policies
    served = gateway.deployments.get(ctx.trace.served_by or "")
    if not policies.output_scan or served is None or served.hosting in PRIVATE_HOSTING:
        return
    from laneway.governance import redact_text, scan_output

    scanner = gateway.governance.scanner
    totals: dict[str, int] = {}
    for item in response.get("output") or ():
        parts = item.get("content") if isinstance(item, dict) else None
        for part in parts if isinstance(parts, list) else ():
            text = part.get("text") if isinstance(part, dict) else None
            if part.get("type") != "output_text" or not isinstance(text, str):
                continue
            counts = scan_output(text, scanner)
            for kind, n in counts.items():
                totals[kind] = totals.get(kind, 0) + n
            if counts and policies.redact_output and not sent:
                part["text"] = redact_text(text, scanner)
    if totals and ctx.admission is not None:
        ctx.admission.audit["output"] = totals


def _model_of(response: Mapping[str, Any]) -> str | None:
    """The model the upstream says answered (for the ledger's drift checks)."""
    model = response.get("model")
    return model[:200] if isinstance(model, str) and model else None


def _headers(ctx: RequestContext, cost: Any) -> list[tuple[bytes, bytes]]:
    headers = _raw_route_headers(ctx)
    cost_text = money(cost)
    if cost_text is not None:
        headers.append((b"x-laneway-cost-usd", cost_text.encode()))
    return headers


def _save(
    store: ResponseStore | None, plan: _Plan, ctx: RequestContext, response: dict[str, Any]
) -> None:
    if store is None or not plan.store or not isinstance(response.get("id"), str):
        return
    mark = {"role": RELAY_MARK, "deployment": ctx.trace.served_by}
    store.save(response["id"], ctx.key_id, [mark], response)


async def _complete(
    gateway: Gateway,
    ctx: RequestContext,
    chosen: list[Deployment],
    plan: _Plan,
    store: ResponseStore | None,
    protocol: ClientProtocol,
    receive: Receive,
) -> Response:
    """The first deployment that answers, while watching for the client leaving."""
    answered: list[dict[str, Any]] = []
    outcome = await call_core(ctx, receive, _call(gateway, ctx, chosen, plan, answered))
    if outcome is None:
        return Response(status_code=499)  # the client left; the ledger says 499
    if outcome.error is not None or not answered:
        error = outcome.error or LanewayError("internal error (see the gateway's log)")
        return error_response(gateway.sanitize(error) or error, ctx.request_id, protocol)
    _save(store, plan, ctx, answered[0])
    return JSONBytesResponse(orjson.dumps(answered[0]), _headers(ctx, outcome.cost))


async def _call(
    gateway: Gateway,
    ctx: RequestContext,
    chosen: list[Deployment],
    plan: _Plan,
    answered: list[dict[str, Any]],
) -> CallOutcome:
    outcome = CallOutcome(status=200)
    last: LanewayError | None = None
    try:
        for d in chosen:
            begun = _begin(ctx, d)
            if begun is None:
                continue
            relay, attempt = begun
            try:
                response, usage = await relay.create(plan.doc)
            except LanewayError as exc:
                _failed(d, attempt, exc)
                if not may_fall_back(exc):
                    raise
                last = exc
                continue
            except BaseException:
                attempt.ended = time.perf_counter()
                ctx.trace.served_by = d.name  # a 499: the row names the deployment it was on
                d.breaker.abandon()
                raise
            d.breaker.success()
            attempt.ended = attempt.first_byte = time.perf_counter()
            ctx.trace.served_by = d.name
            ctx.served_model = _model_of(response)
            outcome.usage = _usage(ctx, plan, usage)
            answered.append(response)
            break
        if not answered:
            raise _exhausted(ctx, last)
        _scan_output(gateway, ctx, answered[0])  # before finish: the audit goes in the ledger
        outcome.cost = gateway.request_cost(ctx)
        outcome.priced = True
    except LanewayError as exc:
        outcome.status, outcome.error = exc.status, exc
    except asyncio.CancelledError:
        outcome.status, outcome.partial = 499, True
        outcome.usage = _usage(ctx, plan, None) if ctx.trace.attempts else None
        raise
    finally:
        gateway.finish(ctx, outcome)
    return outcome


async def _stream(
    gateway: Gateway,
    ctx: RequestContext,
    chosen: list[Deployment],
    plan: _Plan,
    protocol: ClientProtocol,
) -> Response:
    """Open the first deployment that answers (falling over before the first event), then
    send its events on as they come; the ledger row is written when the stream ends."""
    last: LanewayError | None = None
    for d in chosen:
        begun = _begin(ctx, d)
        if begun is None:
            continue
        relay, attempt = begun
        events = relay.stream(plan.doc)
        try:
            first = await anext(events)
        except LanewayError as exc:
            await events.aclose()
            _failed(d, attempt, exc)
            if not may_fall_back(exc):
                return _refused(gateway, ctx, exc, protocol)
            last = exc
            continue
        except BaseException:
            d.breaker.abandon()
            await events.aclose()
            raise
        attempt.first_byte = time.perf_counter()
        ctx.trace.served_by = d.name
        body = _relayed(gateway, ctx, plan, d, attempt, first, events)
        headers = _headers(ctx, None)
        headers.extend(_SSE_HEADERS)
        return _RelayResponse(body, headers, ctx)
    return _refused(gateway, ctx, _exhausted(ctx, last), protocol)


_SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class _RelayResponse(Response):
    """The relayed events as they come. A watcher on ``receive()`` notices the client
    leaving (uvicorn's ``send`` then does nothing), sets ``ctx.client_gone`` and cancels
    the stream, whose ``finally`` writes the 499 ledger row; any other cancellation is the
    server's own and goes on."""

    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        headers: list[tuple[bytes, bytes]],
        ctx: RequestContext,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = headers
        self._body = body
        self._ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self._ctx
        main = asyncio.current_task()
        watcher = asyncio.ensure_future(receive())

        def on_message(task: asyncio.Future[ASGIMessage]) -> None:
            if task.cancelled() or task.exception() is not None:
                return
            if task.result()["type"] == "http.disconnect" and main is not None:
                ctx.client_gone = True
                main.cancel()

        watcher.add_done_callback(on_message)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for chunk in self._body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not ctx.client_gone:
                raise
            if main is not None:
                main.uncancel()  # handled: the client is gone and its stream was ledgered
        except OSError:  # the client is gone (a server that reports it this way)
            ctx.client_gone = True
        finally:
            watcher.remove_done_callback(on_message)
            watcher.cancel()
            await close_stream(self._body)


def _error_event(exc: LanewayError, sequence: int) -> bytes:
    """A Responses stream's ``error`` event (numbered after the events relayed)."""
    error = orjson.loads(error_body(exc))["error"]
    payload = {"type": "error", "sequence_number": sequence, **error}
    return b"event: error\ndata: " + orjson.dumps(payload) + b"\n\n"


def _refused(
    gateway: Gateway, ctx: RequestContext, exc: LanewayError, protocol: ClientProtocol
) -> Response:
    gateway.finish(ctx, CallOutcome(status=exc.status, error=exc))
    return error_response(gateway.sanitize(exc) or exc, ctx.request_id, protocol)


async def _relayed(
    gateway: Gateway,
    ctx: RequestContext,
    plan: _Plan,
    d: Deployment,
    attempt: Attempt,
    first: RelayEvent,
    events: AsyncGenerator[RelayEvent, None],
) -> AsyncGenerator[bytes, None]:
    first_byte = attempt.first_byte
    outcome = CallOutcome(status=200, ttft=None if first_byte is None else first_byte - ctx.started)
    usage: Usage | None = None
    final: RelayEvent | None = None
    sent = 0
    try:
        event: RelayEvent | None = first
        while event is not None:
            yield event.raw
            sent += 1
            if event.response is not None:
                final, usage = event, event.usage
                ctx.served_model = _model_of(event.response)
                _scan_output(gateway, ctx, event.response, sent=True)  # the audit only
            event = await anext(events, None)
        d.breaker.success()
        if final is not None and final.kind == "response.failed":
            outcome.status = 502
        outcome.usage = _usage(ctx, plan, usage)
        outcome.cost = gateway.request_cost(ctx)
        outcome.priced = True
    except LanewayError as exc:  # after the start: the client gets an error event
        _failed(d, attempt, exc)
        outcome.status, outcome.error, outcome.partial = exc.status, exc, True
        outcome.usage = _usage(ctx, plan, usage)
        yield _error_event(gateway.sanitize(exc) or exc, sent)
    except (asyncio.CancelledError, GeneratorExit):  # the client left
        d.breaker.abandon()
        ctx.client_gone = True
        outcome.status, outcome.partial = 499, True
        outcome.usage = _usage(ctx, plan, usage)
        raise
    finally:
        attempt.ended = time.perf_counter()
        await asyncio.shield(events.aclose())
        gateway.finish(ctx, outcome)
