"""Server-sent events parsing shared by the adapters (OpenAI, Anthropic, Gemini)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ["SSEEvent", "iter_sse"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str | None
    data: bytes


async def iter_sse(lines: AsyncIterator[bytes]) -> AsyncIterator[SSEEvent]:
    """Group SSE lines into events (``event:`` and multi-line ``data:`` fields).

    Comments (``:`` lines) and unknown fields are ignored, per the SSE specification.
    """
    event: str | None = None
    data: list[bytes] = []
    async for line in lines:
        if not line:
            if data:
                yield SSEEvent(event, b"\n".join(data))
            event, data = None, []
            continue
        if line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    if data:
        yield SSEEvent(event, b"\n".join(data))
