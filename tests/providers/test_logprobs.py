"""``logprobs: true`` sent to an OpenAI-format deployment comes back to the client,
non-streaming and streaming (it used to be forwarded upstream and its answer dropped)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai import OpenAI
from tests.providers._scripted import OPENAI_EVENTS, OPENAI_OK, Scripted, adapter, broken

from laneway.errors import UnsupportedParameter
from laneway.providers._http import AiohttpUpstream
from laneway.providers._types import ChatRequest, ChatResult, StreamDelta
from laneway.server import create_app
from laneway.server._render import render_chunk, render_completion
from laneway.settings import Settings
from laneway.testing import RunningGateway

TOKEN = {"token": "ok", "logprob": -0.25, "bytes": [111, 107], "top_logprobs": []}
LOGPROBS = {"content": [TOKEN], "refusal": None}
BODY = broken(OPENAI_OK, ("choices", 0, "logprobs"), LOGPROBS)
EVENTS = [
    broken(OPENAI_EVENTS[0], ("choices", 0, "logprobs"), LOGPROBS),
    broken(OPENAI_EVENTS[1], ("choices", 0, "logprobs"), {"content": [TOKEN], "refusal": None}),
    *OPENAI_EVENTS[2:],
]
ASK = {"logprobs": True, "top_logprobs": 0}
MESSAGES: Any = [{"role": "user", "content": "hi"}]


async def test_adapter_carries_logprobs() -> None:
    request = ChatRequest(model="m", messages=({"role": "user", "content": "hi"},), options=ASK)
    with Scripted(body=BODY, events=EVENTS) as server:
        client = AiohttpUpstream()
        try:
            model = adapter("openai", server.url, client)
            result = await model.complete(request)
            deltas = [d async for d in model.stream(request)]
        finally:
            await client.close()
    assert server.received[0].body["logprobs"] is True
    assert result.logprobs == LOGPROBS
    assert [d.logprobs for d in deltas if d.content] == [LOGPROBS, LOGPROBS]
    assert all(d.logprobs is None for d in deltas if not d.content)


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
def test_native_adapters_still_reject_logprobs(provider: str) -> None:
    request = ChatRequest(model="m", messages=({"role": "user", "content": "hi"},), options=ASK)
    with pytest.raises(UnsupportedParameter):
        adapter(provider, "http://127.0.0.1:9", AiohttpUpstream()).check(request)


def test_render_writes_logprobs_only_when_present() -> None:
    result = ChatResult(content="ok", finish_reason="stop", model="m", logprobs=LOGPROBS)
    plain = ChatResult(content="ok", finish_reason="stop", model="m")
    args: dict[str, Any] = {"request_id": "r", "created": 1, "model": "m", "cost": None}
    assert orjson.loads(render_completion(result, **args))["choices"][0]["logprobs"] == LOGPROBS
    assert orjson.loads(render_completion(plain, **args))["choices"][0]["logprobs"] is None
    chunk_args: dict[str, Any] = {"request_id": "r", "created": 1, "model": "m", "first": False}
    with_lp = render_chunk(StreamDelta(content="ok", logprobs=LOGPROBS), **chunk_args)
    without = render_chunk(StreamDelta(content="ok"), **chunk_args)
    assert orjson.loads(with_lp[6:])["choices"][0]["logprobs"] == LOGPROBS
    assert "logprobs" not in orjson.loads(without[6:])["choices"][0]


@pytest.fixture
def sdk(tmp_path: Path) -> Iterator[tuple[OpenAI, Scripted]]:
    with Scripted(body=BODY, events=EVENTS) as server:
        settings = Settings.model_validate(
            {
                "database": {"url": f"sqlite:///{tmp_path / 'ledger.db'}"},
                "deployments": [
                    {
                        "name": "oai",
                        "model": "gpt-4o",
                        "provider": "openai",
                        "api_base": server.url + "/v1",
                        "api_key": "env:FAKE_KEY",
                    }
                ],
            }
        )
        gw = RunningGateway(create_app(settings, env={"FAKE_KEY": "sk-x"})).start()
        client = OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=20)
        try:
            yield client, server
        finally:
            client.close()
            gw.stop()


def test_openai_sdk_gets_logprobs(sdk: tuple[OpenAI, Scripted]) -> None:
    client, server = sdk
    answer = client.chat.completions.create(
        model="oai", messages=MESSAGES, logprobs=True, top_logprobs=0
    )
    assert server.received[-1].body["logprobs"] is True
    logprobs = answer.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert [(t.token, t.logprob, t.bytes) for t in logprobs.content] == [("ok", -0.25, [111, 107])]


def test_openai_sdk_gets_streamed_logprobs(sdk: tuple[OpenAI, Scripted]) -> None:
    client, _ = sdk
    stream = client.chat.completions.create(
        model="oai", messages=MESSAGES, logprobs=True, top_logprobs=0, stream=True
    )
    tokens = []
    text = ""
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.logprobs is not None and choice.logprobs.content:
                tokens += [t.token for t in choice.logprobs.content]
    assert text == "hi there"
    assert tokens == ["ok", "ok"]
