"""``/v1/responses`` requests only OpenAI's Responses API can honour (reasoning items with
``encrypted_content``, ``include: ["reasoning.encrypted_content"]``, a relayed
``previous_response_id``), through the official ``openai`` SDK: relayed unchanged but
for the model to an OpenAI deployment (a fake speaking the Responses API, which refuses
reasoning blobs it did not issue), governed, ledgered and billed from the upstream's
usage; refused with a clear 400 on any other deployment."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from laneway.testing import FakeAnthropic, FakeOpenAIResponses, Fault
from tests.e2e.conftest import GatewayFactory, openai_deployment, rows_when

PRICE = {"input_per_mtok": "1.25", "output_per_mtok": "10"}
INCLUDE: Any = ["reasoning.encrypted_content"]

Fakes = tuple[FakeOpenAIResponses, FakeOpenAIResponses, FakeAnthropic]


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    with (
        FakeOpenAIResponses(api_key="sk-upstream-secret") as gpt,
        FakeOpenAIResponses(api_key="sk-upstream-secret") as backup,
        FakeAnthropic(api_key="sk-upstream-secret") as claude,
    ):
        yield gpt, backup, claude


@pytest.fixture
def gw(fakes: Fakes, start_gateway: GatewayFactory) -> Any:
    gpt, backup, claude = fakes
    deployments = [
        openai_deployment("gpt", gpt.url, model="gpt-5.4", price=PRICE),
        openai_deployment("gpt-backup", backup.url, model="gpt-5.4", price=PRICE),
        {"name": "claude", "model": "claude-sonnet-4-6", "provider": "anthropic",
         "api_base": claude.url, "api_key": "env:FAKE_KEY"},
    ]  # fmt: skip
    tiers = {"reasoning": ["gpt", "gpt-backup"], "frontier": ["claude"]}
    return start_gateway(
        {"deployments": deployments, "tiers": tiers, "ledger": {"flush_interval": 0.05}}
    )


def _client(gw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=30)


def _items(response: Any) -> list[dict[str, Any]]:
    return [item.model_dump(exclude_none=True) for item in response.output]


def test_reasoning_items_round_trip_unchanged(fakes: Fakes, gw: Any, tmp_path: Path) -> None:
    gpt = fakes[0]
    with _client(gw) as client:
        raw = client.responses.with_raw_response.create(
            model="gpt", input="Plan a trip to Lisbon", include=INCLUDE, store=False
        )
        first = raw.parse()
        assert first.output[0].type == "reasoning"
        blob = first.output[0].encrypted_content
        assert blob in gpt.issued
        follow_up = [
            {"role": "user", "content": "Plan a trip to Lisbon"},
            *_items(first),
            {"role": "user", "content": "And a day in Sintra?"},
        ]
        second = client.responses.create(model="gpt", input=follow_up, include=INCLUDE, store=False)
    assert raw.headers["x-laneway-deployment"] == "gpt"
    assert first.id.startswith("resp_fake")  # the upstream's answer, unchanged
    assert "Echo: Plan a trip to Lisbon" in first.output_text
    assert "Echo: And a day in Sintra?" in second.output_text
    sent = gpt.received[-1].body
    assert sent["model"] == "gpt-5.4"
    assert sent["input"][1]["type"] == "reasoning"
    assert sent["input"][1]["encrypted_content"] == blob  # relayed byte for byte
    assert sent["include"] == INCLUDE and sent["store"] is False
    usage = first.usage
    assert usage is not None and usage.output_tokens_details.reasoning_tokens == 16
    rows = rows_when(tmp_path, lambda rows: len(rows) == 2)
    row = rows[0]
    assert row["deployment"] == "gpt" and row["status"] == 200
    assert row["served_model"] == "gpt-5.4"  # what the upstream said answered
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        usage.input_tokens,
        usage.output_tokens,
    )
    expected = (usage.input_tokens * Decimal("1.25") + usage.output_tokens * 10) / 1_000_000
    assert Decimal(raw.headers["x-laneway-cost-usd"]) == expected
    assert Decimal(row["cost_nusd"]) / 10**9 == expected


def test_streamed_relay_passes_the_upstream_events_on(
    fakes: Fakes, gw: Any, tmp_path: Path
) -> None:
    with (
        _client(gw) as client,
        client.responses.stream(
            model="tier:reasoning", input="Stream me", include=INCLUDE, store=False
        ) as stream,
    ):
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert final.output[0].type == "reasoning" and final.output[0].encrypted_content
    assert "Echo: Stream me" in final.output_text
    assert final.usage is not None
    row = rows_when(tmp_path, lambda rows: len(rows) == 1)[0]
    assert row["stream"] in (1, True) and row["status"] == 200
    assert row["completion_tokens"] == final.usage.output_tokens


def test_previous_response_id_of_a_relayed_response_goes_back_to_its_deployment(
    fakes: Fakes, gw: Any
) -> None:
    gpt, backup, _ = fakes
    with _client(gw) as client:
        first = client.responses.create(
            model="tier:reasoning", input="Remember 42", include=INCLUDE
        )
        second = client.responses.create(
            model="tier:reasoning", input="What number?", previous_response_id=first.id
        )
        stored = client.responses.retrieve(first.id)
    assert gpt.received[-1].body["previous_response_id"] == first.id
    assert "include" not in gpt.received[-1].body  # the second request asked for nothing
    assert second.output_text == "Echo: What number?"
    assert stored.id == first.id and stored.output[0].type == "reasoning"
    assert not backup.received


@pytest.mark.parametrize("model", ["claude", "tier:frontier", "auto"])
def test_reasoning_items_elsewhere_are_a_clear_400(fakes: Fakes, gw: Any, model: str) -> None:
    item = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"}
    with _client(gw) as client, pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model=model, input=[{"role": "user", "content": "hi"}, item])
    message = info.value.message
    assert "'input[1]' is a reasoning item" in message
    if model == "auto":
        assert "not 'auto'" in message
    else:
        assert "'claude'" in message and "Responses API" in message
    assert not any(fake.received for fake in fakes)


def test_a_translated_previous_response_cannot_continue_with_reasoning_items(
    fakes: Fakes, gw: Any
) -> None:
    with _client(gw) as client:
        plain = client.responses.create(model="claude", input="hello")
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(
                model="gpt", input="more", include=INCLUDE, previous_response_id=plain.id
            )
    assert info.value.param == "previous_response_id"
    assert not fakes[0].received


SECRET = "Mail maria.lopez@example.org the plan"
SUMMARY = {"type": "reasoning", "summary": [{"type": "summary_text", "text": SECRET}]}


@pytest.mark.parametrize(
    "where",
    [
        {"input": [{"role": "user", "content": SECRET}]},
        {"input": "plain", "metadata": {"owner": SECRET}},
        {"input": [{"role": "user", "content": "plain"}, SUMMARY]},
        {"input": "plain", "instructions": SECRET},
    ],
    ids=["input", "metadata", "reasoning summary", "instructions"],
)
def test_sensitive_relay_requests_never_leave_for_an_external_deployment(
    fakes: Fakes, gw: Any, where: dict[str, Any]
) -> None:
    body = {"model": "gpt", "include": INCLUDE, **where}
    reply = httpx.post(gw.base_url + "/responses", json=body, timeout=30)
    assert reply.status_code == 503
    assert reply.json()["error"]["code"] == "no_private_route"
    assert not fakes[0].received


def test_upstream_failure_falls_over_to_the_next_relay_deployment(fakes: Fakes, gw: Any) -> None:
    gpt, backup, _ = fakes
    gpt.fail_next(Fault("status", status=503))
    with _client(gw) as client:
        raw = client.responses.with_raw_response.create(
            model="tier:reasoning", input="fall over", include=INCLUDE, store=False
        )
    assert raw.headers["x-laneway-deployment"] == "gpt-backup"
    assert raw.headers["x-laneway-fallbacks"] == "1"
    assert "Echo: fall over" in raw.parse().output_text
    assert len(gpt.received) == 1 and len(backup.received) == 1


def test_a_blob_the_upstream_did_not_issue_is_its_400_not_a_fall_over(
    fakes: Fakes, gw: Any
) -> None:
    item = {"type": "reasoning", "id": "rs_x", "summary": [], "encrypted_content": "forged"}
    with _client(gw) as client, pytest.raises(openai.BadRequestError) as info:
        client.responses.create(
            model="tier:reasoning", input=[{"role": "user", "content": "x"}, item], store=False
        )
    assert "could not be verified" in info.value.message
    assert len(fakes[0].received) == 1 and not fakes[1].received


def test_bad_relay_input_is_refused_before_any_call(fakes: Fakes, gw: Any) -> None:
    bad = [
        {"model": "gpt", "input": "x", "include": ["file_search_call.results"]},
        {"model": "gpt", "input": [{"type": "reasoning", "summary": [{"type": "x"}]}]},
        {"model": "gpt", "input": [{"type": "reasoning", "summary": [], "extra": 1}]},
        {"model": "gpt", "input": [{"type": "reasoning", "encrypted_content": 5}]},
        {"model": "gpt", "include": INCLUDE, "input": "x", "unknown": True},
    ]
    for body in bad:
        reply = httpx.post(gw.base_url + "/responses", json=body, timeout=30)
        assert reply.status_code == 400, body
    assert not any(fake.received for fake in fakes)


def test_a_stream_cut_after_the_start_ends_with_an_error_event_and_is_ledgered(
    fakes: Fakes, gw: Any, tmp_path: Path
) -> None:
    fakes[0].fail_next(Fault("cut", after_chunks=3))
    body = {"model": "gpt", "input": "cut me off", "include": INCLUDE, "stream": True}
    with httpx.stream("POST", gw.base_url + "/responses", json=body, timeout=30) as reply:
        assert reply.status_code == 200
        text = "".join(reply.iter_text())
    events = [line[len("event: ") :] for line in text.splitlines() if line.startswith("event: ")]
    assert events[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert events[-1] == "error" and "response.completed" not in events
    rows = rows_when(tmp_path, lambda rows: any(r["attempt"] == 0 for r in rows))
    row = next(r for r in rows if r["attempt"] == 0)
    assert row["deployment"] == "gpt" and row["status"] == 502 and row["partial"] in (1, True)
    assert row["prompt_tokens"] > 0  # the prompt is billed as an estimate
    assert row["estimated"] in (1, True)
    assert 0 < row["ttft_ms"] < 10_000


@pytest.mark.parametrize("action", ["redact", "block"])
def test_a_policy_that_would_redact_or_block_refuses_the_relay(
    fakes: Fakes, start_gateway: GatewayFactory, action: str
) -> None:
    gpt = fakes[0]
    gw = start_gateway(
        {
            "deployments": [openai_deployment("gpt", gpt.url, model="gpt-5.4")],
            "policies": {"sensitive": {"action": action}},
        }
    )
    with _client(gw) as client, pytest.raises(openai.PermissionDeniedError) as info:
        client.responses.create(model="gpt", input=SECRET, include=INCLUDE)
    assert info.value.code == "sensitive_data_blocked"
    if action == "redact":
        assert "cannot be redacted" in info.value.message
    assert not gpt.received


def test_output_scan_audits_and_redacts_a_relayed_answer(
    start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    from laneway.testing import FakeReply

    def leaky(turn: Any) -> FakeReply:
        return FakeReply(text="Write to maria.lopez@example.org today")

    with FakeOpenAIResponses(responder=leaky) as gpt:
        gw = start_gateway(
            {
                "deployments": [openai_deployment("gpt", gpt.url, model="gpt-5.4")],
                "policies": {"output_scan": True, "redact_output": True},
                "ledger": {"flush_interval": 0.05},
            }
        )
        with _client(gw) as client:
            answer = client.responses.create(model="gpt", input="hi", include=INCLUDE)
            with client.responses.stream(model="gpt", input="hi", include=INCLUDE) as stream:
                streamed = stream.get_final_response()
    assert "maria.lopez" not in answer.output_text and "Write to" in answer.output_text
    assert "maria.lopez" in streamed.output_text  # a stream goes out as the upstream sent it
    rows = rows_when(tmp_path, lambda rows: len(rows) == 2)
    for row in rows:  # both audited
        assert '"output"' in row["audit"] and "email" in row["audit"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_is_ledgered_499(
    start_gateway: GatewayFactory, tmp_path: Path, stream: bool
) -> None:
    with FakeOpenAIResponses(latency=0 if stream else 3, chunk_delay=0.5) as gpt:
        gw = start_gateway(
            {
                "deployments": [openai_deployment("gpt", gpt.url, model="gpt-5.4")],
                "ledger": {"flush_interval": 0.05},
            }
        )
        body = {"model": "gpt", "input": "a b c d e f", "include": INCLUDE, "stream": stream}
        if stream:
            with httpx.stream("POST", gw.base_url + "/responses", json=body, timeout=30) as r:
                next(r.iter_lines())  # the first event arrived: leave
        else:
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(gw.base_url + "/responses", json=body, timeout=0.5)
        row = rows_when(tmp_path, lambda rows: any(r["attempt"] == 0 for r in rows))
    request_row = next(r for r in row if r["attempt"] == 0)
    assert request_row["status"] == 499 and request_row["partial"] in (1, True)
    assert request_row["deployment"] == "gpt"
