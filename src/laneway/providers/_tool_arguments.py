"""Tool-call arguments that must be JSON objects.

An OpenAI-format upstream sends a tool call's arguments as text, and nothing makes that
text valid JSON (a small self-hosted model often sends ``{"city": "Par`` or a bare
string). OpenAI chat completions pass the text on as it came; Anthropic Messages cannot
(``tool_use.input`` is an object), and making one up (``{}``) would have the client call
its tool with no arguments. A request with ``ChatRequest.object_arguments`` set treats
such an answer as malformed (``UpstreamBadResponse``: retried, then the next deployment;
after a stream's first byte, its error event). A call cut short by ``max_tokens`` (the
last one of an answer whose finish reason is ``length``) is passed on as it came: the
client is told the answer is truncated (Anthropic's ``stop_reason: max_tokens``, after
which Anthropic's own answers hold a partial ``tool_use`` block too), and a retry would
only be cut again. Anthropic and Gemini upstreams send objects, checked where their
answers are parsed.
"""

from __future__ import annotations

import orjson

from laneway.errors import UpstreamBadResponse
from laneway.providers._types import StreamDelta, ToolCall

__all__ = ["ArgumentsCheck", "check_arguments"]


def _is_object(text: str) -> bool:
    """Whether ``text`` is a JSON object; no text at all is one (no arguments: ``{}``)."""
    if not text:
        return True
    try:
        return type(orjson.loads(text)) is dict
    except orjson.JSONDecodeError:
        return False


def _not_an_object(provider: str, name: str) -> UpstreamBadResponse:
    return UpstreamBadResponse(
        f"{provider} sent a tool call ({name[:64]!r}) whose arguments are not a JSON object",
        upstream_status=200,
    )


def check_arguments(calls: list[ToolCall], provider: str, finish: str) -> None:
    """Raise ``UpstreamBadResponse`` unless every call's arguments are a JSON object (but
    the last one's when ``max_tokens`` cut the answer: ``finish`` is ``length``)."""
    for call in calls[:-1] if finish == "length" else calls:
        function = call["function"]
        if not _is_object(function["arguments"]):
            raise _not_an_object(provider, function["name"])


class ArgumentsCheck:
    """A stream's tool calls, each checked as soon as it is complete: when the next call
    starts (the calls of an OpenAI stream come one after the other, and a client renders
    each as a block that the next one closes) and, for all of them, when the answer
    finishes. :meth:`feed` runs before a delta is passed on, so that a call with bad
    arguments is never closed as if it were whole."""

    __slots__ = ("_args", "_current", "_names", "_provider")

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._args: dict[int, list[str]] = {}
        self._names: dict[int, str] = {}
        self._current: int | None = None

    def feed(self, delta: StreamDelta) -> None:
        for call in delta.tool_calls or ():
            index = call["index"]
            if index != self._current:
                if self._current is not None and index not in self._args:
                    self._check(self._current)
                self._current = index
            parts = self._args.setdefault(index, [])
            function = call.get("function")
            if function is not None:
                name = function.get("name")
                if name:
                    self._names[index] = name
                arguments = function.get("arguments")
                if arguments:
                    parts.append(arguments)
        if delta.finish_reason is not None:
            if delta.finish_reason == "length" and self._current is not None:
                self._args.pop(self._current, None)  # cut short by max_tokens: passed on
            self.end()

    def end(self) -> None:
        """The answer is complete: every call is checked (once)."""
        for index in self._args:
            self._check(index)
        self._args.clear()

    def _check(self, index: int) -> None:
        if not _is_object("".join(self._args[index])):
            raise _not_an_object(self._provider, self._names.get(index, ""))
