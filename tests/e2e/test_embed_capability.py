"""Which deployments ``/v1/embeddings`` may use: a catalog model that is not an embedding
model (gpt-4o: chat only) is skipped (``cannot_embed``) even on an OpenAI-format
deployment, an embedding model in the catalog (``modalities: [embedding]``) is used and
billed at its catalog price, and a model the catalog does not know is still allowed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from laneway.testing import FakeOpenAI
from tests.e2e.conftest import GatewayFactory, openai_deployment, rows_when


@pytest.fixture
def fakes() -> Iterator[tuple[FakeOpenAI, FakeOpenAI, FakeOpenAI]]:
    with (
        FakeOpenAI(api_key="sk-upstream-secret", model="gpt-4o") as chat,
        FakeOpenAI(api_key="sk-upstream-secret", model="text-embedding-3-small") as small,
        FakeOpenAI(api_key="sk-upstream-secret", model="house-embedder") as house,
    ):
        yield chat, small, house


@pytest.fixture
def gw(start_gateway: GatewayFactory, fakes: Any) -> Any:
    chat, small, house = fakes
    deployments = [
        openai_deployment("gpt", chat.url),
        openai_deployment("small", small.url, model="text-embedding-3-small"),
        openai_deployment("house", house.url, model="house-embedder"),
    ]
    return start_gateway(
        {
            "deployments": deployments,
            "tiers": {"mixed": ["gpt", "small"]},
            "ledger": {"flush_interval": 0.05},
        }
    )


def _client(gw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=30)


def test_a_chat_model_is_skipped_and_the_embedding_model_billed_at_catalog_price(
    gw: Any, fakes: Any, tmp_path: Path
) -> None:
    chat, small, _ = fakes
    with _client(gw) as client:
        raw = client.embeddings.with_raw_response.create(model="tier:mixed", input="hello world")
        answer = raw.parse()
    assert answer.data and not chat.received and len(small.received) == 1
    row = rows_when(tmp_path, lambda rows: len(rows) == 1)[0]
    assert row["deployment"] == "small"
    audit = row["audit"]
    audit = json.loads(audit) if isinstance(audit, str) else audit
    assert {"deployment": "gpt", "reason": "cannot_embed"} in audit["skipped"]
    # text-embedding-3-small: $0.02 per 1M input tokens (https://openai.com/api/pricing/)
    expected = Decimal(answer.usage.prompt_tokens) * Decimal("0.02") / 1_000_000
    assert expected > 0
    assert Decimal(raw.headers["x-laneway-cost-usd"]) == expected
    assert Decimal(row["cost_nusd"]) / 10**9 == expected


def test_a_chat_only_model_named_directly_is_a_clear_400(gw: Any, fakes: Any) -> None:
    with _client(gw) as client, pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="gpt", input="hello")
    assert info.value.code == "unsupported_parameter"
    message = str(info.value)
    assert "'gpt'" in message and "Gemini" in message and "/embed" in message
    assert not fakes[0].received


def test_a_model_the_catalog_does_not_know_may_still_embed(gw: Any, fakes: Any) -> None:
    with _client(gw) as client:
        answer = client.embeddings.create(model="house", input="hello")
    assert answer.data and len(fakes[2].received) == 1
