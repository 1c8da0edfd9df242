"""Shared machinery of the fake upstream servers: a real HTTP server (aiohttp) on a
loopback port in a background thread, a record of what it received, scripted faults,
and a deterministic responder that every wire format renders in its own shape."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import orjson
from aiohttp import web

__all__ = [
    "FakeReply",
    "FakeTurn",
    "FakeUpstreamServer",
    "Fault",
    "ReceivedRequest",
    "Responder",
    "broken_json",
    "count_tokens",
    "default_responder",
    "json_response",
    "running",
]

FaultKind = Literal[
    "status",
    "stall",
    "reset",
    "malformed",
    "cut",
    "slow",
    "silent",
    "drip",
    "html",
    "unended",
    "hang",
    "fail",
    "short",
]


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour, consumed by the next request.

    ``status``: answer HTTP ``status`` with the provider's error body (``error_code``
    becomes its error code/type, ``message`` its message; ``retry_after`` sets the header).
    ``stall``: wait ``seconds`` before answering (to trigger time-outs).
    ``reset``: drop the connection without an answer.
    ``malformed``: answer 200 with a body that is not valid JSON / SSE.
    ``cut``: stream ``after_chunks`` content chunks, then drop the connection.
    ``slow``: stream normally but sleep ``seconds`` between chunks.
    ``silent``: accept the request and never send headers, until the client leaves.
    ``drip``: stream the first ``after_chunks`` events, then repeat the next one (a
    content chunk) every ``seconds`` forever, until the client leaves.
    ``html``: answer HTTP ``status`` with a proxy's HTML error page (``text/html``).
    ``unended``: stream every event but the final one (OpenAI's ``[DONE]``, Anthropic's
    ``message_stop``), then close the stream cleanly.
    ``hang``: stream the first ``after_chunks`` events, then send nothing more (headers
    and those events out, the connection open) until the client leaves.
    ``fail``: stream the first ``after_chunks`` events, then the provider's own in-stream
    failure (OpenAI chat's ``data: {"error": ...}``, Anthropic's ``event: error``, the
    Responses API's ``response.failed``; Gemini's fake has none: a clean end), then close
    the stream cleanly. Not streamed, the Responses API's fake answers HTTP 200 with the
    response ``status: "failed"`` and its ``error``.
    ``short``: stream the first ``after_chunks`` events, then close the stream cleanly
    (no finish reason, no final event: a truncation that looks like an end).
    """

    kind: FaultKind
    status: int = 500
    retry_after: float | None = None
    error_code: str | None = None
    seconds: float = 0.0
    after_chunks: int = 1
    message: str | None = None  # the error message (e.g. one that echoes the prompt)


@dataclass(frozen=True, slots=True)
class FakeTurn:
    """The provider-neutral view of a request that a responder sees."""

    last_user_text: str
    tool_names: tuple[str, ...]
    tool_choice_none: bool
    last_is_tool_result: bool
    wants_json: bool
    max_tokens: int | None
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FakeReply:
    text: str = ""
    tool_calls: tuple[tuple[str, str], ...] = ()  # (name, JSON arguments)


Responder = Callable[[FakeTurn], FakeReply]


def default_responder(turn: FakeTurn) -> FakeReply:
    """Deterministic: call the first tool when tools are offered to a user turn, answer
    JSON when JSON is asked for, else echo the last user text."""
    if turn.tool_names and not turn.tool_choice_none and not turn.last_is_tool_result:
        args = orjson.dumps({"query": turn.last_user_text}).decode()
        return FakeReply(tool_calls=((turn.tool_names[0], args),))
    if turn.wants_json:
        return FakeReply(text=orjson.dumps({"answer": turn.last_user_text}).decode())
    return FakeReply(text=f"Echo: {turn.last_user_text}")


