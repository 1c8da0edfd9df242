"""Client JSON schemas through the whole gateway (issue 12, items 1 and 2): a schema that
could reach the network, a dangling reference or an invalid schema is a 400 before any
upstream call; a hostile ``pattern`` never stalls the event loop."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from laneway.testing import FakeOpenAI, FakeReply, FakeTurn, RunningGateway
from tests._quiet_gc import session_heap_frozen
from tests.e2e.conftest import GatewayFactory


class RefTarget:
    """A loopback HTTP server standing in for an internal service a schema points at: it
    counts connections and answers slowly (as the probe's target did)."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                time.sleep(2.0)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    def __enter__(self) -> RefTarget:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture
def ref_target() -> Iterator[RefTarget]:
    with RefTarget() as target:
        yield target


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=lambda turn: FakeReply(text='{"n": 1}')) as server:
        yield server


def _gateway(start_gateway: GatewayFactory, upstream: FakeOpenAI) -> RunningGateway:
    deployment = {
        "name": "gpt",
        "model": "x",  # not in the catalog: JSON schema output is not ruled out
        "provider": "openai_compatible",
        "api_base": upstream.url + "/v1",
    }
    return start_gateway({"deployments": [deployment]})


def _client(gw: RunningGateway) -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=30)


def _json_schema(schema: dict[str, Any]) -> Any:
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}


MESSAGES: Any = [{"role": "user", "content": "answer in JSON"}]


