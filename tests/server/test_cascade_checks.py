"""The cascade's own checks of a cheap answer's tool calls: undeclared tools, arguments
that are not JSON or fail the client's parameter schema — with the linear-time validator,
so a hostile ``pattern`` in a client's tool cannot stall the worker."""

from __future__ import annotations

import time
from typing import Any

from laneway.gateway._cascade import _tool_problem
from laneway.providers import ChatRequest, ChatResult

HOSTILE = {
    "type": "object",
    "properties": {"q": {"type": "string", "pattern": "^(a+)+$"}},
    "required": ["q"],
}


def _request(parameters: dict[str, Any]) -> ChatRequest:
    tool = {"type": "function", "function": {"name": "find", "parameters": parameters}}
    return ChatRequest(model="m", messages=({"role": "user", "content": "x"},), tools=(tool,))  # type: ignore[arg-type]


def _answer(name: str, arguments: str) -> ChatResult:
    call = {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}
    return ChatResult(content=None, finish_reason="tool_calls", model="m", tool_calls=[call])  # type: ignore[list-item]


def test_valid_arguments_pass_and_bad_ones_escalate() -> None:
    request = _request(HOSTILE)
    assert not _tool_problem(request, _answer("find", '{"q": "aaa"}'))
    assert _tool_problem(request, _answer("find", '{"q": 3}'))
    assert _tool_problem(request, _answer("find", "{not json"))
    assert _tool_problem(request, _answer("other", '{"q": "aaa"}'))


def test_a_catastrophic_pattern_is_checked_in_linear_time() -> None:
    started = time.process_time()  # CPU time: the work, not the other processes' turns
    assert _tool_problem(_request(HOSTILE), _answer("find", '{"q": "' + "a" * 40 + '!"}'))
    assert time.process_time() - started < 0.5  # Python's re would take hours here
