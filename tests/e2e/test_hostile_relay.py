"""Faults on the Responses relay (reasoning requests passed through to OpenAI's Responses
API): a stream that breaks after text went out is billed for that text and marked
partial in every ledger row, as a chat stream is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from laneway.testing import FakeOpenAIResponses, FakeReply, FakeTurn, Fault
from tests.e2e.conftest import GatewayFactory, openai_deployment, rows_when

PRICE = {"input_per_mtok": "1.25", "output_per_mtok": "10"}
WORDS = " ".join(f"word{i}" for i in range(40))


def _long(turn: FakeTurn) -> FakeReply:
    return FakeReply(text=WORDS)


@pytest.mark.parametrize("fault", ["cut", "unended"])
def test_a_relayed_stream_broken_after_its_text_bills_the_text_in_partial_rows(
    start_gateway: GatewayFactory, tmp_path: Path, fault: str
) -> None:
    with FakeOpenAIResponses(responder=_long) as gpt:
        gw = start_gateway(
            {
                "deployments": [openai_deployment("gpt", gpt.url, model="gpt-5.4", price=PRICE)],
                "ledger": {"flush_interval": 0.05},
            }
        )
        # cut: the connection drops after 18 text deltas; unended: every event but
        # response.completed (so no usage), then a clean end
        gpt.fail_next(Fault("cut", after_chunks=23) if fault == "cut" else Fault("unended"))
        body: dict[str, Any] = {
            "model": "gpt",
            "input": "talk",
            "include": ["reasoning.encrypted_content"],
            "stream": True,
        }
        with httpx.stream("POST", gw.base_url + "/responses", json=body, timeout=30) as reply:
            assert reply.status_code == 200
            text = "".join(reply.iter_text())
        rows = rows_when(tmp_path, lambda rows: len(rows) == 2)
    deltas = text.count("event: response.output_text.delta")
    assert deltas >= 15
    assert text.rstrip().splitlines()[-2] == "event: error"
    for row in rows:  # the request's row and its one call's row
        assert row["status"] == 502
        assert row["partial"] in (1, True), row
        assert row["completion_tokens"] >= deltas, row  # the text sent is billed
        assert row["cost_nusd"] > 0
