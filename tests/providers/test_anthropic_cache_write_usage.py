"""Anthropic cache writes by TTL: ``usage.cache_creation.ephemeral_1h_input_tokens`` when
the upstream splits its writes, else all writes 1-hour only when every ``cache_control``
mark of the request asked for ``ttl: 1h``."""

from __future__ import annotations

from typing import Any

import pytest

from laneway.errors import UpstreamBadResponse
from laneway.providers._anthropic import _StreamState, parse_anthropic_usage

BASE = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100}
SPLIT = {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 20}


def test_the_upstream_split_wins_over_the_marks() -> None:
    raw = {**BASE, "cache_creation_input_tokens": 50, "cache_creation": SPLIT}
    for writes_1h in (False, True):
        usage = parse_anthropic_usage(raw, writes_1h=writes_1h)
        assert usage is not None
        assert (usage.prompt_tokens, usage.cached_tokens) == (160, 100)
        assert (usage.cache_creation_tokens, usage.cache_creation_1h_tokens) == (50, 20)


@pytest.mark.parametrize(("writes_1h", "hour"), [(False, 0), (True, 50)])
def test_without_a_split_the_marks_decide(writes_1h: bool, hour: int) -> None:
    usage = parse_anthropic_usage({**BASE, "cache_creation_input_tokens": 50}, writes_1h=writes_1h)
    assert usage is not None
    assert (usage.cache_creation_tokens, usage.cache_creation_1h_tokens) == (50, hour)


def test_a_split_larger_than_the_writes_is_capped_and_a_negative_one_is_unknown() -> None:
    big: Any = {**BASE, "cache_creation_input_tokens": 5, "cache_creation": SPLIT}
    usage = parse_anthropic_usage(big)
    assert usage is not None and usage.cache_creation_1h_tokens == 5
    negative = {**BASE, "cache_creation": {"ephemeral_1h_input_tokens": -1}}
    assert parse_anthropic_usage(negative) is None
    with pytest.raises(UpstreamBadResponse):
        parse_anthropic_usage({**BASE, "cache_creation": {"ephemeral_1h_input_tokens": "x"}})


def test_a_stream_keeps_the_split_from_message_start() -> None:
    state = _StreamState(json_mode=False, model="claude-x")
    usage_start = {**BASE, "cache_creation_input_tokens": 50, "cache_creation": SPLIT}
    state.handle({"type": "message_start", "message": {"usage": usage_start}})
    state.handle({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                  "usage": {"output_tokens": 7}})  # fmt: skip
    usage = state.finish().usage
    assert usage is not None
    assert (usage.completion_tokens, usage.cache_creation_1h_tokens) == (7, 20)
