"""The one request handler of every chat-shaped client protocol (chat completions,
Anthropic Messages, Responses): read and parse the request, call the core once
(:meth:`Gateway.complete` or :meth:`Gateway.stream`), render what it returns, and watch
for the client leaving. What differs per protocol — parsing, credentials, rendering
answers, stream events and errors — comes from a
:class:`~laneway.server._protocol.ClientProtocol`; admission, routing, the upstream
calls, accounting and the ledger are the core's (``laneway.gateway``)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Generator
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from laneway.errors import (
    InvalidRequest,
    LanewayError,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from laneway.gateway import CallOutcome, Gateway, RequestContext, close_stream
from laneway.providers import ChatRequest, StreamDelta
from laneway.router import TASK_NAME
from laneway.server._protocol import OPENAI_CHAT, ClientProtocol, StreamEncoder
from laneway.server._render import _finish_step, money, send_events

__all__ = [
    "JSONBytesResponse",
    "SSEResponse",
    "call_core",
    "chat_completions",
    "error_response",
    "handle",
    "handle_chat",
    "read_body",
    "read_request",
    "refuse",
]

log = logging.getLogger("laneway.server")
_JSON = "application/json"


class JSONBytesResponse(Response):
    """An already rendered JSON body with raw ASGI headers built by the caller (Starlette's
    ``init_headers`` re-checks and re-encodes every header, ~5 µs a response)."""

    media_type = _JSON

    def __init__(
        self, body: bytes, headers: list[tuple[bytes, bytes]], status_code: int = 200
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        headers.append((b"content-length", b"%d" % len(body)))
        headers.append((b"content-type", _JSON_BYTES))
        self.raw_headers = headers


_JSON_BYTES = _JSON.encode()


def error_response(
    exc: LanewayError,
    request_id: str | None = None,
    protocol: ClientProtocol = OPENAI_CHAT,
) -> Response:
    headers = exc.headers()
    retry_after = headers.get("retry-after")
    if (
        retry_after is not None
        and retry_after.isdigit()
        and int(retry_after) > _SDK_MAX_RETRY_AFTER_S
    ):
        # A wait no client should sit through in line (a budget resetting next month):
        # both SDKs obey this header; the anthropic SDK would otherwise sleep that long.
        headers["x-should-retry"] = "false"
    if request_id:
        headers["x-laneway-request-id"] = request_id
    return protocol.error_response(exc, headers)


_SDK_MAX_RETRY_AFTER_S = 120  # the openai SDK's own bound (it does not retry past it)


async def read_body(request: Request, limit: int, deadline_s: float | None = None) -> bytes:
    """The request body, at most ``limit`` bytes (413 past it), all of it within
    ``deadline_s`` seconds (408 past it: a client that sends headers and then trickles or
    stops must not hold a worker's memory and a connection for ever)."""
    declared = request.headers.get("content-length")
    return await _read_body(request.receive, declared, limit, deadline_s)


async def _read_body(
    receive: Receive, declared: str | None, limit: int, deadline_s: float | None
) -> bytes:
    """:func:`read_body` with the ``Content-Length`` header's value already found.

    A body that has arrived with the headers (most do: a small request is one packet) is
    taken at once, without the deadline's timer: its first ``receive()`` is stepped by
    hand, and only one that must wait is awaited under the deadline, exactly as ``await``
    would have (same futures, same cancellation)."""
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidRequest("invalid Content-Length header") from None
        if size > limit:
            raise PayloadTooLarge(f"request body of {size} bytes exceeds the {limit}-byte limit")
    step = receive().__await__()
    try:
        pending = step.send(None)
    except StopIteration as done:  # ready without waiting
        first: Message = done.value
        if first["type"] == "http.request" and not first.get("more_body", False):
            body: bytes = first.get("body", b"")
            if len(body) > limit:
                raise PayloadTooLarge(f"request body exceeds the {limit}-byte limit") from None
            return body
        return await _receive_within(receive, limit, deadline_s, first, None, None)
    return await _receive_within(receive, limit, deadline_s, None, step, pending)


async def _receive_within(
    receive: Receive,
    limit: int,
    deadline_s: float | None,
    first: Message | None,
    step: Generator[Any, Any, Message] | None,
    pending: Any,
) -> bytes:
    """The rest of the body within ``deadline_s``: ``first`` (a message already
    received) or the started ``step`` that waits for it, then the messages after it."""
    deadline = _BodyDeadline(deadline_s) if deadline_s is not None else None
    try:
        if step is not None:
            first = await _finish_step(step, pending)
        return await _receive_body(receive, limit, first)
    except asyncio.CancelledError:
        if deadline is None or not deadline.fired:
            raise
        deadline.absorb()
        raise RequestTimeout(f"the request body did not arrive within {deadline_s:g} s") from None
    finally:
        if deadline is not None:
            deadline.stop()


async def _receive_body(receive: Receive, limit: int, first: Message | None = None) -> bytes:
    chunks: list[bytes] = []
    total = 0
    message = first
    while True:  # the ASGI messages themselves: Starlette's stream() adds a generator layer
        if message is None:
            message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"request body exceeds the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
        message = None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _BodyDeadline:
    """Cancels the current task when the body has not arrived after ``seconds`` (a timer
    handle, cheaper than ``asyncio.timeout``'s context per request); ``fired`` tells that
    cancellation from any other."""

    __slots__ = ("_task", "_timer", "fired")

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._task = asyncio.current_task()
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            seconds, self._fire
        )

    def _fire(self) -> None:
        self._timer = None
        if self._task is not None:
            self.fired = True
            self._task.cancel()

    def stop(self) -> None:
        self._task = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def absorb(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()


def _raw_route_headers(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    """The ``x-laneway-*`` headers of an answer, as raw ASGI headers (names pre-encoded)."""
    resolution = ctx.resolution
    headers = [
        (b"x-laneway-request-id", ctx.request_id.encode()),
        (b"x-laneway-deployment", _header_value(ctx.trace.served_by or "")),
        (b"x-laneway-tier", _header_value((resolution.tier or "") if resolution else "")),
        (b"x-laneway-route-reason", _header_value(resolution.reason if resolution else "")),
        (b"x-laneway-fallbacks", b"%d" % ctx.trace.fallbacks),
    ]
    if ctx.route_score is not None:
        headers.append((b"x-laneway-route-score", b"%.4f" % ctx.route_score))
    return headers


def _header_value(text: str) -> bytes:
    """Latin-1, as HTTP headers are; a character outside it (a model name the client
    typed, say) becomes ``?`` instead of failing the response."""
    return text.encode("latin-1", "replace")


async def chat_completions(request: Request) -> Response:
    return await handle_chat(request.app.state.gateway, request)


async def handle_chat(gateway: Gateway, request: Request) -> Response:
    """``POST /v1/chat/completions`` for ``gateway`` (the app's fast path calls this
    directly, without looking the gateway up in the app's state)."""
    return await handle(gateway, request, OPENAI_CHAT)


async def read_request(
    gateway: Gateway, request: Request, ctx: RequestContext, credentials: str | None
) -> tuple[bytes, str | None]:
    """Authenticate (the key goes into ``ctx``), check the content type and read the body
    within the limits; returns the body and the ``x-laneway-task`` header. Raises the
    client's error; every endpoint that takes a JSON body starts here."""
    governance = gateway.governance
    if governance.auth_required:
        key = await asyncio.to_thread(governance.authenticate, credentials)
        if key is not None:  # None: the master key
            ctx.key = key
            ctx.key_id = key.id
    content_type, task_header, declared = _own_headers(request.scope["headers"])
    _check_content_type(content_type)
    limits = gateway.settings.server
    body = await _read_body(request.receive, declared, limits.max_body_bytes, limits.body_timeout_s)
    return body, task_header


async def handle(gateway: Gateway, request: Request, protocol: ClientProtocol) -> Response:
    """One request of ``protocol``: read, parse and admit it, call the gateway once, and
    answer (JSON or SSE) in the protocol's shape."""
    limits = gateway.settings.server
    request_id = gateway.new_request_id()
    ctx = RequestContext(request_id=request_id, started=time.perf_counter(), requested_model="")
    try:
        credentials = (  # Starlette's Headers only when a key is checked
            protocol.credentials(request.headers) if gateway.governance.auth_required else None
        )
        body, task_header = await read_request(gateway, request, ctx, credentials)
        if len(body) <= _PARSE_ON_LOOP_BYTES:
            chat = protocol.parse(body, limits.max_json_depth)
        else:  # its checks (a tool schema's patterns are compiled) must not stall the loop
            chat = await asyncio.to_thread(protocol.parse, body, limits.max_json_depth)
        if protocol.needs_prepare:
            chat = await protocol.prepare(chat, ctx.key_id)
        task, chat = _task_of(task_header, chat)
        ctx.task = task
    except ClientDisconnect:
        gateway.metrics.observe_rejected(499, None)
        return Response(status_code=499)
    except LanewayError as exc:
        refuse(gateway, request.scope, exc, request_id, ctx.key_id)
        return error_response(exc, request_id, protocol)
    ctx.requested_model = chat.model
    ctx.stream = chat.stream
    ctx.request = chat
    if chat.stream:
        return await _stream(gateway, ctx, chat, request.receive, protocol)
    outcome = await call_core(ctx, request.receive, gateway.complete(ctx, chat))
    return _completion(ctx, outcome, protocol)


# Bodies up to this size are parsed and checked on the event loop; larger ones in a
# thread: a tool schema's regex patterns are compiled to check them (~1 ms per KB of
# patterns), and a 1 MB body of them held the loop for a second.
_PARSE_ON_LOOP_BYTES = 16 * 1024


def refuse(
    gateway: Gateway,
    scope: Scope,
    exc: LanewayError,
    request_id: str | None = None,
    key_id: str | None = None,
) -> None:
    """Count and record a request refused before the core saw it (bad headers or body,
    wrong key, too large, too slow): its client address and path, never the body."""
    gateway.metrics.observe_rejected(exc.status, exc.code)
    client = scope.get("client")
    gateway.record_refused(
        exc,
        request_id=request_id,
        key_id=key_id,
        client=str(client[0]) if client else None,
        path=str(scope.get("path", "")),
    )


def _own_headers(
    raw: list[tuple[bytes, bytes]],
) -> tuple[str | None, str | None, str | None]:
    """``content-type``, ``x-laneway-task`` and ``content-length`` from the raw headers
    (names are lower case in ASGI), through one dictionary built in C: cheaper than a
    loop in Python, or lookups through Starlette's ``Headers``, which re-encodes each
    name. A repeated header counts with its last value (the HTTP parser refuses a
    repeated ``Content-Length``)."""
    found = dict(raw)
    content_type = found.get(b"content-type")
    task = found.get(b"x-laneway-task")
    length = found.get(b"content-length")
    return (
        None if content_type is None else content_type.decode("latin-1"),
        None if task is None else task.decode("latin-1"),
        None if length is None else length.decode("latin-1"),
    )


def _task_of(header: str | None, chat: ChatRequest) -> tuple[str | None, ChatRequest]:
    """The request's task for per-task routing and reports: ``metadata.laneway_task`` in
    the body (taken out of what is forwarded upstream) or the ``x-laneway-task`` header."""
    task = header
    metadata = chat.options.get("metadata")
    if isinstance(metadata, dict) and "laneway_task" in metadata:
        rest = {k: v for k, v in metadata.items() if k != "laneway_task"}
        options = {k: v for k, v in chat.options.items() if k != "metadata"}
        if rest:
            options["metadata"] = rest
        task = metadata["laneway_task"]
        chat = dataclasses.replace(chat, options=options)
    if task is None:
        return None, chat
    if not isinstance(task, str) or TASK_NAME.fullmatch(task) is None:
        raise InvalidRequest(
            "the task (x-laneway-task or metadata.laneway_task) must be 1-64 letters, digits "
            "or _ . : / - starting with a letter or digit",
            param="metadata.laneway_task",
        )
    return task, chat


def _check_content_type(value: str | None) -> None:
    """JSON bodies only: ``application/json`` or a ``+json`` type, any parameters. A
    missing header is accepted (some clients omit it); any other type is 415."""
    if value is None:
        return
    media = value.split(";", 1)[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    shown = media[:60] or "(empty)"
    raise UnsupportedMediaType(
        f"Content-Type {shown!r} is not supported: send the body as application/json"
    )


class DisconnectWatch:
    """Cancels the request's task when the client disconnects while the core works on an
    answer (the whole non-streaming call, or a stream's first delta), after setting
    ``ctx.client_gone`` so that the core bills what was used and records a 499.

    Once the body has been read, the only ASGI message left is ``http.disconnect``; a
    task waiting on ``receive()`` notices it. That task is started only when the answer
    takes longer than ``ARM_AFTER_S``: most answers come sooner, and a timer costs far
    less than a task per request (a client that leaves is noticed at most that much
    later; a response already streaming watches at once: ``arm_after=0``). :meth:`stop`
    (always called) cancels the timer or the task."""

    ARM_AFTER_S = 0.05

    __slots__ = ("_ctx", "_main", "_receive", "_task", "_timer")

    def __init__(
        self, receive: Receive, ctx: RequestContext, arm_after: float = ARM_AFTER_S
    ) -> None:
        self._ctx = ctx
        self._main: asyncio.Task[Any] | None = asyncio.current_task()
        self._receive = receive
        self._task: asyncio.Future[Message] | None = None
        self._timer: asyncio.TimerHandle | None = None
        if arm_after > 0:
            self._timer = asyncio.get_running_loop().call_later(arm_after, self._arm)
        else:
            self._arm()

    def _arm(self) -> None:
        self._timer = None
        if self._main is None:
            return
        self._task = asyncio.ensure_future(self._receive())
        self._task.add_done_callback(self._on_message)

    def _on_message(self, task: asyncio.Future[Message]) -> None:
        main = self._main
        if main is None or task.cancelled() or task.exception() is not None:
            return
        if task.result()["type"] == "http.disconnect":
            self._ctx.client_gone = True
            main.cancel()

    def stop(self) -> None:
        self._main = None  # a callback already scheduled now does nothing
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def settle(self) -> None:
        """After the answer arrived: if the client left meanwhile, take the cancellation
        still pending on this task here (``CancelledError``), not in the response."""
        if self._ctx.client_gone:
            await asyncio.sleep(0)


def _uncancel() -> None:
    """The cancellation was handled here (the client is gone): withdraw it."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


async def call_core(
    ctx: RequestContext, receive: Receive, call: Awaitable[CallOutcome]
) -> CallOutcome | None:
    """Await the core's answer (``call``: one :class:`Gateway` call) while watching for
    the client leaving; ``None`` when it left (the core recorded a 499)."""
    watch = DisconnectWatch(receive, ctx)
    try:
        outcome = await call
        await watch.settle()
    except asyncio.CancelledError:
        if not ctx.client_gone:
            raise
        _uncancel()
        return None
    finally:
        watch.stop()
    if outcome.error is not None and ctx.client_gone:
        _uncancel()  # something below turned the client's leaving into an error
    return outcome


def _completion(
    ctx: RequestContext, outcome: CallOutcome | None, protocol: ClientProtocol
) -> Response:
    """The JSON answer to a non-streamed request (a plain function: no coroutine layer)."""
    if outcome is None:
        return Response(status_code=499)  # the client left; nobody reads it
    result = outcome.result
    if result is None:
        return error_response(_error_of(outcome), ctx.request_id, protocol)
    cost = outcome.cost
    headers = _raw_route_headers(ctx)
    cost_text = money(cost)
    if cost_text is not None:
        headers.append((b"x-laneway-cost-usd", cost_text.encode()))
    body = protocol.completion(
        result,
        request_id=ctx.request_id,
        created=int(time.time()),
        model=ctx.model_id,
        cost=cost,
    )
    return JSONBytesResponse(body, headers)


def _error_of(outcome: CallOutcome) -> LanewayError:
    return outcome.error or LanewayError("internal error (see the gateway's log)")


async def _stream(
    gateway: Gateway,
    ctx: RequestContext,
    chat: ChatRequest,
    receive: Receive,
    protocol: ClientProtocol,
) -> Response:
    events = gateway.stream(ctx, chat)
    watch = DisconnectWatch(receive, ctx)
    try:
        first = await anext(events)
        await watch.settle()
    except asyncio.CancelledError:
        await close_stream(events)
        if not ctx.client_gone:
            raise
        _uncancel()
        return Response(status_code=499)
    finally:
        watch.stop()
    if isinstance(first, CallOutcome):  # failed before the first delta: a normal error
        await close_stream(events)  # the core records the request
        if ctx.client_gone:
            _uncancel()  # something below turned the client's leaving into an error
        return error_response(_error_of(first), ctx.request_id, protocol)
    headers = _raw_route_headers(ctx)
    headers.extend(_SSE_HEADERS)
    encoder = protocol.encoder(chat, request_id=ctx.request_id, model=ctx.model_id)
    return SSEResponse(first, events, encoder, headers, ctx)


_SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class SSEResponse(Response):
    """A stream from the core (deltas, then one outcome), rendered by the protocol's
    encoder and sent as it comes.

    Lighter than Starlette's ``StreamingResponse`` (one watcher task instead of a task
    group, no header re-encoding) and in control of how a stream ends. A watcher on
    ``receive()`` notices the client leaving (uvicorn's ``send`` then does nothing, so
    that is the only way to know), sets ``ctx.client_gone`` and cancels the stream: the
    core's ``finally`` bills what was sent. Any other cancellation is the server's
    shutdown: the core ends the stream with an error the client can read."""

    def __init__(
        self,
        first: StreamDelta,
        events: AsyncGenerator[StreamDelta | CallOutcome, None],
        encoder: StreamEncoder,
        headers: list[tuple[bytes, bytes]],
        ctx: RequestContext,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = headers
        self._first = first
        self._events = events
        self._encoder = encoder
        self._ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        events = self._events
        encoder = self._encoder
        ctx = self._ctx
        watch = DisconnectWatch(receive, ctx, arm_after=0)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            # events ready together leave in one write (see send_events)
            first = encoder.delta(self._first, True)
            await send_events(
                events, self._render, send, held=first, before_cancel=self._write_failed
            )
        except asyncio.CancelledError:
            if not ctx.client_gone:
                raise
            _uncancel()  # handled: the client is gone and its stream was billed
        except OSError:  # the client is gone (a server that reports it this way)
            ctx.client_gone = True
        except Exception as exc:  # rendering failed (a bug): the core records it as one
            await self._fail(exc, send)
        finally:
            watch.stop()
            await close_stream(events)

    def _render(self, item: StreamDelta | CallOutcome) -> bytes:
        encoder = self._encoder
        if isinstance(item, StreamDelta):
            return encoder.delta(item, False)
        if item.error is None:
            return encoder.end(item.usage, item.finish_reason or "stop", item.cost)
        return encoder.error(item.error)

    def _write_failed(self, exc: BaseException) -> None:
        """A write failed while the core's stream waited: it is about to be cancelled
        there, so say first whether that is the client leaving (billed as such)."""
        if isinstance(exc, OSError):
            self._ctx.client_gone = True

    async def _fail(self, exc: Exception, send: Send) -> None:
        """Hand a rendering failure to the core (it logs it and records an internal
        error) and end the stream with the error event it returns."""
        try:
            final = await self._events.athrow(exc)
        except Exception:  # the core's stream had already ended: it is recorded
            return
        if isinstance(final, CallOutcome) and final.error is not None:
            with contextlib.suppress(Exception):
                body = self._encoder.error(final.error)
                await send({"type": "http.response.body", "body": body, "more_body": True})
