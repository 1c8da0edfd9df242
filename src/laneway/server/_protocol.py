"""What a client protocol supplies to the one request handler: how to read its body and
credentials, and how to render a neutral answer, a stream of neutral deltas and an error
in its own shape. The handler (``_chat.handle``) owns everything else: limits, the
gateway call, disconnects, accounting, the ledger.

``OPENAI_CHAT`` is OpenAI chat completions; ``_messages`` adds Anthropic Messages.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Protocol

from starlette.responses import Response

from laneway.errors import LanewayError
from laneway.providers import ChatRequest, ChatResult, StreamDelta, Usage
from laneway.server import _validate
from laneway.server._render import (
    DONE,
    ChunkRenderer,
    error_body,
    error_event,
    render_completion,
    render_usage_chunk,
)

__all__ = ["OPENAI_CHAT", "ClientProtocol", "OpenAIChat", "StreamEncoder"]

_JSON = "application/json"


class StreamEncoder(Protocol):
    """Renders one stream's neutral deltas as SSE bytes (one instance per stream)."""

    def delta(self, delta: StreamDelta, first: bool) -> bytes:
        """The event(s) for one delta (``b""`` for none)."""

    def end(self, usage: Usage | None, finish: str, cost: Decimal | None) -> bytes:
        """The closing event(s) of a stream that finished."""

    def error(self, exc: LanewayError) -> bytes:
        """The terminal event of a stream that failed after it started."""


class ClientProtocol(Protocol):
    """A client wire format served by the gateway."""

    name: str
    needs_prepare: bool  # whether :meth:`prepare` must be awaited after ``parse``

    def credentials(self, headers: Mapping[str, str]) -> str | None:
        """The ``Authorization``-style value carrying the client's key, if any."""

    async def prepare(self, request: ChatRequest, key_id: str | None) -> ChatRequest:
        """The request completed with what it refers to (a stored conversation)."""

    def parse(self, body: bytes, max_depth: int) -> ChatRequest:
        """The neutral request; raises ``InvalidRequest`` on bad input."""

    def completion(
        self, result: ChatResult, *, request_id: str, created: int, model: str, cost: Decimal | None
    ) -> bytes:
        """A non-streamed answer's JSON body."""

    def encoder(self, request: ChatRequest, *, request_id: str, model: str) -> StreamEncoder:
        """A new encoder for one streamed answer."""

    def error_response(self, exc: LanewayError, headers: dict[str, str]) -> Response:
        """An error in this protocol's shape (``headers`` include the request id)."""


class _OpenAIChatEncoder:
    __slots__ = ("_chunks", "_created", "_include_usage", "_model", "_request_id")

    def __init__(self, request: ChatRequest, request_id: str, model: str, created: int) -> None:
        self._request_id = request_id
        self._model = model
        self._created = created
        self._include_usage = request.include_usage
        self._chunks = ChunkRenderer(request_id=request_id, created=created, model=model)

    def delta(self, delta: StreamDelta, first: bool) -> bytes:
        return self._chunks.chunk(delta, first)  # render_chunk's bytes, rendered faster

    def end(self, usage: Usage | None, finish: str, cost: Decimal | None) -> bytes:
        if not self._include_usage:
            return DONE
        return (
            render_usage_chunk(
                usage,
                request_id=self._request_id,
                created=self._created,
                model=self._model,
                cost=cost,
            )
            + DONE
        )

    def error(self, exc: LanewayError) -> bytes:
        return error_event(exc)


class OpenAIChat:
    """``POST /v1/chat/completions``."""

    name = "chat"
    needs_prepare = False

    def credentials(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("authorization")

    async def prepare(self, request: ChatRequest, key_id: str | None) -> ChatRequest:
        return request

    def parse(self, body: bytes, max_depth: int) -> ChatRequest:
        # the module is imported with this one: an import statement in here cost ~7k
        # instructions a request (the import system's checks, a failed ``__path__``
        # lookup raising and clearing an AttributeError)
        return _validate.parse_chat_request(body, max_depth=max_depth)

    def completion(
        self, result: ChatResult, *, request_id: str, created: int, model: str, cost: Decimal | None
    ) -> bytes:
        return render_completion(
            result, request_id=request_id, created=created, model=model, cost=cost
        )

    def encoder(self, request: ChatRequest, *, request_id: str, model: str) -> StreamEncoder:
        return _OpenAIChatEncoder(request, request_id, model, int(time.time()))

    def error_response(self, exc: LanewayError, headers: dict[str, str]) -> Response:
        return Response(error_body(exc), status_code=exc.status, media_type=_JSON, headers=headers)


OPENAI_CHAT = OpenAIChat()