def _refused(client: OpenAI, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt", messages=MESSAGES, **kwargs)
    body = info.value.body
    assert isinstance(body, dict)
    assert body["code"] == "invalid_request"
    return body


def test_remote_references_are_refused_and_never_fetched(
    start_gateway: GatewayFactory, upstream: FakeOpenAI, ref_target: RefTarget
) -> None:
    gw = _gateway(start_gateway, upstream)
    internal = ref_target.url + "/internal"
    schemas = [
        {"$ref": internal},
        {"type": "object", "properties": {"a": {"$ref": internal + "#/x"}}},
        {"$id": ref_target.url + "/schemas/", "items": {"$ref": "other.json"}},
        {"$dynamicRef": internal + "#meta"},
        {"$schema": internal},
        {"$ref": "file:///etc/passwd"},
    ]
    with _client(gw) as client:
        for schema in schemas:
            started = time.perf_counter()
            body = _refused(client, response_format=_json_schema(schema))
            assert time.perf_counter() - started < 1.0
            assert body["param"] == "response_format.json_schema.schema"
            assert "never fetches" in body["message"] or "$schema" in body["message"]
        tool: Any = {
            "type": "function",
            "function": {"name": "look", "parameters": {"$ref": internal}},
        }
        body = _refused(client, tools=[tool])
        assert body["param"] == "tools[0].function.parameters"
        assert repr(internal) in body["message"]
    assert ref_target.connections == 0
    assert upstream.received == []


@pytest.mark.parametrize(
    ("kwargs", "param", "words"),
    [
        ({"response_format": _json_schema({"properties": {"a": {"$ref": "#/$defs/gone"}}})},
         "response_format.json_schema.schema", "points to nothing"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": 5}}}]},
         "tools[0].function.parameters", "not a valid JSON Schema at /type"),
        ({"response_format": _json_schema({"type": "string", "pattern": "(a)\\1"})},
         "response_format.json_schema.schema", "linear-time regex engine"),
        ({"response_format": _json_schema({"$schema": "https://example.com/meta"})},
         "response_format.json_schema.schema", "unknown $schema"),
    ],
)  # fmt: skip
def test_bad_schemas_are_a_400_before_any_upstream_call(
    start_gateway: GatewayFactory,
    upstream: FakeOpenAI,
    kwargs: dict[str, Any],
    param: str,
    words: str,
) -> None:
    gw = _gateway(start_gateway, upstream)
    with _client(gw) as client:
        body = _refused(client, **kwargs)
    assert body["param"] == param
    assert words in body["message"]
    assert upstream.received == []


def test_local_references_still_reach_the_upstream_and_are_checked(
    start_gateway: GatewayFactory,
) -> None:
    schema = {
        "$defs": {"n/um": {"type": "integer"}},
        "type": "object",
        "properties": {"n": {"$ref": "#/$defs/n~1um"}},
        "required": ["n"],
    }
    with FakeOpenAI(responder=lambda turn: FakeReply(text='{"n": 3}')) as upstream:
        gw = _gateway(start_gateway, upstream)
        with _client(gw) as client:
            answer = client.chat.completions.create(
                model="gpt", messages=MESSAGES, response_format=_json_schema(schema)
            )
        assert answer.choices[0].message.content == '{"n": 3}'
        assert len(upstream.received) == 1


class _Probe:
    """Polls ``/health/live`` from a thread while a request runs."""

    def __init__(self, gw: RunningGateway) -> None:
        self.url = gw.url + "/health/live"
        self.latencies: list[float] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._frozen = contextlib.ExitStack()

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._done.is_set():
                start = time.perf_counter()
                assert client.get(self.url).status_code == 200
                self.latencies.append(time.perf_counter() - start)
                time.sleep(0.01)

    def __enter__(self) -> _Probe:
        # a full collection of the session's heap would be no stall of the gateway's
        self._frozen.enter_context(session_heap_frozen())
        self._thread.start()
        while not self.latencies:  # the first answer: the client is set up
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._frozen.close()


HOSTILE = "a" * 28 + "!"  # ^(a+)+$ on this text: ~35 s of backtracking in Python's re


@pytest.mark.parametrize(
    ("schema", "answer"),
    [
        ({"type": "string", "pattern": "^(a+)+$"}, f'"{HOSTILE}"'),
        ({"type": "string", "pattern": "^(a|a)*$"}, f'"{HOSTILE}"'),
        ({"type": "object", "patternProperties": {"^(a+)+$": {}}, "additionalProperties": False},
         f'{{"{HOSTILE}": 1}}'),
        ({"type": "object", "propertyNames": {"pattern": "^(\\w+\\s?)*$"}},
         '{"' + "word " * 12 + '!": 1}'),
    ],
)  # fmt: skip
def test_hostile_patterns_never_stall_the_event_loop(
    start_gateway: GatewayFactory, schema: dict[str, Any], answer: str
) -> None:
    def respond(turn: FakeTurn) -> FakeReply:
        return FakeReply(text=answer)

    with FakeOpenAI(responder=respond) as upstream:
        gw = _gateway(start_gateway, upstream)
        took: list[float] = []
        with _client(gw) as client, _Probe(gw) as probe:
            until = time.perf_counter() + 0.5  # hostile requests back to back for 0.5 s
            while not took or time.perf_counter() < until:
                started = time.perf_counter()
                with pytest.raises(openai.APIStatusError) as info:
                    client.chat.completions.create(
                        model="gpt", messages=MESSAGES, response_format=_json_schema(schema)
                    )
                took.append(time.perf_counter() - started)
                assert info.value.status_code == 502
                assert isinstance(info.value.body, dict)
                assert info.value.body["code"] == "invalid_output"
        assert len(upstream.received) == 2 * len(took)  # each answer and one retry checked
    assert max(took) < 2.0, max(took)
    assert len(probe.latencies) >= 5
    assert max(probe.latencies) < 0.1, max(probe.latencies)


def test_a_large_answer_is_checked_in_a_child_process(start_gateway: GatewayFactory) -> None:
    pad = "x" * 4_000_000  # 4 MB x 3 subschemas: over the in-line budget
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "pad": {"type": "string"}}}
    bad = f'{{"n": "1", "pad": "{pad}"}}'
    answers = iter([f'{{"n": 1, "pad": "{pad}"}}', bad, bad])

    def respond(turn: FakeTurn) -> FakeReply:
        return FakeReply(text=next(answers))

    with FakeOpenAI(responder=respond) as upstream:
        gw = _gateway(start_gateway, upstream)
        with _client(gw) as client, _Probe(gw) as probe:
            answer = client.chat.completions.create(
                model="gpt", messages=MESSAGES, response_format=_json_schema(schema)
            )
            assert (answer.choices[0].message.content or "").startswith('{"n": 1,')
            with pytest.raises(openai.APIStatusError) as info:  # "1" twice: not an integer
                client.chat.completions.create(
                    model="gpt", messages=MESSAGES, response_format=_json_schema(schema)
                )
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "invalid_output"
    assert "at n: type failed" in info.value.body["message"]
    # Moving 4 MB answers through one test process (client, gateway and upstream share its
    # GIL) costs tens of ms per probe on a loaded machine; the loop itself never stalls
    # (tests/governance/test_client_schema.py measures its lag directly).
    latencies = sorted(probe.latencies)
    assert latencies[len(latencies) // 2] < 0.1, latencies
