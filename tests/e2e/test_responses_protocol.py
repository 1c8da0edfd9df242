"""OpenAI Responses (``/v1/responses``) through the gateway with the official ``openai``
SDK: ``responses.create``, ``responses.stream``, a function-call round trip,
``previous_response_id`` with ``store`` (scoped to the key, deletable), ``text.format``
with a JSON schema, and errors before any upstream call — over OpenAI-format, Anthropic
and Gemini deployments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from laneway.governance import GovernanceStore
from laneway.ledger import open_database
from tests.e2e.conftest import ENV, GatewayFactory, Upstreams, three_formats

PRICE = {"input_per_mtok": "2.50", "output_per_mtok": "10.00"}
TOOL = {
    "type": "function",
    "name": "lookup",
    "description": "Look a word up",
    "parameters": {
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
    },
}


def _config(upstreams: Upstreams) -> dict[str, Any]:
    return {"deployments": three_formats(upstreams, PRICE)}


@pytest.fixture
def gw(start_gateway: GatewayFactory, upstreams: Upstreams) -> Any:
    return start_gateway(_config(upstreams))


def _client(gw: Any, key: str = "unused") -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)


@pytest.mark.parametrize("model", ["gpt", "claude", "gemini"])
def test_create_with_a_string_input(gw: Any, model: str) -> None:
    with _client(gw) as client:
        raw = client.responses.with_raw_response.create(
            model=model, instructions="Be brief.", input="Say hello to Grace"
        )
        response = raw.parse()
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert "Say hello to Grace" in response.output_text
    assert response.usage is not None and response.usage.output_tokens > 0
    assert response.instructions == "Be brief."
    assert raw.headers["x-laneway-deployment"] == model


@pytest.mark.parametrize("model", ["gpt", "claude", "gemini"])
def test_stream_events_and_final_response(gw: Any, model: str) -> None:
    with (
        _client(gw) as client,
        client.responses.stream(model=model, input="stream these words") as stream,
    ):
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert "response.output_item.added" in kinds
    assert "response.output_text.delta" in kinds
    assert kinds[-1] == "response.completed"
    assert "stream these words" in final.output_text
    assert final.usage is not None and final.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_function_call_round_trip(gw: Any, stream: bool) -> None:
    with _client(gw) as client:
        if stream:
            with client.responses.stream(model="gpt", input="find ostrich", tools=[TOOL]) as events:  # type: ignore[list-item]
                kinds = [event.type for event in events]
                first = events.get_final_response()
            assert "response.function_call_arguments.delta" in kinds
        else:
            first = client.responses.create(model="gpt", input="find ostrich", tools=[TOOL])  # type: ignore[list-item]
        calls = [item for item in first.output if item.type == "function_call"]
        assert len(calls) == 1
        call = calls[0]
        assert call.name == "lookup"
        assert json.loads(call.arguments) == {"query": "find ostrich"}
        second = client.responses.create(
            model="gpt",
            tools=[TOOL],  # type: ignore[list-item]
            input=[
                {"role": "user", "content": "find ostrich"},
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                },
                {"type": "function_call_output", "call_id": call.call_id, "output": "a bird"},
            ],
        )
    assert second.output_text  # answered in text, not another call
    assert not [item for item in second.output if item.type == "function_call"]


def test_previous_response_id_continues_the_conversation(gw: Any, upstreams: Upstreams) -> None:
    openai_fake = upstreams[0]
    with _client(gw) as client:
        first = client.responses.create(model="gpt", input="my name is Ada", store=True)
        second = client.responses.create(
            model="gpt", input="what is my name?", previous_response_id=first.id
        )
        sent = openai_fake.received[-1].body["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "user"]
        assert sent[0]["content"] == "my name is Ada"
        assert sent[1]["content"] == first.output_text
        # a chain of three
        client.responses.create(model="gpt", input="and again?", previous_response_id=second.id)
        assert len(openai_fake.received[-1].body["messages"]) == 5
        # retrieve and delete
        again = client.responses.retrieve(first.id)
        assert again.id == first.id and again.output_text == first.output_text
        deleted = client.responses.delete(first.id)
        assert deleted is None or getattr(deleted, "deleted", True)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(first.id)
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="gpt", input="x", previous_response_id=first.id)
    assert isinstance(info.value.body, dict)
    assert info.value.body["param"] == "previous_response_id"


def test_store_false_is_not_kept(gw: Any) -> None:
    with _client(gw) as client:
        response = client.responses.create(model="gpt", input="forget me", store=False)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(response.id)


def test_stored_responses_are_scoped_to_the_key(
    start_gateway: GatewayFactory,
    upstreams: Upstreams,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(ENV, "LANEWAY_MASTER_KEY", "master-for-responses")
    gw = start_gateway(_config(upstreams))
    store = GovernanceStore(open_database(f"sqlite:///{tmp_path / 'ledger.db'}"))
    alice, _ = store.create_key("alice")
    bob, _ = store.create_key("bob")
    with _client(gw, alice) as client:
        mine = client.responses.create(model="gpt", input="alice's secret plan")
        assert client.responses.retrieve(mine.id).id == mine.id
    with _client(gw, bob) as client:
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(mine.id)
        with pytest.raises(openai.BadRequestError):
            client.responses.create(model="gpt", input="x", previous_response_id=mine.id)


@pytest.mark.parametrize("model", ["gemini"])
def test_json_schema_text_format(gw: Any, model: str) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    with _client(gw) as client:
        response = client.responses.create(
            model=model,
            input="give JSON",
            text={"format": {"type": "json_schema", "name": "answer", "schema": schema}},
        )
    assert json.loads(response.output_text) == {"answer": "give JSON"}


def test_bad_input_is_refused_before_any_upstream_call(gw: Any, upstreams: Upstreams) -> None:
    url = gw.base_url + "/responses"
    cases = [
        {"model": "gpt", "input": []},
        {"model": "gpt", "input": "x", "unknown": 1},
        {"model": "claude", "input": [{"type": "reasoning", "summary": []}]},  # relayed on gpt
        {"model": "gpt", "input": "x", "tools": [{"type": "web_search"}]},
        {"model": "gpt", "input": "x", "tools": [{**TOOL, "parameters": {"type": 5}}]},
        {"model": "gpt", "input": [{"role": "robot", "content": "x"}]},
        {"model": "gpt", "input": "x", "max_output_tokens": 0},
    ]
    for body in cases:
        response = httpx.post(url, json=body)
        assert response.status_code == 400, body
        assert set(response.json()) == {"error"}
    assert all(not u.received for u in upstreams)
    with _client(gw) as client, pytest.raises(openai.BadRequestError):
        client.responses.create(model="claude", input="think", reasoning={"effort": "high"})
