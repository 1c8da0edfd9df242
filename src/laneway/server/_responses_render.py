"""OpenAI Responses out: the response object, the stream's semantic events, and stored
responses for ``previous_response_id`` (one protocol object per request: it carries the
request's echo fields and, when ``store``, saves the conversation with the answer).

Stream: ``response.created`` and ``response.in_progress``; per output item
``response.output_item.added``, then for a message ``response.content_part.added``,
``response.output_text.delta``… ``response.output_text.done``,
``response.content_part.done``, or for a function call
``response.function_call_arguments.delta``… ``.done``; ``response.output_item.done``;
finally ``response.completed`` with usage. A failure after the start is
``response.failed`` (the response so far, ``status: "failed"`` and its ``error``) and
then an ``error`` event (:func:`failure_events`). Errors before it are OpenAI error
bodies, as for chat.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
from starlette.responses import Response

from laneway.errors import InvalidRequest, LanewayError
from laneway.providers import ChatRequest, ChatResult, StreamDelta, Usage
from laneway.server._protocol import OPENAI_CHAT, StreamEncoder
from laneway.server._render import error_body, money
from laneway.server._response_store import ResponseStore
from laneway.server._responses import ResponsesInput, parse_responses_body
from laneway.settings import ResponsesSettings

__all__ = ["ResponsesProtocol", "failure_events", "response_id_of", "usage_object"]


def response_id_of(request_id: str) -> str:
    return "resp_" + request_id.rsplit("-", 1)[-1]


def usage_object(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def _sse(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def failure_events(exc: LanewayError, sequence: int, response: dict[str, Any] | None) -> bytes:
    """How a Responses stream that failed after its start ends, numbered from
    ``sequence``: ``response.failed`` with ``response`` (the response so far; left out when
    ``None``: the stream already had its terminal event), its status ``failed`` and
    ``error`` ``{code, message}``; then an ``error`` event carrying the error twice: flat
    (``code``, ``message``, ``param``: the API reference's shape, the SDK's
    ``ResponseErrorEvent``) and nested under ``error`` (the shape OpenAI sends at runtime,
    and the one the ``openai`` SDK raises ``APIError`` for on plain iteration: a stream
    read with ``for event in stream`` would otherwise end quietly)."""
    error = orjson.loads(error_body(exc))["error"]  # message, type, param, code
    out = b""
    if response is not None:
        failed = {
            **response,
            "status": "failed",
            "error": {"code": error["code"], "message": error["message"]},
        }
        payload = {"type": "response.failed", "sequence_number": sequence, "response": failed}
        out = _sse("response.failed", payload)
        sequence += 1
    flat = {"code": error["code"], "message": error["message"], "param": error["param"]}
    return out + _sse(
        "error", {"type": "error", "sequence_number": sequence, **flat, "error": error}
    )


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _call_item(item_id: str, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


class ResponsesProtocol:
    """``POST /v1/responses`` for one request."""

    name = "responses"
    needs_prepare = True

    def __init__(self, store: ResponseStore | None, settings: ResponsesSettings) -> None:
        self._store = store
        self._settings = settings
        self._input: ResponsesInput | None = None
        self._conversation: list[dict[str, Any]] = []
        self._key_id: str | None = None
        self._created = int(time.time())

    def credentials(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("authorization")

    def parse(self, body: bytes, max_depth: int) -> ChatRequest:
        from laneway.server._validate import parse_chat_request

        parsed = parse_responses_body(body, max_depth=max_depth, store_default=self._settings.store)
        if parsed.store and self._store is None:
            raise InvalidRequest("this gateway cannot store responses", param="store")
        self._input = parsed
        return parse_chat_request(orjson.dumps(parsed.chat), max_depth=max_depth)

    async def prepare(self, request: ChatRequest, key_id: str | None) -> ChatRequest:
        """Load the conversation of ``previous_response_id`` (this key's, not expired)."""
        self._key_id = key_id
        parsed = self._input
        assert parsed is not None
        messages = list(request.messages)
        head = messages[:1] if parsed.echo.get("instructions") is not None else []
        new = messages[len(head) :]
        previous: list[dict[str, Any]] = []
        if parsed.previous_response_id is not None:
            found = None
            if self._store is not None:
                found = await self._store.load(parsed.previous_response_id, key_id)
            if found is None:
                raise InvalidRequest(
                    f"previous response {parsed.previous_response_id!r} was not found "
                    "(unknown, expired, deleted or stored by another key)",
                    param="previous_response_id",
                )
            previous = found.conversation
        self._conversation = [*previous, *(dict(m) for m in new)]
        if not previous:
            return request
        return dataclasses.replace(request, messages=tuple([*head, *previous, *new]))  # type: ignore[list-item]

    # -- answers -------------------------------------------------------------------
    def response_object(
        self,
        request_id: str,
        model: str,
        output: list[dict[str, Any]],
        usage: Usage | None,
        finish: str,
        status: str = "completed",
        cost: Decimal | None = None,
    ) -> dict[str, Any]:
        parsed = self._input
        echo = parsed.echo if parsed is not None else {}
        incomplete = {"reason": "max_output_tokens"} if finish == "length" else None
        return {
            "id": response_id_of(request_id),
            "object": "response",
            "created_at": self._created,
            "status": "incomplete" if incomplete and status == "completed" else status,
            "error": None,
            "incomplete_details": incomplete,
            "model": model,
            "output": output,
            "usage": usage_object(usage),
            **echo,
            "laneway_cost_usd": money(cost),
        }

    def _save(self, request_id: str, response: dict[str, Any], result: ChatResult) -> None:
        parsed = self._input
        if self._store is None or parsed is None or not parsed.store:
            return
        answer: dict[str, Any] = {"role": "assistant", "content": result.content}
        if result.tool_calls:
            answer["tool_calls"] = [dict(c) for c in result.tool_calls]
        conversation = [*self._conversation, answer]
        self._store.save(response["id"], self._key_id, conversation, response)

    def completion(
        self, result: ChatResult, *, request_id: str, created: int, model: str, cost: Decimal | None
    ) -> bytes:
        suffix = request_id.rsplit("-", 1)[-1]
        output: list[dict[str, Any]] = []
        if result.content:
            output.append(_message_item("msg_" + suffix, result.content))
        for i, call in enumerate(result.tool_calls):
            function = call["function"]
            output.append(
                _call_item(f"fc_{suffix}_{i}", call["id"], function["name"], function["arguments"])
            )
        response = self.response_object(
            request_id, model, output, result.usage, result.finish_reason, cost=cost
        )
        self._save(request_id, response, result)
        return orjson.dumps(response)

    def encoder(self, request: ChatRequest, *, request_id: str, model: str) -> StreamEncoder:
        return _ResponsesEncoder(self, request_id, model)

    def error_response(self, exc: LanewayError, headers: dict[str, str]) -> Response:
        return OPENAI_CHAT.error_response(exc, headers)


class _ResponsesEncoder:
    """One stream's Responses events (numbered), and the final object it adds up to."""

    def __init__(self, protocol: ResponsesProtocol, request_id: str, model: str) -> None:
        self._protocol = protocol
        self._request_id = request_id
        self._suffix = request_id.rsplit("-", 1)[-1]
        self._model = model
        self._sequence = 0
        self._text: list[str] = []
        self._text_index: int | None = None  # output index of the message item
        self._calls: dict[int, dict[str, Any]] = {}  # tool-call index → item
        self._order: list[tuple[str, int]] = []  # ("text", _) or ("call", index)
        self._open: tuple[str, int] | None = None

    def _event(self, kind: str, payload: dict[str, Any]) -> bytes:
        body = {"type": kind, "sequence_number": self._sequence, **payload}
        self._sequence += 1
        return _sse(kind, body)

    def _start(self) -> bytes:
        snapshot = self._protocol.response_object(
            self._request_id, self._model, [], None, "stop", status="in_progress"
        )
        return self._event("response.created", {"response": snapshot}) + self._event(
            "response.in_progress", {"response": snapshot}
        )

    def delta(self, delta: StreamDelta, first: bool) -> bytes:
        out = self._start() if first else b""
        if delta.content:
            out += self._text_delta(delta.content)
        for call in delta.tool_calls or ():
            out += self._call_delta(call)
        return out

    def _text_delta(self, text: str) -> bytes:
        out = b""
        item_id = "msg_" + self._suffix
        if self._text_index is None:
            out += self._close()
            self._text_index = len(self._order)
            self._order.append(("text", 0))
            out += self._event(
                "response.output_item.added",
                {
                    "output_index": self._text_index,
                    "item": _message_item(item_id, "", "in_progress"),
                },
            )
            part = {"type": "output_text", "text": "", "annotations": []}
            out += self._event(
                "response.content_part.added",
                {
                    "item_id": item_id,
                    "output_index": self._text_index,
                    "content_index": 0,
                    "part": part,
                },
            )
            self._open = ("text", 0)
        self._text.append(text)
        return out + self._event(
            "response.output_text.delta",
            {
                "item_id": item_id,
                "output_index": self._text_index,
                "content_index": 0,
                "delta": text,
            },
        )

    def _call_delta(self, call: Any) -> bytes:
        out = b""
        index = int(call.get("index", 0))
        function = call.get("function") or {}
        item = self._calls.get(index)
        if item is None:
            out += self._close()
            item = _call_item(
                f"fc_{self._suffix}_{index}",
                call.get("id") or f"call_{index}",
                function.get("name") or "",
                "",
            )
            item["status"] = "in_progress"
            item["output_index"] = len(self._order)
            self._calls[index] = item
            self._order.append(("call", index))
            shown = {k: v for k, v in item.items() if k != "output_index"}
            out += self._event(
                "response.output_item.added", {"output_index": item["output_index"], "item": shown}
            )
            self._open = ("call", index)
        arguments = function.get("arguments")
        if arguments:
            item["arguments"] += arguments
            out += self._event(
                "response.function_call_arguments.delta",
                {"item_id": item["id"], "output_index": item["output_index"], "delta": arguments},
            )
        return out

    def _close(self) -> bytes:
        opened, self._open = self._open, None
        if opened is None:
            return b""
        kind, index = opened
        if kind == "text":
            item_id = "msg_" + self._suffix
            text = "".join(self._text)
            where = {"item_id": item_id, "output_index": self._text_index, "content_index": 0}
            part = {"type": "output_text", "text": text, "annotations": []}
            return (
                self._event("response.output_text.done", {**where, "text": text})
                + self._event("response.content_part.done", {**where, "part": part})
                + self._event(
                    "response.output_item.done",
                    {"output_index": self._text_index, "item": _message_item(item_id, text)},
                )
            )
        item = self._calls[index]
        item["status"] = "completed"
        shown = {k: v for k, v in item.items() if k != "output_index"}
        return self._event(
            "response.function_call_arguments.done",
            {
                "item_id": item["id"],
                "output_index": item["output_index"],
                "arguments": item["arguments"],
            },
        ) + self._event(
            "response.output_item.done", {"output_index": item["output_index"], "item": shown}
        )

    def _output(self) -> list[dict[str, Any]]:
        output = []
        for kind, index in self._order:
            if kind == "text":
                output.append(_message_item("msg_" + self._suffix, "".join(self._text)))
            else:
                item = self._calls[index]
                output.append({k: v for k, v in item.items() if k != "output_index"})
        return output

    def end(self, usage: Usage | None, finish: str, cost: Decimal | None) -> bytes:
        out = self._close()
        response = self._protocol.response_object(
            self._request_id, self._model, self._output(), usage, finish, cost=cost
        )
        calls = [
            {
                "id": c["call_id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in (self._calls[i] for kind, i in self._order if kind == "call")
        ]
        result = ChatResult(
            content="".join(self._text) or None,
            finish_reason=finish,
            model=self._model,
            usage=usage,
            tool_calls=calls,  # type: ignore[arg-type]
        )
        self._protocol._save(self._request_id, response, result)
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        return out + self._event(kind, {"response": response})

    def error(self, exc: LanewayError) -> bytes:
        output = self._output()
        if self._open is not None:  # the item cut off in the middle
            output[self._order.index(self._open)]["status"] = "incomplete"
        response = self._protocol.response_object(
            self._request_id, self._model, output, None, "stop", status="failed"
        )
        out = failure_events(exc, self._sequence, response)
        self._sequence += 2
        return out
