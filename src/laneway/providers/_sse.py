"""Server-sent events parsing shared by the adapters (OpenAI, Anthropic, Gemini)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from laneway.errors import UpstreamBadResponse

__all__ = ["MAX_EVENT_BYTES", "SSEEvent", "SSEParser", "event_too_large", "iter_sse"]

MAX_EVENT_BYTES = 16 * 1024 * 1024
"""The most one SSE event (or line) may hold: far above any real one (a Responses
stream's final event repeats the whole answer), and a bound on what an upstream that
never ends its event can make the gateway buffer."""


def event_too_large() -> UpstreamBadResponse:
    return UpstreamBadResponse(
        f"upstream stream event exceeds {MAX_EVENT_BYTES // (1024 * 1024)} MiB",
        upstream_status=200,
    )


@dataclass(slots=True)  # a value; not frozen: a frozen __init__ costs ~4x, once per event
class SSEEvent:
    event: str | None
    data: bytes


class SSEParser:
    """Splits a body, fed in the pieces it arrives in, into SSE events.

    Comments (``:`` lines) and unknown fields are ignored, per the SSE specification;
    lines end in ``\\n`` (a ``\\r`` before it is dropped). Between events the common
    case — blocks of one ``data: …`` line each, no ``\\r`` — is split in one pass over
    the piece (``bytes.split``) rather than line by line.
    """

    __slots__ = ("_buffer", "_data", "_event", "_size")

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[bytes] = []
        self._size = 0  # bytes in _data

    def feed(self, piece: bytes) -> list[SSEEvent]:
        """The events completed by ``piece``; raises ``UpstreamBadResponse`` once an
        unfinished event holds more than :data:`MAX_EVENT_BYTES`."""
        # find() rather than ``in``: ``bytes in bytes`` first tries the needle as an int
        # and builds (and drops) a TypeError each time
        buffer = self._buffer + piece if self._buffer else piece
        if buffer.find(b"\r") >= 0 or self._data or self._event is not None:
            lines = buffer.split(b"\n")
            self._buffer = lines.pop()
            if len(self._buffer) > MAX_EVENT_BYTES:
                raise event_too_large()
            return self.feed_lines([line.rstrip(b"\r") for line in lines])
        blocks = buffer.split(b"\n\n")
        self._buffer = blocks.pop()
        if len(self._buffer) > MAX_EVENT_BYTES:
            raise event_too_large()
        events: list[SSEEvent] = []
        for block in blocks:
            if block[:6] == b"data: " and block.find(b"\n") < 0:
                events.append(SSEEvent(None, block[6:]))
            else:  # other fields, several lines, comments: line by line
                events.extend(self.feed_lines([*block.split(b"\n"), b""]))
        return events

    def end(self) -> list[SSEEvent]:
        """The events left when the body ends (a last event needs no blank line)."""
        rest, self._buffer = self._buffer, b""
        lines = [line.rstrip(b"\r") for line in rest.split(b"\n")] if rest else []
        events = self.feed_lines(lines)
        if self._data:
            events.append(SSEEvent(self._event, b"\n".join(self._data)))
        self._event, self._data, self._size = None, [], 0
        return events

    def feed_lines(self, lines: Iterable[bytes]) -> list[SSEEvent]:
        """The events completed by ``lines`` (already split, without their ``\\n``)."""
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(SSEEvent(self._event, b"\n".join(self._data)))
                self._event, self._data, self._size = None, [], 0
                continue
            if line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            if name == b"data":
                self._data.append(value)
                self._size += len(value)
                if self._size > MAX_EVENT_BYTES:
                    raise event_too_large()
            elif name == b"event":
                self._event = value.decode("utf-8", "replace")
        return events


async def iter_sse(lines: AsyncIterator[bytes]) -> AsyncIterator[SSEEvent]:
    """Group SSE lines into events (``event:`` and multi-line ``data:`` fields), with
    :class:`SSEParser`'s rules and bound.

    Comments (``:`` lines) and unknown fields are ignored, per the SSE specification.
    """
    parser = SSEParser()
    async for line in lines:
        for event in parser.feed_lines((line,)):
            yield event
    for event in parser.end():
        yield event
