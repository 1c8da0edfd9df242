"""The one request handler of every client protocol (chat completions, Anthropic
Messages): limits, the gateway call, disconnects, streams, accounting. What differs per
protocol — parsing, credentials, rendering answers, stream events and errors — comes
from a :class:`~laneway.server._protocol.ClientProtocol`."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
import traceback
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from typing import Any, TypeVar

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from laneway.errors import (
    InvalidRequest,
    LanewayError,
    PayloadTooLarge,
    RequestTimeout,
    ShuttingDown,
    StreamInterrupted,
    UnsupportedMediaType,
    UpstreamBadResponse,
)
from laneway.providers import (
    ChatRequest,
    StreamDelta,
    Usage,
    estimate_prompt_tokens,
    text_tokens,
)
from laneway.server._gateway import CallOutcome, Gateway, RequestContext
from laneway.server._protocol import OPENAI_CHAT, ClientProtocol, StreamEncoder
from laneway.server._render import money

__all__ = [
    "JSONBytesResponse",
    "chat_completions",
    "error_response",
    "handle",
    "handle_chat",
    "read_body",
    "read_request",
]

log = logging.getLogger("laneway.server")
_T = TypeVar("_T")
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
    if request_id:
        headers["x-laneway-request-id"] = request_id
    return protocol.error_response(exc, headers)


async def read_body(request: Request, limit: int, deadline_s: float | None = None) -> bytes:
    """The request body, at most ``limit`` bytes (413 past it), all of it within
    ``deadline_s`` seconds (408 past it: a client that sends headers and then trickles or
    stops must not hold a worker's memory and a connection for ever)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InvalidRequest("invalid Content-Length header") from None
        if size > limit:
            raise PayloadTooLarge(f"request body of {size} bytes exceeds the {limit}-byte limit")
    deadline = _BodyDeadline(deadline_s) if deadline_s is not None else None
    try:
        return await _receive_body(request.receive, limit)
    except asyncio.CancelledError:
        if deadline is None or not deadline.fired:
            raise
        deadline.absorb()
        raise RequestTimeout(f"the request body did not arrive within {deadline_s:g} s") from None
    finally:
        if deadline is not None:
            deadline.stop()


async def _receive_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:  # the ASGI messages themselves: Starlette's stream() adds a generator layer
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
    content_type, task_header = _own_headers(request.scope["headers"])
    _check_content_type(content_type)
    limits = gateway.settings.server
    body = await read_body(request, limits.max_body_bytes, limits.body_timeout_s)
    return body, task_header


async def handle(gateway: Gateway, request: Request, protocol: ClientProtocol) -> Response:
    """One request of ``protocol``: read, parse and admit it, call the gateway once, and
    answer (JSON or SSE) in the protocol's shape."""
    limits = gateway.settings.server
    request_id = gateway.new_request_id()
    ctx = RequestContext(request_id=request_id, started=time.perf_counter(), requested_model="")
    try:
        body, task_header = await read_request(
            gateway, request, ctx, protocol.credentials(request.headers)
        )
        chat = protocol.parse(body, limits.max_json_depth)
        if protocol.needs_prepare:
            chat = await protocol.prepare(chat, ctx.key_id)
        task, chat = _task_of(task_header, chat)
        ctx.task = task
    except ClientDisconnect:
        gateway.metrics.observe_rejected(499, None)
        return Response(status_code=499)
    except LanewayError as exc:
        gateway.metrics.observe_rejected(exc.status, exc.code)
        gateway.record_refused(request.scope, exc, request_id=request_id, key_id=ctx.key_id)
        return error_response(exc, request_id, protocol)
    ctx.requested_model = chat.model
    ctx.stream = chat.stream
    ctx.request = chat
    if chat.stream:
        return await _stream(gateway, ctx, chat, request.receive, protocol)
    return await _complete(gateway, ctx, chat, request.receive, protocol)


def _own_headers(raw: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """``content-type`` and ``x-laneway-task`` in one pass over the raw headers (cheaper
    than two lookups through Starlette's ``Headers``, which re-encodes each name)."""
    content_type = task = None
    for name, value in raw:
        if name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"x-laneway-task":
            task = value.decode("latin-1")
    return content_type, task


_TASK = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}")


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
    if not isinstance(task, str) or _TASK.fullmatch(task) is None:
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


class _DisconnectWatch:
    """Cancels the request's task when the client disconnects while the gateway waits for
    an answer (the whole non-streaming call, or a stream's first delta).

    Once the body has been read, the only ASGI message left is ``http.disconnect``; a
    task waiting on ``receive()`` notices it. That task is started only when the answer
    takes longer than ``ARM_AFTER_S``: most answers come sooner, and a timer costs far
    less than a task per request (a client that leaves is noticed at most that much
    later). :meth:`stop` (always called) cancels the timer or the task. ``fired`` tells
    the cancellation it caused from any other one."""

    ARM_AFTER_S = 0.05

    __slots__ = ("_main", "_receive", "_task", "_timer", "fired")

    def __init__(self, receive: Receive) -> None:
        self.fired = False
        self._main: asyncio.Task[Any] | None = asyncio.current_task()
        self._receive = receive
        self._task: asyncio.Future[Message] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            self.ARM_AFTER_S, self._arm
        )

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
            self.fired = True
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
        if self.fired:
            await asyncio.sleep(0)

    def absorb(self) -> None:
        """The cancellation came from this watch: it is handled, so withdraw it."""
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


