"""Governance wrappers with the adapter interface: redaction before an external call
(restored in the answer) and JSON-schema checking of answers (with a
:class:`~laneway.governance.ClientSchema`: no retrieval, linear-time regexes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from laneway.errors import InvalidOutput
from laneway.governance._schema import ClientSchema
from laneway.providers import ChatModel, ChatRequest, ChatResult, StreamDelta

__all__ = ["RedactingModel", "SchemaCheckedModel"]


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


class SchemaCheckedModel:
    """Validates a non-streaming answer against the requested JSON schema: an invalid
    answer is retried once on the same deployment, then ``InvalidOutput`` lets the
    fallback chain try the next deployment."""

    def __init__(
        self, inner: ChatModel, schema: Mapping[str, Any] | ClientSchema, *, tries: int = 2
    ) -> None:
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
            found = await self._checker().check(result.content)
            if found is None:
                return result
            problem = found
        raise InvalidOutput(f"{problem} (after {self._tries} tries)")

    def _checker(self) -> ClientSchema:
        """Compiled at the first answer, not before: never when the upstream fails. The
        server refused a bad schema before any call (``InvalidRequest`` if one got here)."""
        schema = self._schema
        if not isinstance(schema, ClientSchema):
            schema = ClientSchema.compile(schema, "response_format.json_schema.schema")
            self._schema = schema
        return schema

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        return self._inner.stream(request)
