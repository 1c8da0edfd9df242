"""Governance wrappers with the adapter interface: redaction before an external call
(restored in the answer) and JSON-schema checking of answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from laneway.errors import InvalidOutput
from laneway.providers import ChatModel, ChatRequest, ChatResult, StreamDelta

__all__ = ["RedactingModel", "SchemaCheckedModel", "schema_errors"]


class RedactingModel:
    """Sends ``redacted`` instead of the request; restores placeholders in the answer
    (content and tool-call arguments; streamed content through a restorer that holds
    back a placeholder split across chunks)."""

    def __init__(self, inner: ChatModel, redacted: ChatRequest, redaction: Any) -> None:
        self._inner = inner
        self._redacted = redacted
        self._redaction = redaction

    def check(self, request: ChatRequest) -> None:
        self._inner.check(self._redacted)

    async def complete(self, request: ChatRequest) -> ChatResult:
        result = await self._inner.complete(self._redacted)
        restore = self._redaction.restore
        if result.content is not None:
            result.content = restore(result.content)
        for call in result.tool_calls:
            call["function"]["arguments"] = restore(call["function"]["arguments"])
        return result

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        restorer = self._redaction.stream_restorer()
        async for delta in self._inner.stream(self._redacted):
            if delta.content is not None:
                delta.content = restorer.feed(delta.content)
            if delta.finish_reason is not None:
                tail = restorer.flush()
                if tail:
                    yield StreamDelta(content=tail)
            for call in delta.tool_calls or ():
                function = call.get("function")
                if function is not None and "arguments" in function:
                    function["arguments"] = self._redaction.restore(function["arguments"])
            yield delta


def schema_errors(content: str | None, schema: Mapping[str, Any]) -> str | None:
    """Why ``content`` does not satisfy ``schema`` (``None`` when it does)."""
    import jsonschema

    if content is None:
        return "the answer has no content"
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return "the answer is not valid JSON"
    try:
        jsonschema.validate(value, dict(schema))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"the answer does not match the schema at {where}: {exc.validator} failed"
    except jsonschema.SchemaError:
        return None  # an invalid schema is the client's problem; the upstream accepted it
    return None


class SchemaCheckedModel:
    """Validates a non-streaming answer against the requested JSON schema: an invalid
    answer is retried once on the same deployment, then ``InvalidOutput`` lets the
    fallback chain try the next deployment."""

    def __init__(self, inner: ChatModel, schema: Mapping[str, Any], *, tries: int = 2) -> None:
        self._inner = inner
        self._schema = schema
        self._tries = tries

    def check(self, request: ChatRequest) -> None:
        self._inner.check(request)

    async def complete(self, request: ChatRequest) -> ChatResult:
        problem = "no answer"
        for _ in range(self._tries):
            result = await self._inner.complete(request)
            if result.tool_calls:
                return result
            found = schema_errors(result.content, self._schema)
            if found is None:
                return result
            problem = found
        raise InvalidOutput(f"{problem} (after {self._tries} tries)")

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        return self._inner.stream(request)