async def _watched(
    gateway: Gateway,
    ctx: RequestContext,
    chat: ChatRequest,
    receive: Receive,
    answer: Coroutine[Any, Any, _T],
    protocol: ClientProtocol,
) -> _T | Response:
    """Await ``answer`` (the whole completion, or a stream's first delta) while watching
    for the client leaving; a failure is recorded and becomes the response to send."""
    watch = _DisconnectWatch(receive)
    try:
        got = await answer
        await watch.settle()
    except asyncio.CancelledError as exc:
        usage = _abandoned_usage(ctx, chat, exc)
        if not watch.fired:
            # Cancelled from outside: the server's grace period after SIGTERM is over.
            # The client still gets an answer it can read (and retry elsewhere).
            err: LanewayError = ShuttingDown("the gateway is shutting down; retry the request")
            gateway.finish(ctx, CallOutcome(status=err.status, error=err, usage=usage))
            _uncancel()
            return error_response(err, ctx.request_id, protocol)
        gateway.finish(ctx, CallOutcome(status=499, partial=True, usage=usage))
        watch.absorb()
        return Response(status_code=499)  # nobody reads it: the server drops it
    except LanewayError as exc:
        if watch.fired:  # something below turned the cancellation into an error
            watch.absorb()
        gateway.finish(ctx, CallOutcome(status=exc.status, error=exc))
        return error_response(gateway.sanitize(exc), ctx.request_id, protocol)
    except Exception as exc:
        err = _internal_error(ctx, exc)
        usage = _abandoned_usage(ctx, chat, exc, err)
        gateway.finish(ctx, CallOutcome(status=err.status, error=err, usage=usage))
        return error_response(err, ctx.request_id, protocol)
    finally:
        watch.stop()
    return got


async def _complete(
    gateway: Gateway,
    ctx: RequestContext,
    chat: ChatRequest,
    receive: Receive,
    protocol: ClientProtocol,
) -> Response:
    got = await _watched(gateway, ctx, chat, receive, gateway.complete(ctx, chat), protocol)
    if isinstance(got, Response):
        return got
    result = got
    cost = gateway.request_cost(ctx)
    headers = _raw_route_headers(ctx)
    cost_text = money(cost)
    if cost_text is not None:
        headers.append((b"x-laneway-cost-usd", cost_text.encode()))
    body = protocol.completion(
        result,
        request_id=ctx.request_id,
        created=int(time.time()),
        model=_served_model(gateway, ctx, chat),
        cost=cost,
    )
    usage = result.usage if result.usage is not None else ctx.estimated_usage
    gateway.finish(ctx, CallOutcome(status=200, usage=usage, cost=cost))
    if gateway.shadow is not None:
        gateway.shadow.offer(ctx, result, result.content, cost)
    return JSONBytesResponse(body, headers)


def _served_model(gateway: Gateway, ctx: RequestContext, chat: ChatRequest) -> str:
    served = ctx.trace.served_by
    deployment = gateway.deployments.get(served) if served else None
    return deployment.model_id if deployment is not None else chat.model