def count_tokens(text: str) -> int:
    """A stable stand-in for a tokenizer: about one token per 4 characters."""
    return max(1, (len(text) + 3) // 4) if text else 0


@dataclass(slots=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: dict[str, str] = field(default_factory=dict)


class FakeUpstreamServer:
    """Base class: subclasses add routes in :meth:`routes` and render replies.

    Use as a context manager; ``url`` is the base URL (``http://127.0.0.1:PORT``).
    ``latency`` delays every answer; ``chunk_delay`` spaces streamed chunks.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        responder: Responder = default_responder,
        model: str = "fake-model",
    ) -> None:
        self.latency = latency
        self.chunk_delay = chunk_delay
        self.responder = responder
        self.model = model
        self.received: list[ReceivedRequest] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._socket: socket.socket | None = None
        self.port = 0

    # -- scripting ---------------------------------------------------------
    def fail_next(self, *faults: Fault) -> None:
        """Queue faults; each is used by one upcoming request, in order."""
        with self._lock:
            self._faults.extend(faults)

    def take_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.received.clear()

    # -- to override -------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    # -- helpers for subclasses ---------------------------------------------
    async def record(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        self.received.append(
            ReceivedRequest(
                request.method, request.path, dict(request.headers), body, dict(request.query)
            )
        )
        return body

    async def before_answer(self, request: web.Request, fault: Fault | None) -> None:
        """Apply latency and the connection-level faults (stall, reset)."""
        if self.latency:
            await asyncio.sleep(self.latency)
        if fault is None:
            return
        if fault.kind == "stall":
            await asyncio.sleep(fault.seconds)
        elif fault.kind == "silent":
            await self.wait_for_client_to_leave(request)
            raise ConnectionResetError("scripted silence: the client left")
        elif fault.kind == "reset":
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise ConnectionResetError("scripted reset")

    @staticmethod
    async def wait_for_client_to_leave(request: web.Request, limit: float = 120.0) -> None:
        """Return once the client closed the connection (or after ``limit`` seconds)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(0.02)

    def fault_response(self, fault: Fault | None) -> web.Response | None:
        """The whole answer for a fault that replaces it (``status``, ``html``)."""
        if fault is None:
            return None
        if fault.kind == "status":
            return self.error_body(fault)
        if fault.kind == "html":
            page = _HTML_ERROR_PAGE.replace(b"{status}", str(fault.status).encode())
            return web.Response(body=page, status=fault.status, content_type="text/html")
        return None

    def error_body(self, fault: Fault) -> web.Response:
        """The provider's JSON error response for a ``status`` fault."""
        raise NotImplementedError

    @staticmethod
    def abort(request: web.Request) -> None:
        transport = request.transport
        if transport is not None:
            transport.abort()

    async def sse_response(
        self,
        request: web.Request,
        events: list[bytes],
        fault: Fault | None,
        failure: bytes = b"",
    ) -> web.StreamResponse:
        """Send pre-rendered SSE ``events`` (each a complete ``event``/``data`` block),
        honouring the stream faults; ``failure`` is the provider's in-stream error event
        (for ``fail``)."""
        response = web.StreamResponse(
            status=200, headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        await response.prepare(request)
        delay = fault.seconds if fault is not None and fault.kind == "slow" else self.chunk_delay
        if fault is not None and fault.kind == "drip":
            await self._drip(request, response, events, fault)
            return response
        if fault is not None and fault.kind == "unended":
            events = events[:-1]
        if fault is not None and fault.kind in ("hang", "fail", "short"):
            for event in events[: fault.after_chunks]:
                await response.write(event)
            if fault.kind == "hang":
                await self.wait_for_client_to_leave(request)
                return response
            await response.write(failure if fault.kind == "fail" else b"")
            await response.write_eof()
            return response
        for index, event in enumerate(events):
            if fault is not None and fault.kind == "cut" and index >= fault.after_chunks:
                self.abort(request)
                return response
            if fault is not None and fault.kind == "malformed" and index == 1:
                await response.write(b"data: {not json\n\n")
                continue
            await response.write(event)
            if delay:
                await asyncio.sleep(delay)
        await response.write_eof()
        return response

    async def _drip(
        self,
        request: web.Request,
        response: web.StreamResponse,
        events: list[bytes],
        fault: Fault,
    ) -> None:
        """Send the first ``after_chunks`` events, then the next one again and again."""
        for event in events[: fault.after_chunks]:
            await response.write(event)
        repeated = events[min(fault.after_chunks, len(events) - 1)]
        try:
            while True:
                await asyncio.sleep(fault.seconds)
                transport = request.transport
                if transport is None or transport.is_closing():
                    return
                await response.write(repeated)
        except (ConnectionError, RuntimeError):  # the client left mid-write
            return

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._socket = sock
        self._thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("fake upstream did not start")
        return self

    def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(self.routes())
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._runner = runner
        loop.run_until_complete(runner.setup())
        site = web.SockSite(runner, sock)
        loop.run_until_complete(site.start())
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_HTML_ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>{status} Bad Gateway</title></head>\n<body>"
    b"<h1>{status} Bad Gateway</h1><p>The proxy server received an invalid response from "
    b"an upstream server. Reference SECRET-INTERNAL-HOST db-7.corp.internal:5432</p>"
    + b"<!-- padding -->" * 64
    + b"</body></html>\n"
)


def broken_json(start: bytes) -> web.Response:
    """A 200 JSON answer cut short after ``start`` (the ``malformed`` fault)."""
    return web.Response(body=start, status=200, content_type="application/json")


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload),
        status=status,
        content_type="application/json",
        headers=headers,
    )


@contextlib.contextmanager
def running(*servers: FakeUpstreamServer) -> Iterator[tuple[FakeUpstreamServer, ...]]:
    """Start several fakes at once and stop them all afterwards."""
    started: list[FakeUpstreamServer] = []
    try:
        for server in servers:
            started.append(server.start())
        yield servers
    finally:
        for server in started:
            server.stop()
