"""cache_control positions: the Messages parser records each breakpoint beside the
messages (never inside them), and the Anthropic adapter puts it back on the same block,
through the split of a user turn into tool messages and the merge back."""

from __future__ import annotations

from typing import Any

import orjson

from laneway.providers import AnthropicAdapter, Endpoint
from laneway.server._messages import parse_messages_request

EPH: Any = {"type": "ephemeral"}


def _adapter() -> AnthropicAdapter:
    endpoint = Endpoint(deployment="claude", api_base="http://x", upstream_model="claude-x")
    return AnthropicAdapter(endpoint, client=None)  # type: ignore[arg-type]


def _body(doc: dict[str, Any]) -> dict[str, Any]:
    request = parse_messages_request(orjson.dumps({"model": "m", "max_tokens": 10, **doc}))
    assert b"cache_control" not in orjson.dumps(request.messages)  # beside, never inside
    return _adapter().build_body(request, stream=False)


def test_two_tool_results_and_text_keep_their_own_marks() -> None:
    body = _body(
        {
            "messages": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "tool_use", "id": "a", "name": "f", "input": {}},
                        {
                            "type": "tool_use",
                            "id": "b",
                            "name": "f",
                            "input": {},
                            "cache_control": EPH,
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "both done", "cache_control": EPH},
                        {"type": "tool_result", "tool_use_id": "a", "content": "1"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "b",
                            "content": "2",
                            "cache_control": EPH,
                        },
                    ],
                },
            ]
        }
    )
    calls = body["messages"][1]["content"]
    assert [c.get("cache_control") for c in calls] == [None, EPH]
    last = body["messages"][2]["content"]
    assert [(b["type"], b.get("cache_control")) for b in last] == [
        ("tool_result", None),
        ("tool_result", EPH),
        ("text", EPH),
    ]


def test_a_marked_system_string_block_and_tools() -> None:
    body = _body(
        {
            "system": [{"type": "text", "text": "rules", "cache_control": EPH}],
            "tools": [
                {"name": "f", "input_schema": {"type": "object"}},
                {"name": "g", "input_schema": {"type": "object"}, "cache_control": EPH},
            ],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        }
    )
    assert body["system"] == [{"type": "text", "text": "rules", "cache_control": EPH}]
    assert [t.get("cache_control") for t in body["tools"]] == [None, EPH]
    assert body["messages"] == [{"role": "user", "content": "hi"}]


def test_an_assistant_text_mark_lands_on_its_text_block() -> None:
    body = _body(
        {
            "messages": [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "a", "cache_control": EPH}],
                },
                {"role": "user", "content": "next"},
            ]
        }
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "a", "cache_control": EPH}],
    }