def _internal_error(ctx: RequestContext, exc: Exception) -> LanewayError:
    """Log an unexpected exception (its type and frames, not its message: that may hold
    request data) and return the client's ``internal_error``."""
    log.error(
        "unexpected %s in request %s\n%s",
        type(exc).__name__,
        ctx.request_id,
        "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
    )
    return LanewayError("internal error (see the gateway's log)")


def _client_closed() -> LanewayError:
    """The error recorded on an upstream call the client walked away from."""
    err = LanewayError("the client closed the connection")
    err.status, err.type, err.code = 499, "client_error", "client_closed"
    return err


def _settle_partial(
    ctx: RequestContext,
    chat: ChatRequest,
    usage: Usage | None,
    completion: int,
    error: LanewayError | None,
) -> Usage | None:
    """Close the record of the call a request ended in the middle of (client gone, stream
    cut, unexpected error): mark it partial and failed, and bill what was sent and
    generated (``usage`` when the upstream said, else the estimate and ``completion``)."""
    last = ctx.trace.attempts[-1] if ctx.trace.attempts else None
    if last is None:
        return usage
    if usage is None:
        usage = last.usage or Usage(
            prompt_tokens=estimate_prompt_tokens(chat), completion_tokens=completion
        )
    if last.usage is None:
        last.usage = usage
    last.partial = True
    if last.error is None:
        last.error = error or _client_closed()
    if last.ended is None:
        last.ended = time.perf_counter()
    return usage


def _abandoned_usage(
    ctx: RequestContext,
    chat: ChatRequest,
    exc: BaseException,
    error: LanewayError | None = None,
) -> Usage | None:
    """Usage of a request that ended while it waited for an answer (cancelled, or an
    unexpected error ``error``): the call in flight, if any, is marked failed and billed
    with what its adapter counted (the embedded model attaches a ``usage`` to its
    cancellation) or the prompt estimate."""
    last = ctx.trace.attempts[-1] if ctx.trace.attempts else None
    if last is None:
        return None
    if last.ended is not None:  # nothing in flight (e.g. waiting to retry)
        return last.usage
    counted = getattr(exc, "usage", None)
    counted = counted if isinstance(counted, Usage) else None
    return _settle_partial(ctx, chat, counted, 0, error)


async def _stream(
    gateway: Gateway,
    ctx: RequestContext,
    chat: ChatRequest,
    receive: Receive,
    protocol: ClientProtocol,
) -> Response:
    opened = await _watched(gateway, ctx, chat, receive, gateway.open_stream(ctx, chat), protocol)
    if isinstance(opened, Response):
        return opened
    first, rest = opened
    ttft = time.perf_counter() - ctx.started
    headers = _raw_route_headers(ctx)
    headers.extend(_SSE_HEADERS)
    state = StreamState()
    encoder = protocol.encoder(
        chat, request_id=ctx.request_id, model=_served_model(gateway, ctx, chat)
    )
    events = _sse(gateway, ctx, chat, first, rest, ttft, state, encoder)
    return SSEResponse(events, headers, state)


_SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class StreamState:
    """Shared by a stream's response and its event source: whether the client left
    (so that a cancellation is told apart from the server's shutdown)."""

    __slots__ = ("client_gone",)

    def __init__(self) -> None:
        self.client_gone = False


