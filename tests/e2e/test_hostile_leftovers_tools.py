"""An OpenAI-format upstream whose tool call carries arguments that are not a JSON object
(a truncated object, a bare string, an array), served to an Anthropic Messages client:
``tool_use.input`` must be an object, so the answer is malformed. Non-streamed: retried,
then a 502 ``api_error`` (never a ``tool_use`` block with a made-up ``input: {}``, which
the client would run as a call without arguments). Streamed: the stream ends with an
``error`` event before the call's block is closed. Chat completions pass the text on as
the upstream sent it, as OpenAI does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from aiohttp import web

from laneway.testing import FakeOpenAI, FakeReply, FakeTurn, FakeUpstreamServer
from tests.e2e.conftest import GatewayFactory, openai_deployment, rows_when

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
ASK = [{"role": "user", "content": "Weather in Paris?"}]
GOOD = '{"city": "Paris"}'
BAD = {"truncated": '{"city": "Par', "string": '"Paris"', "array": '["Paris"]'}


class Replies:
    """A responder that answers each request with the next of ``arguments`` (the last
    one again when they run out), as one call of ``get_weather`` (``second``: and a
    second call with these arguments)."""

    def __init__(self, *arguments: str, second: str | None = None) -> None:
        self.arguments = list(arguments)
        self.second = second

    def __call__(self, turn: FakeTurn) -> FakeReply:
        args = self.arguments.pop(0) if len(self.arguments) > 1 else self.arguments[0]
        calls = (("get_weather", args),)
        if self.second is not None:
            calls += (("get_time", self.second),)
        return FakeReply(tool_calls=calls)


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-upstream-secret") as server:
        yield server


def _gateway(start_gateway: GatewayFactory, upstream: FakeUpstreamServer) -> Any:
    return start_gateway(
        {
            "deployments": [openai_deployment("gpt", upstream.url)],
            "retry": {"max_retries": 1, "base_delay": 0.01},
            "ledger": {"flush_interval": 0.05},
        }
    )


def _client(gw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0, timeout=30)


def _ask(client: anthropic.Anthropic, **extra: Any) -> Any:
    """The weather question, with the weather tool."""
    return client.messages.create(
        model="gpt",
        max_tokens=100,
        tools=[WEATHER],  # type: ignore[list-item]
        messages=ASK,  # type: ignore[arg-type]
        **extra,
    )


@pytest.mark.parametrize("arguments", list(BAD.values()), ids=list(BAD))
def test_arguments_that_are_not_an_object_are_a_502_not_an_empty_input(
    start_gateway: GatewayFactory, upstream: FakeOpenAI, tmp_path: Path, arguments: str
) -> None:
    upstream.responder = Replies(arguments)
    gw = _gateway(start_gateway, upstream)
    with _client(gw) as client, pytest.raises(anthropic.InternalServerError) as info:
        _ask(client)
    assert info.value.status_code == 502
    body = info.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "api_error"
    assert body["error"]["laneway_code"] == "upstream_error"
    assert "get_weather" in body["error"]["message"]
    assert len(upstream.received) == 2  # a malformed answer is retried once, as configured
    rows = _requests(tmp_path)
    assert rows[0]["status"] == 502


@pytest.mark.parametrize(
    ("replies", "expected"),
    [
        ((BAD["truncated"], GOOD), {"city": "Paris"}),  # the retry brings an object
        (("",), {}),  # no arguments at all: an empty input
    ],
    ids=["retried", "empty"],
)
def test_an_object_in_the_end_is_the_input(
    start_gateway: GatewayFactory, upstream: FakeOpenAI, replies: tuple[str, ...], expected: Any
) -> None:
    upstream.responder = Replies(*replies)
    gw = _gateway(start_gateway, upstream)
    with _client(gw) as client:
        message = _ask(client)
    call = next(block for block in message.content if block.type == "tool_use")
    assert call.input == expected
    assert message.stop_reason == "tool_use"


@pytest.mark.parametrize("arguments", list(BAD.values()), ids=list(BAD))
def test_a_stream_with_bad_arguments_ends_with_an_error_event_before_the_block_closes(
    start_gateway: GatewayFactory, upstream: FakeOpenAI, tmp_path: Path, arguments: str
) -> None:
    """Two calls, the first one bad: the error comes when the second one starts, so the
    client never sees the first block closed (``content_block_stop``) as if whole."""
    upstream.responder = Replies(arguments, second="{}")
    gw = _gateway(start_gateway, upstream)
    seen: list[str] = []
    with _client(gw) as client:
        stream = _ask(client, stream=True)
        with pytest.raises(anthropic.APIStatusError) as info:
            for event in stream:
                seen.append(event.type)
    assert seen[:2] == ["message_start", "content_block_start"]
    assert "content_block_stop" not in seen and "message_stop" not in seen
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["laneway_code"] == "upstream_error"
    rows = _requests(tmp_path)
    assert rows[0]["status"] == 502 and rows[0]["partial"] in (1, True)


def test_a_stream_with_good_arguments_is_unchanged(
    start_gateway: GatewayFactory, upstream: FakeOpenAI
) -> None:
    upstream.responder = Replies(GOOD, second="")
    gw = _gateway(start_gateway, upstream)
    with (
        _client(gw) as client,
        client.messages.stream(
            model="gpt",
            max_tokens=100,
            tools=[WEATHER],  # type: ignore[list-item]
            messages=ASK,  # type: ignore[arg-type]
        ) as stream,
    ):
        message = stream.get_final_message()
    calls = [block for block in message.content if block.type == "tool_use"]
    assert [c.input for c in calls] == [{"city": "Paris"}, {}]


@pytest.mark.parametrize("stream", [False, True])
def test_chat_completions_pass_the_arguments_on_as_they_came(
    start_gateway: GatewayFactory, upstream: FakeOpenAI, client_factory: Any, stream: bool
) -> None:
    upstream.responder = Replies(BAD["truncated"])
    gw = _gateway(start_gateway, upstream)
    client = client_factory(gw.base_url)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        chunks = client.chat.completions.create(
            model="gpt", messages=messages, tools=tools, stream=True
        )
        arguments = "".join(
            call.function.arguments or ""
            for chunk in chunks
            if chunk.choices
            for call in chunk.choices[0].delta.tool_calls or ()
            if call.function is not None
        )
    else:
        answer = client.chat.completions.create(model="gpt", messages=messages, tools=tools)
        arguments = answer.choices[0].message.tool_calls[0].function.arguments
    assert arguments == BAD["truncated"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(arguments)  # the client's to judge, as with OpenAI itself


def _requests(tmp_path: Path) -> list[dict[str, Any]]:
    """The ledger's request rows (attempt 0; each try has a row of its own too)."""
    rows = rows_when(tmp_path, lambda rows: any(r["attempt"] == 0 for r in rows))
    return [r for r in rows if r["attempt"] == 0]


