"""``POST /v1/responses`` requests that only OpenAI's Responses API can honour, relayed to
it: reasoning items replayed from an earlier answer, ``include:
["reasoning.encrypted_content"]``, or a ``previous_response_id`` that names a response
relayed before (its state lives upstream). Every other request takes the translated
path (``_responses_render``: any deployment, through chat completions). This module
decides that a request is relayed, calls the core once (``Gateway.relay`` /
``Gateway.relay_stream``: governing, the candidate chain, accounting and the ledger row
are there), keeps a stored response, and renders the answer or streams the events while
watching for the client leaving.

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
upstream sent it, its final response scanned for the audit only, but for how it fails:
as a translated stream does (``response.failed``, unless the upstream sent it, then an
``error`` event the ``openai`` SDK raises for). Not applied: cascades and shadow copies.
A client that leaves is ledgered 499 (its prompt billed as an estimate).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator, Mapping
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message as ASGIMessage
from starlette.types import Receive, Scope, Send

from laneway.errors import InvalidRequest, LanewayError
from laneway.gateway import (
    CallOutcome,
    Gateway,
    RelayOutcome,
    RelayRequest,
    RequestContext,
    close_stream,
)
from laneway.governance import unvisited_strings
from laneway.server._chat import (
    _PARSE_ON_LOOP_BYTES,
    DisconnectWatch,
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
from laneway.server._render import money
from laneway.server._response_store import ResponseStore
from laneway.server._responses import parse_responses_body
from laneway.server._responses_render import failure_events
from laneway.settings import ResponsesSettings

__all__ = ["RELAY_MARK", "serve_responses"]

RELAY_MARK = "laneway_relay"  # the stored conversation of a relayed response: its deployment
_INCLUDE = "reasoning.encrypted_content"
_REASONING_KEYS = frozenset({"type", "id", "summary", "encrypted_content", "content", "status"})


@dataclasses.dataclass(slots=True)
class _Plan:
    request: RelayRequest  # what the core relays
    store: bool  # keep the upstream's response (``GET /v1/responses/{id}``)


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
        replayed = _replay(body, request.receive)
        return await handle(gateway, Request(request.scope, replayed), protocol)
    relay = plan.request
    ctx.requested_model = str(relay.doc["model"])
    ctx.request = relay.scan
    ctx.stream = bool(relay.doc.get("stream"))
    if ctx.stream:
        return await _stream(gateway, ctx, relay, protocol)
    return await _complete(gateway, ctx, plan, store, protocol, request.receive)


def _replay(body: bytes, then: Receive) -> Receive:
    """A ``receive`` that hands the body already read to the translated path once, then
    passes on what the connection says next (its ``http.disconnect``: the handler
    watches for the client leaving)."""
    sent = False

    async def receive() -> ASGIMessage:
        nonlocal sent
        if sent:
            return await then()
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
    if len(body) <= _PARSE_ON_LOOP_BYTES:
        return _relay_plan(doc, why, deployment, max_depth, settings)
    # as the translated path: a large body's checks (tool schemas) off the event loop
    return await asyncio.to_thread(_relay_plan, doc, why, deployment, max_depth, settings)


def _relay_plan(
    doc: dict[str, Any],
    why: str,
    deployment: str | None,
    max_depth: int,
    settings: ResponsesSettings,
) -> _Plan:
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
    # the body goes out as it is: what the translation dropped (item ids, annotations,
    # settings) is scanned too; encrypted_content is OpenAI's ciphertext, model replaced
    unread = unvisited_strings(doc, scan, _NOT_SCANNED)
    if unread:
        scan = dataclasses.replace(scan, options={**options, "relayed": unread})
    return _Plan(RelayRequest(doc, why, deployment, scan), parsed.store)


_NOT_SCANNED = frozenset({"model", "encrypted_content"})


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


# -- rendering -----------------------------------------------------------------------------


def _headers(ctx: RequestContext, cost: Decimal | None) -> list[tuple[bytes, bytes]]:
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
    plan: _Plan,
    store: ResponseStore | None,
    protocol: ClientProtocol,
    receive: Receive,
) -> Response:
    """The core's answer, while watching for the client leaving."""
    outcome = await call_core(ctx, receive, gateway.relay(ctx, plan.request))
    if outcome is None:
        return Response(status_code=499)  # the client left; the ledger says 499
    response = outcome.response if isinstance(outcome, RelayOutcome) else None
    if outcome.error is not None or response is None:
        error = outcome.error or LanewayError("internal error (see the gateway's log)")
        return error_response(gateway.sanitize(error) or error, ctx.request_id, protocol)
    _save(store, plan, ctx, response)
    return JSONBytesResponse(orjson.dumps(response), _headers(ctx, outcome.cost))


async def _stream(
    gateway: Gateway, ctx: RequestContext, relay: RelayRequest, protocol: ClientProtocol
) -> Response:
    """The upstream's events as they come (the core opened the first deployment that
    answered), or the refusal; the ledger row is written when the stream ends."""
    opened = await gateway.relay_stream(ctx, relay)
    if isinstance(opened, CallOutcome):
        error = opened.error or LanewayError("internal error (see the gateway's log)")
        return error_response(gateway.sanitize(error) or error, ctx.request_id, protocol)
    headers = _headers(ctx, None)
    headers.extend(_SSE_HEADERS)
    return _RelayResponse(_events(gateway, opened), headers, ctx)


_SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


async def _events(
    gateway: Gateway, relayed: AsyncGenerator[bytes | LanewayError, None]
) -> AsyncGenerator[bytes, None]:
    """The relayed events byte for byte; a failure after the start ends the stream as
    the translated path's does (``failure_events``, numbered after the events relayed):
    ``response.failed`` (unless the upstream sent its own terminal event), then an
    ``error`` event. Closing this closes the core's stream (its ledger row)."""
    sent = 0
    snapshot: dict[str, Any] | None = None  # response.created's response
    ended = False  # a terminal event was relayed
    try:
        async for item in relayed:
            if isinstance(item, LanewayError):
                exc = gateway.sanitize(item) or item
                yield failure_events(exc, sent, None if ended else _failed_snapshot(snapshot))
                continue
            if sent == 0 and item.startswith(_CREATED):
                snapshot = _response_of(item)
            elif item.startswith(_TERMINAL):
                ended = True
            yield item
            sent += 1
    finally:
        await close_stream(relayed)


_CREATED = b"event: response.created\n"
_TERMINAL = (
    b"event: response.completed\n",
    b"event: response.failed\n",
    b"event: response.incomplete\n",
)


def _response_of(event: bytes) -> dict[str, Any] | None:
    """The ``response`` of a relayed event (``event: …\\ndata: {json}``), if it has one."""
    try:
        payload = orjson.loads(event[event.index(b"\ndata: ") + 7 :])
    except (ValueError, orjson.JSONDecodeError):
        return None
    response = payload.get("response") if isinstance(payload, dict) else None
    return response if isinstance(response, dict) else None


def _failed_snapshot(created: dict[str, Any] | None) -> dict[str, Any]:
    """The response a failed relayed stream's ``response.failed`` carries: the one
    ``response.created`` announced (its id: clients match it), without usage."""
    return {**(created or {"object": "response", "output": []}), "usage": None}


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
        watch = DisconnectWatch(receive, ctx, arm_after=0)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for chunk in self._body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not ctx.client_gone:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # handled: the client is gone and its stream was ledgered
        except OSError:  # the client is gone (a server that reports it this way)
            ctx.client_gone = True
        finally:
            watch.stop()
            await close_stream(self._body)