class SSEResponse(Response):
    """A stream of already rendered SSE events, sent as they come.

    Lighter than Starlette's ``StreamingResponse`` (one watcher task instead of a task
    group, no header re-encoding) and in control of how a stream ends. A watcher on
    ``receive()`` notices the client leaving (uvicorn's ``send`` then does nothing, so
    that is the only way to know), marks ``state.client_gone`` and cancels the stream:
    the event source's ``finally`` bills what was sent. Any other cancellation is the
    server's shutdown: the event source ends with an error event the client can read."""

    def __init__(
        self,
        events: AsyncGenerator[bytes, None],
        headers: list[tuple[bytes, bytes]],
        state: StreamState,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = headers
        self._events = events
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        events = self._events
        state = self._state
        main = asyncio.current_task()
        watcher = asyncio.ensure_future(receive())

        def on_message(task: asyncio.Future[Message]) -> None:
            if task.cancelled() or task.exception() is not None:
                return
            if task.result()["type"] == "http.disconnect" and main is not None:
                state.client_gone = True
                main.cancel()

        watcher.add_done_callback(on_message)
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for event in events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not state.client_gone:
                raise
            _uncancel()  # handled: the client is gone and its stream was billed
        except OSError:  # the client is gone (a server that reports it this way)
            state.client_gone = True
        finally:
            watcher.remove_done_callback(on_message)
            watcher.cancel()
            await events.aclose()


class _StreamTally:
    """What a stream has said so far: usage, finish reason, rendered chunks, characters
    (for an estimate when the upstream sends no usage) and, for a shadow copy, the text."""

    __slots__ = ("chars", "chunks", "finish", "texts", "usage")

    def __init__(self, *, keep_text: bool) -> None:
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.chunks = 0
        self.chars = 0
        self.texts: list[str] | None = [] if keep_text else None

    def add(self, delta: StreamDelta, ctx: RequestContext, first: bool) -> bool:
        """Count ``delta``; whether to render it (anything in it, or the first one)."""
        if delta.usage is not None:
            self.usage = delta.usage
        if delta.finish_reason is not None:
            self.finish = delta.finish_reason
        if delta.model:
            ctx.served_model = delta.model
        if delta.system_fingerprint:
            ctx.fingerprint = delta.system_fingerprint
        if delta.content is None and not delta.tool_calls and not delta.finish_reason and not first:
            return False
        self.chunks += 1
        if delta.content is not None:
            self.chars += len(delta.content)
            if self.texts is not None:
                self.texts.append(delta.content)
        if delta.tool_calls:
            self.chars += _tool_chars(delta)
        return True


def _tool_chars(delta: StreamDelta) -> int:
    size = 0
    for call in delta.tool_calls or ():
        function = call.get("function") or {}
        size += len(function.get("arguments") or "") + len(function.get("name") or "")
    return size


async def _sse(
    gateway: Gateway,
    ctx: RequestContext,
    chat: ChatRequest,
    first: StreamDelta,
    rest: AsyncIterator[StreamDelta],
    ttft: float,
    state: StreamState,
    encoder: StreamEncoder,
) -> AsyncGenerator[bytes, None]:
    tally = _StreamTally(keep_text=gateway.shadow is not None)
    outcome = CallOutcome(status=200, ttft=ttft, partial=True)
    try:
        delta: StreamDelta | None = first
        is_first = True
        while delta is not None:
            if tally.add(delta, ctx, is_first):
                event = encoder.delta(delta, is_first)
                if event:
                    yield event
                is_first = False
            delta = await anext(rest, None)
        if tally.finish is None:
            raise StreamInterrupted(
                "the upstream stream ended without a finish reason (truncated answer)"
            ) from UpstreamBadResponse("no finish_reason")
        outcome.partial = False
        if tally.usage is None:  # the upstream never said: bill an estimate, marked as such
            tally.usage = gateway.estimate_usage(ctx, chat, max(1, text_tokens(tally.chars)))
        yield encoder.end(tally.usage, tally.finish, gateway.request_cost(ctx))
    except LanewayError as exc:
        outcome.error = exc
        outcome.status = exc.status
        yield encoder.error(gateway.sanitize(exc))
    except asyncio.CancelledError:
        if state.client_gone:
            raise  # the finally below bills what was sent
        # Cancelled from outside: the grace period after SIGTERM is over. End the
        # stream with an error event the client can read, not a cut connection.
        _uncancel()
        shutdown = ShuttingDown("the gateway is shutting down; the answer is incomplete")
        outcome.error = shutdown
        outcome.status = shutdown.status
        yield encoder.error(shutdown)
    except Exception as exc:  # a bug below: still end the stream with an error event
        err = _internal_error(ctx, exc)
        outcome.error = err
        outcome.status = err.status
        yield encoder.error(err)
    finally:
        usage = tally.usage
        if outcome.partial:
            # Cut, failed or client gone: the call's record says so too, and what was
            # sent and generated is billed (estimated when the upstream never said).
            usage = _settle_partial(ctx, chat, usage, tally.chunks, outcome.error)
            if outcome.error is None:
                outcome.status = 499
        outcome.usage = usage
        gateway.finish(ctx, outcome)
        if gateway.shadow is not None and tally.texts is not None and outcome.status == 200:
            gateway.shadow.offer(ctx, None, "".join(tally.texts), gateway.request_cost(ctx))
        close = getattr(rest, "aclose", None)
        if close is not None:
            await close()
