"""A fake upstream speaking Anthropic's Messages wire protocol (JSON and SSE)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from laneway.testing._server import (
    FakeReply,
    FakeTurn,
    FakeUpstreamServer,
    Fault,
    broken_json,
    count_tokens,
    json_response,
)

__all__ = ["FakeAnthropic"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class FakeAnthropic(FakeUpstreamServer):
    """``POST /v1/messages``, validated like the real API for the cases that matter
    (``anthropic-version`` header, ``max_tokens``, user-first alternating roles, every
    ``tool_use`` answered by a ``tool_result`` in the next turn).

    ``api_key``, when set, is required in ``x-api-key`` (401 otherwise).
    ``cache_read_tokens`` / ``cache_creation_tokens`` move that many prompt tokens
    from ``input_tokens`` to the cache counters of ``usage``.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        cache_read_tokens: int = 0,
        cache_creation_tokens: int = 0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("model", "claude-fake-4-5")
        super().__init__(**kwargs)
        self.api_key = api_key
        self.cache_read_tokens = cache_read_tokens
        self.cache_creation_tokens = cache_creation_tokens

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/messages", self._messages)]

    def error_body(self, fault: Fault, message: str | None = None) -> web.Response:
        kind = fault.error_code or _ERROR_TYPES.get(fault.status, "api_error")
        payload = {
            "type": "error",
            "error": {"type": kind, "message": message or f"scripted error {fault.status}"},
        }
        headers = {"request-id": "req_fake"}
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        return json_response(payload, status=fault.status, headers=headers)

    def _invalid(self, message: str) -> web.Response:
        return self.error_body(Fault("status", status=400), message)

    @staticmethod
    def stream_failure(fault: Fault) -> bytes:
        """Anthropic's in-stream ``error`` event (``overloaded_error`` by default)."""
        kind = fault.error_code or "overloaded_error"
        message = fault.message or f"scripted in-stream {kind}"
        return _event("error", {"type": "error", "error": {"type": kind, "message": message}})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        fault = self.take_fault()
        await self.before_answer(request, fault)
        if self.api_key and request.headers.get("x-api-key") != self.api_key:
            return self.error_body(Fault("status", status=401), "invalid x-api-key")
        early = self.fault_response(fault)
        if early is not None:
            return early
        if not request.headers.get("anthropic-version"):
            return self._invalid("anthropic-version: header is required")
        problem = _validate(body)
        if problem is not None:
            return self._invalid(problem)
        turn = _turn(body)
        reply = self.responder(turn)
        text, stop_reason, stop_sequence = _truncate(reply, body)
        usage = self._usage(body, text, reply)
        message = {
            "id": f"msg_fake{len(self.received):04d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model") or self.model,
            "content": _blocks(text, reply),
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage,
        }
        if body.get("stream"):
            failure = self.stream_failure(fault) if fault is not None else b""
            return await self.sse_response(request, _stream_events(message), fault, failure)
        if fault is not None and fault.kind == "malformed":
            return broken_json(b'{"id": "msg_x", "type": "message", "content": [')
        return json_response(message, headers={"request-id": "req_fake"})

    def _usage(self, body: dict[str, Any], text: str, reply: FakeReply) -> dict[str, Any]:
        prompt = count_tokens(
            orjson.dumps([body.get("system"), body.get("tools"), body["messages"]]).decode()
        )
        cache_read = min(self.cache_read_tokens, prompt)
        cache_write = min(self.cache_creation_tokens, prompt - cache_read)
        output = count_tokens(text) + sum(count_tokens(a) for _, a in reply.tool_calls)
        return {
            "input_tokens": prompt - cache_read - cache_write,
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
            "output_tokens": output,
            "service_tier": "standard",
        }


def _validate(body: Any) -> str | None:
    """The real API's 400 message for the mistakes an adapter can make, or ``None``."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return "temperature: range: 0..1"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    if messages[0].get("role") != "user":
        return 'messages: first message must use the "user" role'
    pending: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{index}.role: Input should be 'user' or 'assistant'"
        if index and messages[index - 1].get("role") == role:
            return 'messages: roles must alternate between "user" and "assistant"'
        blocks = _content_list(message.get("content"))
        answered = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
        if pending - answered:
            return (
                f"messages.{index}: tool_use ids were found without tool_result blocks "
                f"immediately after: {', '.join(sorted(pending - answered))}"
            )
        pending = {str(b.get("id")) for b in blocks if b.get("type") == "tool_use"}
    return None


def _content_list(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or () if isinstance(b, dict)]


def _turn(body: dict[str, Any]) -> FakeTurn:
    messages = body["messages"]
    last = _content_list(messages[-1].get("content"))
    last_user = ""
    for message in reversed(messages):
        texts = [
            b["text"] for b in _content_list(message.get("content")) if b.get("type") == "text"
        ]
        if message.get("role") == "user" and texts:
            last_user = " ".join(texts)
            break
    choice = body.get("tool_choice") or {}
    names = [str(t["name"]) for t in body.get("tools") or ()]
    forced = choice.get("name") if choice.get("type") == "tool" else None
    if forced in names:  # a forced tool is the one the model calls
        names.remove(forced)
        names.insert(0, forced)
    return FakeTurn(
        last_user_text=last_user,
        tool_names=tuple(names),
        tool_choice_none=choice.get("type") == "none",
        last_is_tool_result=any(b.get("type") == "tool_result" for b in last),
        wants_json=False,
        max_tokens=body.get("max_tokens"),
        body=body,
    )


def _truncate(reply: FakeReply, body: dict[str, Any]) -> tuple[str, str, str | None]:
    """(text, stop_reason, stop_sequence) after stop sequences and ``max_tokens``."""
    text = reply.text
    for sequence in body.get("stop_sequences") or ():
        if sequence in text:
            return text[: text.index(sequence)], "stop_sequence", sequence
    if count_tokens(text) > body["max_tokens"]:
        return text[: body["max_tokens"] * 4], "max_tokens", None
    return text, ("tool_use" if reply.tool_calls else "end_turn"), None


def _blocks(text: str, reply: FakeReply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for index, (name, arguments) in enumerate(reply.tool_calls):
        blocks.append(
            {
                "type": "tool_use",
                "id": f"toolu_fake{index:02d}",
                "name": name,
                "input": orjson.loads(arguments),
            }
        )
    return blocks


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return (
        b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"
    )


def _stream_events(message: dict[str, Any]) -> list[bytes]:
    """The full event sequence of the real API for ``message``."""
    usage = message["usage"]
    start_usage = {**usage, "output_tokens": 1}
    head = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    events = [_event("message_start", {"message": {**head, "usage": start_usage}})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(
                _event(
                    "content_block_start",
                    {"index": index, "content_block": {"type": "text", "text": ""}},
                )
            )
            deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"])]
        else:
            start = {**block, "input": {}}
            events.append(_event("content_block_start", {"index": index, "content_block": start}))
            arguments = orjson.dumps(block["input"]).decode()
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [
                {"type": "input_json_delta", "partial_json": arguments[i : i + 8]}
                for i in range(0, len(arguments), 8)
            ]
        if index == 0:
            events.append(_event("ping", {}))
        for delta in deltas:
            events.append(_event("content_block_delta", {"index": index, "delta": delta}))
        events.append(_event("content_block_stop", {"index": index}))
    if not message["content"]:
        events.append(_event("ping", {}))
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    events.append(
        _event("message_delta", {"delta": stop, "usage": {"output_tokens": usage["output_tokens"]}})
    )
    events.append(_event("message_stop", {}))
    return events


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:]]
