"""A fake OpenAI that also speaks the Responses API (``POST /v1/responses``, JSON and SSE)
as a reasoning model does: every answer starts with a ``reasoning`` item, whose
``encrypted_content`` is sent when ``include`` asks for ``reasoning.encrypted_content``
and must come back unchanged (the fake refuses a blob it did not issue, as OpenAI refuses
one it cannot decrypt); ``store`` (default true) keeps the response for a later
``previous_response_id``."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
from aiohttp import web

from laneway.testing._fake_openai import FakeOpenAI
from laneway.testing._server import FakeTurn, Fault, broken_json, count_tokens, json_response

__all__ = ["FakeOpenAIResponses"]

REASONING_TOKENS = 16
_ITEM_TYPES = frozenset({"message", "function_call", "function_call_output", "reasoning"})


class FakeOpenAIResponses(FakeOpenAI):
    """:class:`FakeOpenAI` plus ``POST /v1/responses``. ``issued`` holds the
    ``encrypted_content`` blobs handed out, ``stored`` the responses kept by id."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("model", "gpt-5.4")
        super().__init__(**kwargs)
        self.issued: set[str] = set()
        self.stored: dict[str, dict[str, Any]] = {}

    def routes(self) -> list[web.RouteDef]:
        return [*super().routes(), web.post("/v1/responses", self._responses)]

    def _invalid(self, message: str, code: str = "invalid_request") -> web.Response:
        return self.error_body(Fault("status", status=400, error_code=code, message=message))

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        body, fault, early = await self._open(request)
        if early is not None:
            return early
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return self._invalid("model: required")
        items = body.get("input")
        items = [{"role": "user", "content": items}] if isinstance(items, str) else items
        if not isinstance(items, list):
            return self._invalid("input: expected a string or a list of items")
        previous = body.get("previous_response_id")
        history: list[dict[str, Any]] = []
        if previous is not None:
            if previous not in self.stored:
                return self._invalid(
                    f"Previous response with id '{previous}' not found.",
                    "previous_response_not_found",
                )
            history = self.stored[previous]["_conversation"]
        for i, item in enumerate(items):
            kind = item.get("type", "message") if isinstance(item, dict) else None
            if kind not in _ITEM_TYPES:
                return self._invalid(f"input[{i}].type: unsupported")
            if kind == "reasoning" and item.get("encrypted_content") not in self.issued:
                return self._invalid(
                    f"The encrypted content for item {item.get('id')} could not be verified.",
                    "invalid_encrypted_content",
                )
        conversation = [*history, *items]
        response = self._answer(body, conversation)
        if body.get("store", True):
            self.stored[response["id"]] = {**response, "_conversation": conversation}
        if body.get("stream"):
            events = _events(response)
            failure = _failed_event(response, len(events), fault) if fault is not None else b""
            return await self.sse_response(request, events, fault, failure)
        if fault is not None and fault.kind == "fail":
            return json_response(_failed(response, fault))
        if fault is not None and fault.kind == "malformed":
            return broken_json(b'{"id": "resp_x", "object": "response", "output": [')
        return json_response(response)

    def _answer(self, body: dict[str, Any], conversation: list[Any]) -> dict[str, Any]:
        number = len(self.received)
        response_id = f"resp_fake{number:04d}"
        turn = _turn(body, conversation)
        reply = self.responder(turn)
        reasoning: dict[str, Any] = {
            "type": "reasoning",
            "id": f"rs_fake{number:04d}",
            "summary": [],
        }
        if "reasoning.encrypted_content" in (body.get("include") or ()):
            blob = hashlib.sha256(f"{response_id}:{turn.last_user_text}".encode()).hexdigest()
            self.issued.add(blob)
            reasoning["encrypted_content"] = blob
        output: list[dict[str, Any]] = [reasoning]
        if reply.text:
            output.append(
                {
                    "type": "message",
                    "id": f"msg_fake{number:04d}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": reply.text, "annotations": []}],
                }
            )
        for index, (name, arguments) in enumerate(reply.tool_calls):
            output.append(
                {
                    "type": "function_call",
                    "id": f"fc_fake{number:04d}_{index}",
                    "call_id": f"call_fake{number:04d}_{index}",
                    "name": name,
                    "arguments": arguments,
                    "status": "completed",
                }
            )
        prompt = count_tokens(orjson.dumps([body.get("instructions"), conversation]).decode())
        visible = count_tokens(reply.text) + sum(count_tokens(a) for _, a in reply.tool_calls)
        return {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "error": None,
            "incomplete_details": None,
            "model": body["model"],
            "output": output,
            "store": bool(body.get("store", True)),
            "usage": {
                "input_tokens": prompt,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": visible + REASONING_TOKENS,
                "output_tokens_details": {"reasoning_tokens": REASONING_TOKENS},
                "total_tokens": prompt + visible + REASONING_TOKENS,
            },
        }


def _turn(body: dict[str, Any], conversation: list[Any]) -> FakeTurn:
    last_user = ""
    for item in reversed(conversation):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                last_user = content
            else:
                last_user = " ".join(
                    str(p.get("text", "")) for p in content or () if isinstance(p, dict)
                )
            break
    last = conversation[-1] if conversation else {}
    tools = tuple(str(t.get("name")) for t in body.get("tools") or () if isinstance(t, dict))
    return FakeTurn(
        last_user_text=last_user,
        tool_names=tools,
        tool_choice_none=body.get("tool_choice") == "none",
        last_is_tool_result=isinstance(last, dict) and last.get("type") == "function_call_output",
        wants_json=False,
        max_tokens=body.get("max_output_tokens"),
        body=body,
    )


def _failed(response: dict[str, Any], fault: Fault) -> dict[str, Any]:
    """``response`` as the Responses API reports a failed one (the ``fail`` fault: a
    non-streamed answer is this, with HTTP 200)."""
    error = {
        "code": fault.error_code or "server_error",
        "message": fault.message or "scripted failure: the model stopped generating",
    }
    return {**response, "status": "failed", "error": error, "output": [], "usage": None}


def _failed_event(response: dict[str, Any], sequence: int, fault: Fault) -> bytes:
    """The ``response.failed`` event that ends a stream (the ``fail`` fault)."""
    failed = _failed(response, fault)
    body = {"type": "response.failed", "sequence_number": sequence, "response": failed}
    return b"event: response.failed\ndata: " + orjson.dumps(body) + b"\n\n"


def _events(response: dict[str, Any]) -> list[bytes]:
    """The semantic event sequence of a streamed response."""
    sequence = iter(range(10_000))

    def event(kind: str, **payload: Any) -> bytes:
        body = {"type": kind, "sequence_number": next(sequence), **payload}
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"

    head = {**response, "status": "in_progress", "output": [], "usage": None}
    events = [
        event("response.created", response=head),
        event("response.in_progress", response=head),
    ]
    for index, item in enumerate(response["output"]):
        events.append(event("response.output_item.added", output_index=index, item=item))
        if item["type"] == "message":
            text = item["content"][0]["text"]
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            pieces = text.split(" ")  # the deltas add up to the text
            for i, piece in enumerate(pieces):
                delta = piece if i == len(pieces) - 1 else piece + " "
                events.append(event("response.output_text.delta", **where, delta=delta))
            events.append(event("response.output_text.done", **where, text=text))
        events.append(event("response.output_item.done", output_index=index, item=item))
    events.append(event("response.completed", response=response))
    return events
