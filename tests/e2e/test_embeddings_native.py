"""``POST /v1/embeddings`` through the official ``openai`` SDK to the native embedding
APIs: Gemini's ``batchEmbedContents`` and text-embeddings-inference's ``POST /embed``
(``vendor: tei``), each behind a fake speaking the real wire format. Routing, batching,
the usage each reports (or the estimate when it reports none), the sensitive-data rule,
fall-over and the refusals (``dimensions`` on TEI, chat on TEI)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from laneway.testing import FakeGemini, FakeTEI, Fault
from tests.e2e.conftest import GatewayFactory, ledger_rows

PRICE = {"input_per_mtok": "0.15", "output_per_mtok": "0"}
SECRET_TEXT = "Write to maria.lopez@example.org about the invoice"

Fakes = tuple[FakeGemini, FakeTEI]


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    with FakeGemini(api_key="sk-other-secret") as gemini, FakeTEI(api_key="sk-other-secret") as tei:
        yield gemini, tei


def _config(gemini: FakeGemini, tei: FakeTEI) -> dict[str, Any]:
    deployments = [
        {"name": "gemini-embed", "model": "gemini-embedding-001", "provider": "gemini",
         "api_base": gemini.url, "api_key": "env:OTHER_KEY", "price": PRICE},
        {"name": "tei", "model": "bge-m3", "provider": "openai_compatible", "vendor": "tei",
         "api_base": tei.url, "api_key": "env:OTHER_KEY", "hourly_cost_usd": "0"},
    ]  # fmt: skip
    return {
        "deployments": deployments,
        "tiers": {"embed": ["gemini-embed", "tei"]},
        "ledger": {"flush_interval": 0.05},
    }


@pytest.fixture
def gw(fakes: Fakes, start_gateway: GatewayFactory) -> Any:
    return start_gateway(_config(*fakes))


def _client(gw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=30)


def _audit(row: dict[str, Any]) -> dict[str, Any]:
    audit = row["audit"]
    return json.loads(audit) if isinstance(audit, str) else dict(audit or {})


def test_gemini_batch_embed_contents(fakes: Fakes, gw: Any, tmp_path: Path) -> None:
    gemini, tei = fakes
    texts = ["alpha beta", "gamma", "delta epsilon zeta"]
    with _client(gw) as client:
        raw = client.embeddings.with_raw_response.create(model="gemini-embed", input=texts)
        answer = raw.parse()
        sized = client.embeddings.create(model="gemini-embed", input="alpha beta", dimensions=5)
        floats = client.embeddings.create(
            model="gemini-embed", input=texts, encoding_format="float"
        )
    assert raw.headers["x-laneway-deployment"] == "gemini-embed"
    assert [d.index for d in answer.data] == [0, 1, 2]
    assert len(answer.data[0].embedding) == 8
    assert [d.embedding for d in answer.data] == [d.embedding for d in floats.data]  # base64
    assert answer.data[0].embedding != answer.data[1].embedding
    assert len(sized.data[0].embedding) == 5
    assert sized.data[0].embedding == answer.data[0].embedding[:5]  # the fake's own numbers
    first = gemini.received[0]
    assert first.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert first.headers["x-goog-api-key"] == "sk-other-secret"
    assert first.body == {
        "requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": t}]}}
            for t in texts
        ]
    }
    assert gemini.received[1].body["requests"][0]["outputDimensionality"] == 5
    assert not tei.received
    # Google reports no usage: the gateway bills an estimate and says so
    assert answer.usage.prompt_tokens > 0
    gw.stop()
    row = ledger_rows(tmp_path)[0]
    assert row["deployment"] == "gemini-embed" and row["status"] == 200
    assert row["estimated"] in (1, True)
    assert row["prompt_tokens"] == answer.usage.prompt_tokens
    assert row["cost_nusd"] is not None and row["cost_nusd"] > 0


def test_gemini_splits_more_than_100_texts_into_batches_in_order(fakes: Fakes, gw: Any) -> None:
    gemini, _ = fakes
    texts = [f"sentence number {i}" for i in range(250)]
    with _client(gw) as client:
        whole = client.embeddings.create(model="gemini-embed", input=texts)
        single = client.embeddings.create(model="gemini-embed", input=texts[201])
    sizes = sorted(len(r.body["requests"]) for r in gemini.received[:3])
    assert sizes == [50, 100, 100]
    assert len(whole.data) == 250
    assert whole.data[201].embedding == single.data[0].embedding


def test_tei_native_embed_with_its_token_header(fakes: Fakes, gw: Any, tmp_path: Path) -> None:
    gemini, tei = fakes
    texts = [f"passage {i}" for i in range(70)]  # 3 calls at TEI's default batch of 32
    with _client(gw) as client:
        raw = client.embeddings.with_raw_response.create(model="tei", input=texts)
        answer = raw.parse()
        single = client.embeddings.create(model="tei", input="passage 69")
    assert raw.headers["x-laneway-deployment"] == "tei"
    assert len(answer.data) == 70
    assert answer.data[69].embedding == single.data[0].embedding
    assert sorted(len(r.body["inputs"]) for r in tei.received[:3]) == [6, 32, 32]
    assert tei.received[0].path == "/embed"
    assert tei.received[0].headers["Authorization"] == "Bearer sk-other-secret"
    assert set(tei.received[0].body) == {"inputs"}
    expected_tokens = sum((len(t) + 3) // 4 + 2 for t in texts)  # the fake's x-compute-tokens
    assert answer.usage.prompt_tokens == expected_tokens
    assert not gemini.received
    gw.stop()
    row = ledger_rows(tmp_path)[0]
    assert row["estimated"] in (0, False)
    assert row["prompt_tokens"] == expected_tokens


def test_tei_without_its_token_header_is_estimated(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    with FakeGemini() as gemini, FakeTEI(token_header=False) as tei:
        config = _config(gemini, tei)
        config["deployments"][1].pop("api_key")
        gw = start_gateway(config)
        with _client(gw) as client:
            answer = client.embeddings.create(model="tei", input="some words to count here")
        gw.stop()
    assert answer.usage.prompt_tokens > 0
    assert "Authorization" not in tei.received[0].headers
    assert ledger_rows(tmp_path)[0]["estimated"] in (1, True)


def test_sensitive_input_goes_only_to_self_hosted_tei(
    fakes: Fakes, gw: Any, tmp_path: Path
) -> None:
    gemini, tei = fakes
    with _client(gw) as client:
        raw = client.embeddings.with_raw_response.create(
            model="tier:embed", input=["a clean sentence", SECRET_TEXT]
        )
        clean = client.embeddings.with_raw_response.create(model="tier:embed", input="clean")
    assert raw.headers["x-laneway-deployment"] == "tei"
    assert clean.headers["x-laneway-deployment"] == "gemini-embed"
    assert len(tei.received) == 1 and len(gemini.received) == 1
    assert "maria.lopez" not in json.dumps([r.body for r in gemini.received])
    gw.stop()
    audit = _audit(ledger_rows(tmp_path)[0])
    assert audit["sensitive"] is True and audit["detectors"] == {"email": 1}


@pytest.mark.parametrize(
    "fault",
    [Fault("status", status=503), Fault("malformed"), Fault("status", status=429)],
)
def test_gemini_failure_falls_over_to_tei(fakes: Fakes, gw: Any, fault: Fault) -> None:
    gemini, tei = fakes
    gemini.fail_next(fault)
    with _client(gw) as client:
        raw = client.embeddings.with_raw_response.create(model="tier:embed", input="hello")
    assert raw.headers["x-laneway-deployment"] == "tei"
    assert raw.headers["x-laneway-fallbacks"] == "1"
    assert len(raw.parse().data[0].embedding) == 8
    assert len(gemini.received) == 1 and len(tei.received) == 1


@pytest.mark.parametrize(
    ("fault", "status"),
    [(Fault("status", status=424), 502), (Fault("status", status=413), 400)],
)
def test_tei_errors_are_mapped_by_status(fakes: Fakes, gw: Any, fault: Fault, status: int) -> None:
    _, tei = fakes
    tei.fail_next(fault)
    with _client(gw) as client, pytest.raises(openai.APIStatusError) as info:
        client.embeddings.create(model="tei", input="hello")
    assert info.value.status_code == status
    assert "tei returned HTTP" in info.value.message


def test_dimensions_on_tei_is_a_clear_400_with_no_upstream_call(fakes: Fakes, gw: Any) -> None:
    _, tei = fakes
    with _client(gw) as client, pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="tei", input="hello", dimensions=4)
    assert info.value.param == "dimensions"
    assert "'tei'" in info.value.message and "dimensions" in info.value.message
    assert not tei.received


def test_chat_to_a_tei_deployment_is_refused_with_no_upstream_call(fakes: Fakes, gw: Any) -> None:
    _, tei = fakes
    with _client(gw) as client, pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="tei", messages=[{"role": "user", "content": "hi"}])
    assert "embeddings only" in info.value.message
    with (
        anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0) as claude,
        pytest.raises(anthropic.BadRequestError),
    ):
        claude.messages.create(
            model="tei", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    assert not tei.received


def test_one_failed_batch_fails_the_request_with_its_own_error(fakes: Fakes, gw: Any) -> None:
    _, tei = fakes
    tei.fail_next(Fault("status", status=429, retry_after=2))
    with _client(gw) as client, pytest.raises(openai.RateLimitError) as info:
        client.embeddings.create(model="tei", input=[f"text {i}" for i in range(70)])
    assert info.value.status_code == 429  # the upstream's error itself, not a wrapped group


def test_dimensions_in_a_tier_skip_tei_for_the_next_deployment(
    fakes: Fakes, start_gateway: GatewayFactory
) -> None:
    """TEI first in the tier cannot shorten vectors: the request goes to the next deployment
    that can (Gemini), and the audit says why TEI was skipped."""
    gemini, tei = fakes
    config = _config(gemini, tei)
    config["tiers"] = {"embed": ["tei", "gemini-embed"]}
    gw = start_gateway(config)
    with _client(gw) as client:
        answer = client.embeddings.create(model="tier:embed", input="alpha beta", dimensions=5)
        plain = client.embeddings.create(model="tier:embed", input="alpha beta")
    assert len(answer.data[0].embedding) == 5
    assert len(gemini.received) == 1  # the shortened request
    assert len(tei.received) == 1  # the plain one: TEI first in the tier
    assert len(plain.data[0].embedding) > 0