class CutByMaxTokens(FakeUpstreamServer):
    """OpenAI chat answering with a complete call and then one cut short by ``max_tokens``
    (``finish_reason: length``), streamed or not."""

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/chat/completions", self._chat)]

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        calls = [("call_0", "get_time", "{}"), ("call_1", "get_weather", BAD["truncated"])]
        base = {"id": "chatcmpl-x", "created": 1, "model": "gpt-4o"}
        if not body.get("stream"):
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                    for i, n, a in calls
                ],
            }
            choice = {"index": 0, "message": message, "finish_reason": "length"}
            answer = {**base, "object": "chat.completion", "choices": [choice]}
            return web.json_response(answer)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            chunk = {**base, "object": "chat.completion.chunk", "choices": [choice]}
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")

        for index, (call_id, name, arguments) in enumerate(calls):
            function = {"name": name, "arguments": ""}
            await send({"tool_calls": [{"index": index, "id": call_id, "function": function}]})
            await send({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})
        await send({}, "length")
        await response.write(b"data: [DONE]\n\n")
        return response


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_cut_short_by_max_tokens_is_passed_on_as_truncated(
    start_gateway: GatewayFactory, stream: bool
) -> None:
    """A call that ``max_tokens`` cut is no malformed answer: the client gets
    ``stop_reason: max_tokens`` (as from Anthropic, whose truncated answers hold a partial
    ``tool_use`` block too) and the calls before it whole; a retry would be cut again."""
    with CutByMaxTokens() as upstream:
        gw = _gateway(start_gateway, upstream)
        with _client(gw) as client:
            if stream:
                with client.messages.stream(
                    model="gpt",
                    max_tokens=100,
                    tools=[WEATHER],  # type: ignore[list-item]
                    messages=ASK,  # type: ignore[arg-type]
                ) as events:
                    message = events.get_final_message()
            else:
                message = _ask(client)
        tries = len(upstream.received)
    assert message.stop_reason == "max_tokens"
    calls = [block for block in message.content if block.type == "tool_use"]
    assert [c.name for c in calls] == ["get_time", "get_weather"]
    assert calls[0].input == {}  # whole, and checked: "{}"
    assert tries == 1
