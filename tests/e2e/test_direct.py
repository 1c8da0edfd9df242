"""In-process calls (evals use them): same path as HTTP requests, ledger source kept."""

from __future__ import annotations

from pathlib import Path

from laneway.ledger import open_database
from laneway.providers import ChatRequest
from laneway.server import build_gateway, run_request
from laneway.settings import Settings
from laneway.testing import FakeOpenAI, Fault
from tests.e2e.conftest import ENV, ledger_rows, openai_deployment


async def test_run_request_streams_assembles_and_records_source(tmp_path: Path) -> None:
    with FakeOpenAI(api_key=ENV["FAKE_KEY"]) as fake:
        settings = Settings.model_validate(
            {
                "deployments": [
                    openai_deployment(
                        "gpt", fake.url, price={"input_per_mtok": "1", "output_per_mtok": "2"}
                    )
                ],
                "tiers": {"frontier": ["gpt"]},
            }
        )
        engine = open_database(f"sqlite:///{tmp_path / 'ledger.db'}")
        gateway = build_gateway(settings, env=ENV, engine=engine)
        await gateway.start()
        try:
            messages = ({"role": "user", "content": "alpha beta"},)
            plain = await run_request(
                gateway, ChatRequest(model="tier:frontier", messages=messages), source="eval"
            )
            streamed = await run_request(
                gateway, ChatRequest(model="gpt", messages=messages, stream=True), source="eval"
            )
            fake.fail_next(Fault("status", status=400, error_code="context_length_exceeded"))
            failed = await run_request(gateway, ChatRequest(model="gpt", messages=messages))
        finally:
            await gateway.aclose()
    assert plain.result is not None
    assert plain.result.content == "Echo: alpha beta"
    assert plain.tier == "frontier"
    assert plain.cost_usd is not None
    assert plain.cost_usd > 0
    assert plain.ttft_ms is None
    assert streamed.result is not None
    assert streamed.result.content == "Echo: alpha beta"
    assert streamed.result.usage is not None
    assert streamed.ttft_ms is not None
    assert streamed.ttft_ms <= streamed.latency_ms
    assert failed.result is None
    assert failed.error is not None
    assert failed.error.code == "context_length_exceeded"
    summaries = [r for r in ledger_rows(tmp_path) if r["attempt"] == 0]
    assert [r["source"] for r in summaries] == ["eval", "eval", "api"]
    assert summaries[1]["stream"] in (1, True)
