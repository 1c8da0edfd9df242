"""``POST /v1/embeddings`` through the official ``openai`` SDK against fake upstreams:
routing to deployments that can embed, base64, ``dimensions``, the ledger and cost, the
sensitive-data rule, and bad input refused with zero upstream calls."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web

from laneway.errors import UpstreamBadResponse
from laneway.governance import GovernanceStore
from laneway.ledger import open_database
from laneway.testing import FakeAnthropic, FakeOpenAI, Fault
from tests.e2e.conftest import ENV, GatewayFactory, ledger_rows, openai_deployment

PRICE = {"input_per_mtok": "0.02", "output_per_mtok": "0"}
SECRET_TEXT = "Write to maria.lopez@example.org about the invoice"


Upstreams = tuple[FakeOpenAI, FakeOpenAI, FakeAnthropic]


@pytest.fixture
def upstreams() -> Iterator[Upstreams]:
    with (
        FakeOpenAI(api_key="sk-upstream-secret", model="text-embedding-3-small") as external,
        FakeOpenAI(model="bge-m3") as private,
        FakeAnthropic(api_key="sk-upstream-secret") as claude,
    ):
        yield external, private, claude


def _config(
    external: FakeOpenAI, private: FakeOpenAI | None, claude: FakeAnthropic
) -> dict[str, Any]:
    deployments: list[dict[str, Any]] = [
        {
            "name": "claude",
            "model": "claude-sonnet-4-6",
            "provider": "anthropic",
            "api_base": claude.url,
            "api_key": "env:FAKE_KEY",
        },
        openai_deployment("embed", external.url, model="text-embedding-3-small", price=PRICE),
    ]
    if private is not None:
        deployments.append(
            {
                "name": "private",
                "model": "bge-m3",
                "provider": "openai_compatible",
                "vendor": "vllm",
                "api_base": private.url + "/v1",
                "hosting": "self_hosted",
            }
        )
    lane = ["claude", "embed"] + (["private"] if private is not None else [])
    return {
        "deployments": deployments,
        "tiers": {"embed": lane, "chat": ["claude"]},
        "ledger": {"flush_interval": 0.05},
    }


@pytest.fixture
def gw(upstreams: Upstreams, start_gateway: GatewayFactory) -> Any:
    return start_gateway(_config(*upstreams))


def _client(gw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=30)


def _floats32(text: str) -> list[float]:
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def _audit(row: dict[str, Any]) -> dict[str, Any]:
    audit = row["audit"]
    return json.loads(audit) if isinstance(audit, str) else dict(audit or {})


def test_string_and_list_base64_dimensions_ledger_and_skip(
    upstreams: Upstreams, gw: Any, tmp_path: Path
) -> None:
    external, private, claude = upstreams
    with _client(gw) as client:
        raw = client.embeddings.with_raw_response.create(model="tier:embed", input="hello world")
        one = raw.parse()
        assert raw.headers["x-laneway-deployment"] == "embed"
        cost_header = raw.headers["x-laneway-cost-usd"]
        assert len(one.data) == 1 and len(one.data[0].embedding) == 8
        assert one.model == "text-embedding-3-small"
        assert one.usage.prompt_tokens == 3 and one.usage.total_tokens == 3

        texts = ["hello world", "beta gamma", "delta"]
        floats = client.embeddings.create(model="tier:embed", input=texts, encoding_format="float")
        assert [d.index for d in floats.data] == [0, 1, 2]
        assert floats.data[0].embedding == one.data[0].embedding  # deterministic per text
        assert floats.data[0].embedding != floats.data[1].embedding
        packed = client.embeddings.create(model="tier:embed", input=texts, encoding_format="base64")
        decoded = [_floats32(str(d.embedding)) for d in packed.data]
        assert decoded == [d.embedding for d in floats.data]
        # Without encoding_format the SDK asks for base64 itself and decodes it.
        default = client.embeddings.create(model="tier:embed", input=texts)
        assert [d.embedding for d in default.data] == [d.embedding for d in floats.data]

        sized = client.embeddings.create(model="embed", input="hello", dimensions=4)
        assert len(sized.data[0].embedding) == 4
    bodies = [r.body for r in external.received]
    assert bodies[0] == {
        "model": "text-embedding-3-small",
        "input": ["hello world"],
        "encoding_format": "float",
    }
    assert bodies[-1]["dimensions"] == 4
    assert all(r.body["encoding_format"] == "float" for r in external.received)  # we encode
    assert not claude.received and not private.received
    gw.stop()
    rows = [r for r in ledger_rows(tmp_path) if r["attempt"] == 0]
    assert len(rows) == 5
    first = rows[0]
    assert first["deployment"] == "embed" and first["status"] == 200
    assert first["prompt_tokens"] == 3 and first["completion_tokens"] == 0
    expected = Decimal("0.02") * 3 / 1_000_000  # input price only
    assert first["cost_nusd"] == int(expected * 1_000_000_000) == 60
    assert Decimal(cost_header) == expected
    assert first["estimated"] in (0, False)
    assert {"deployment": "claude", "reason": "cannot_embed"} in _audit(first)["skipped"]


def test_sensitive_input_goes_only_to_the_self_hosted_deployment(
    upstreams: Upstreams, gw: Any, tmp_path: Path
) -> None:
    external, private, _ = upstreams
    with _client(gw) as client:
        raw = client.embeddings.with_raw_response.create(
            model="tier:embed", input=["a clean sentence", SECRET_TEXT]
        )
        assert raw.headers["x-laneway-deployment"] == "private"
        assert len(raw.parse().data) == 2
        clean = client.embeddings.with_raw_response.create(model="tier:embed", input="clean")
        assert clean.headers["x-laneway-deployment"] == "embed"
    assert len(private.received) == 1 and len(external.received) == 1
    assert "maria.lopez" not in json.dumps([r.body for r in external.received])
    gw.stop()
    audit = _audit(ledger_rows(tmp_path)[0])
    assert audit["sensitive"] is True and audit["detectors"] == {"email": 1}


def test_sensitive_input_without_a_private_deployment_is_503_no_private_route(
    upstreams: Upstreams, start_gateway: GatewayFactory
) -> None:
    external, _, claude = upstreams
    gw = start_gateway(_config(external, None, claude))
    with _client(gw) as client, pytest.raises(openai.InternalServerError) as info:
        client.embeddings.create(model="tier:embed", input=SECRET_TEXT)
    assert info.value.status_code == 503
    assert info.value.code == "no_private_route"
    assert not external.received


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "tier:embed", "input": [1, 2, 3]}, "input"),
        ({"model": "tier:embed", "input": [[1, 2], [3]]}, "input"),
        ({"model": "tier:embed", "input": "hi", "extra": True}, "extra"),
        ({"model": "tier:embed", "input": ""}, "input"),
        ({"model": "tier:embed", "input": []}, "input"),
        ({"model": "tier:embed", "input": ["ok", ""]}, "input[1]"),
        ({"model": "tier:embed", "input": "hi", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "tier:embed", "input": "hi", "dimensions": 0}, "dimensions"),
        ({"model": "tier:embed", "input": "hi", "user": "a\nb"}, "user"),
        ({"input": "hi"}, "model"),
        ({"model": "tier:embed", "input": ["x"] * 2049}, "input"),
    ],
)
def test_bad_input_is_refused_with_zero_upstream_calls(
    upstreams: Upstreams, gw: Any, body: dict[str, Any], param: str
) -> None:
    external, private, claude = upstreams
    reply = httpx.post(gw.base_url + "/embeddings", json=body, timeout=30)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert not external.received and not private.received and not claude.received


def test_a_model_that_cannot_embed_is_a_clear_400(upstreams: Upstreams, gw: Any) -> None:
    claude = upstreams[2]
    with _client(gw) as client, pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="claude", input="hello")
    assert info.value.code == "unsupported_parameter"
    assert "'claude'" in str(info.value)
    assert not claude.received


def test_falls_over_to_the_next_deployment_on_an_upstream_failure(
    upstreams: Upstreams,
    start_gateway: GatewayFactory,
    tmp_path: Path,
) -> None:
    external, private, claude = upstreams
    config = _config(external, private, claude)
    config["tiers"]["embed"] = ["embed", "private"]
    gw = start_gateway(config)
    external.fail_next(Fault("status", status=503))
    with _client(gw) as client:
        raw = client.embeddings.with_raw_response.create(model="tier:embed", input="hello")
    assert raw.headers["x-laneway-deployment"] == "private"
    assert raw.headers["x-laneway-fallbacks"] == "1"
    assert len(external.received) == 1 and len(private.received) == 1
    gw.stop()
    summary = [r for r in ledger_rows(tmp_path) if r["attempt"] == 0]
    assert summary[0]["deployment"] == "private" and summary[0]["fallbacks"] == 1


class _NoUsageOpenAI(FakeOpenAI):
    """An OpenAI-compatible server whose embeddings answers carry no ``usage``."""

    async def _embeddings(self, request: web.Request) -> web.Response:
        reply = await super()._embeddings(request)
        payload = json.loads(reply.text or "{}")
        payload.pop("usage", None)
        return web.json_response(payload, status=reply.status)


def test_missing_usage_is_billed_as_an_estimate_marked_estimated(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    with _NoUsageOpenAI(model="bge-m3") as server:
        gw = start_gateway(
            {
                "deployments": [openai_deployment("tei", server.url, model="bge-m3", price=PRICE)],
                "ledger": {"flush_interval": 0.05},
            }
        )
        with _client(gw) as client:
            answer = client.embeddings.create(model="tei", input="twelve characters long " * 4)
        gw.stop()
    assert answer.usage.prompt_tokens > 0
    row = ledger_rows(tmp_path)[0]
    assert row["estimated"] in (1, True)
    assert row["prompt_tokens"] == answer.usage.prompt_tokens
    assert row["cost_nusd"] is not None and row["cost_nusd"] > 0


def test_key_budget_is_reserved_and_settled_like_chat(
    upstreams: Upstreams,
    start_gateway: GatewayFactory,
    tmp_path: Path,
) -> None:
    external, private, claude = upstreams
    ENV["LANEWAY_MASTER_KEY"] = "master-for-embeddings"
    try:
        gw = start_gateway(_config(external, private, claude))
        engine = open_database(f"sqlite:///{tmp_path / 'ledger.db'}")
        store = GovernanceStore(engine)
        secret, record = store.create_key("rag", budget_usd=Decimal("0.000001"))
        client = openai.OpenAI(base_url=gw.base_url, api_key=secret, max_retries=0, timeout=30)
        with client:
            client.embeddings.create(model="embed", input="hello world")  # 60 nano-USD
            with pytest.raises(openai.RateLimitError) as info:  # reserves ~200 micro-USD
                client.embeddings.create(model="embed", input=["x" * 400] * 100)
        assert isinstance(info.value.body, dict)
        assert info.value.body["code"] == "budget_exceeded"
        assert len(external.received) == 1
        gw.stop()
        status = store.spend(record)
        assert status.spent_usd == Decimal("0.02") * 3 / 1_000_000
        assert status.reserved_usd == 0
        engine.dispose()
    finally:
        ENV.pop("LANEWAY_MASTER_KEY")


class _ShortOpenAI(FakeOpenAI):
    """Answers one vector fewer than it was sent texts (a malformed embeddings body)."""

    async def _embeddings(self, request: web.Request) -> web.Response:
        reply = await super()._embeddings(request)
        payload = json.loads(reply.text or "{}")
        payload["data"] = payload["data"][:-1]
        return web.json_response(payload, status=reply.status)


def test_a_malformed_answer_falls_over_to_the_next_deployment(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    with _ShortOpenAI(model="bge-m3") as broken, FakeOpenAI(model="bge-m3") as private:
        config = {
            "deployments": [
                openai_deployment("broken", broken.url, model="bge-m3"),
                openai_deployment("good", private.url, model="bge-m3"),
            ],
            "tiers": {"embed": ["broken", "good"]},
            "ledger": {"flush_interval": 0.05},
        }
        gw = start_gateway(config)
        with _client(gw) as client:
            raw = client.embeddings.with_raw_response.create(model="tier:embed", input=["a", "b"])
        assert raw.headers["x-laneway-deployment"] == "good"
        assert len(raw.parse().data) == 2
        assert len(broken.received) == 1
        gw.stop()
    rows = ledger_rows(tmp_path)
    failed = [r for r in rows if r["attempt"] == 1]
    assert failed and failed[0]["error_kind"] == UpstreamBadResponse.code
    assert failed[0]["deployment"] == "broken"


@pytest.mark.parametrize("action", ["redact", "block"])
def test_redact_and_block_policies_apply_to_embeddings(
    upstreams: Upstreams, start_gateway: GatewayFactory, action: str
) -> None:
    external, _, claude = upstreams
    config = _config(external, None, claude)
    config["policies"] = {"sensitive": {"action": action}}
    gw = start_gateway(config)
    with _client(gw) as client:
        if action == "block":
            with pytest.raises(openai.PermissionDeniedError) as info:
                client.embeddings.create(model="tier:embed", input=SECRET_TEXT)
            assert info.value.code == "sensitive_data_blocked"
            assert not external.received
            return
        answer = client.embeddings.create(model="tier:embed", input=["clean", SECRET_TEXT])
    assert len(answer.data) == 2
    sent = external.received[0].body["input"]
    assert sent[0] == "clean" and "maria.lopez" not in sent[1] and "invoice" in sent[1]
