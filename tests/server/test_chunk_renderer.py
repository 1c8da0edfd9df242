"""ChunkRenderer renders every chunk exactly as render_chunk does (it is its fast form)."""

from __future__ import annotations

import orjson
import pytest

from laneway.providers import StreamDelta
from laneway.server._render import ChunkRenderer, render_chunk

DELTAS = [
    StreamDelta(),
    StreamDelta(content=""),
    StreamDelta(content="Hello"),
    StreamDelta(content=' "quoted" \\ back\nslash é 日本 \u2028 😀'),
    StreamDelta(content="done", finish_reason="stop"),
    StreamDelta(finish_reason="length"),
    StreamDelta(content="x", logprobs={"content": [{"token": "x", "logprob": -0.1}]}),
    StreamDelta(
        tool_calls=[
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "f", "arguments": ""},
            }
        ]
    ),
    StreamDelta(tool_calls=[{"index": 0, "function": {"arguments": '{"a":'}}]),
    StreamDelta(finish_reason="tool_calls"),
]


@pytest.mark.parametrize("first", [True, False])
@pytest.mark.parametrize("delta", DELTAS, ids=range(len(DELTAS)))
@pytest.mark.parametrize(
    "model", ["deepseek-v4-flash", 'odd "model" é', "m\u2028"], ids=["plain", "quotes", "ls"]
)
def test_same_bytes_as_render_chunk(delta: StreamDelta, first: bool, model: str) -> None:
    args = {"request_id": "chatcmpl-abc123", "created": 1765000000, "model": model}
    fast = ChunkRenderer(**args).chunk(delta, first)
    assert fast == render_chunk(delta, first=first, **args)
    assert fast.startswith(b"data: ") and fast.endswith(b"\n\n")
    payload = orjson.loads(fast[6:-2])
    assert payload["model"] == model
    expected = (delta.content or "") if first else delta.content
    assert payload["choices"][0]["delta"].get("content") == expected
