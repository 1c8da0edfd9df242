"""Reading an upstream stream: the SSE parser gives the same events however the body is
cut into pieces, and a stream read to its end leaves its connection in the pool."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from laneway.providers._http import AiohttpUpstream, Timeouts
from laneway.providers._openai_chat import OpenAIChatAdapter
from laneway.providers._sse import SSEEvent, SSEParser, iter_sse
from laneway.providers._status import Endpoint
from laneway.providers._types import ChatRequest
from laneway.testing import FakeOpenAI

BODIES = [
    b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n',
    b"event: message_start\ndata: {}\n\n: a comment\n\nevent: ping\ndata: {}\n\n",
    b"data: one\ndata: two\n\n\n\ndata:no-space\n\n",
    b"data: crlf\r\n\r\nevent: e\r\ndata: x\r\n\r\ndata: after\n\n",
    b"retry: 10\nid: 7\ndata: kept\n\n:only a comment\n\n",
    b"data: no blank line at the end",
    b"event: x\ndata: y",
    b"\n\n\ndata: leading blank lines\n\n",
    "data: ünïcode 日本\n\n".encode(),
]


async def _lines(body: bytes) -> AsyncIterator[bytes]:
    for line in body.split(b"\n"):
        yield line.rstrip(b"\r")


async def _by_lines(body: bytes) -> list[SSEEvent]:
    return [event async for event in iter_sse(_lines(body))]


def _by_pieces(body: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    start = 0
    for cut in [*sorted(cuts), len(body)]:
        events.extend(parser.feed(body[start:cut]))
        start = cut
    return events + parser.end()


@pytest.mark.parametrize("body", BODIES)
async def test_any_cut_gives_the_events_of_the_line_reader(body: bytes) -> None:
    expected = await _by_lines(body)
    assert expected, "each body holds at least one event"
    assert _by_pieces(body, []) == expected
    for cut in range(len(body) + 1):
        assert _by_pieces(body, [cut]) == expected, cut
    rng = random.Random(len(body))
    for _ in range(50):
        cuts = rng.sample(range(len(body) + 1), k=min(4, len(body)))
        assert _by_pieces(body, cuts) == expected, cuts


def test_the_common_case_and_an_event_name() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"x":1}\n\nevent: e\ndata: a\ndata: b\n\ndata: par') == [
        SSEEvent(None, b'{"x":1}'),
        SSEEvent("e", b"a\nb"),
    ]
    assert parser.feed(b"tial\n\n") == [SSEEvent(None, b"partial")]
    assert parser.end() == []


# -- the connection goes back to the pool ------------------------------------------------


class _PeerRecordingOpenAI(FakeOpenAI):
    """Notes the client's port of each request (a reused connection keeps its port)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ports: list[int] = []

    async def record(self, request: web.Request) -> Any:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.ports.append(peer[1] if peer else -1)
        return await super().record(request)


async def test_a_stream_read_to_done_leaves_its_connection_for_the_next() -> None:
    fake = _PeerRecordingOpenAI(chunk_delay=0.01).start()  # [DONE], 10 ms, the end
    client = AiohttpUpstream()
    try:
        adapter = OpenAIChatAdapter(
            Endpoint("d", fake.url + "/v1", "m", api_key="k", timeouts=Timeouts()), client
        )
        request = ChatRequest(
            model="m", messages=({"role": "user", "content": "one two"},), stream=True
        )
        for _ in range(3):
            text = "".join([d.content or "" async for d in adapter.stream(request)])
            assert text == "Echo: one two"
            await asyncio.sleep(0.05)  # the body's closing bytes, if still on their way
    finally:
        await client.close()
        fake.stop()
    assert len(fake.ports) == 3
    assert len(set(fake.ports)) == 1, fake.ports


async def test_a_stream_left_early_closes_its_connection() -> None:
    fake = _PeerRecordingOpenAI(chunk_delay=0.01).start()
    client = AiohttpUpstream()
    try:
        adapter = OpenAIChatAdapter(
            Endpoint("d", fake.url + "/v1", "m", api_key="k", timeouts=Timeouts()), client
        )
        request = ChatRequest(
            model="m", messages=({"role": "user", "content": "a b c d e f"},), stream=True
        )
        for _ in range(2):
            stream = adapter.stream(request)
            await anext(stream)
            await stream.aclose()  # the client left after the first delta
    finally:
        await client.close()
        fake.stop()
    assert len(fake.ports) == 2
    assert len(set(fake.ports)) == 2, fake.ports
