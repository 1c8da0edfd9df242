"""Laneway's headline promise, fault by fault, with the official SDKs as the clients: no
truncated or failed answer is ever shown to a client as a success. For each client
protocol (chat completions, Anthropic Messages, Responses translated through chat, and
Responses relayed to the Responses API), streamed and not, the primary upstream plays a
scripted fault; what the SDK's plain use sees is either an exception or a complete answer
(from the backup, when the fault came before the first byte), and the ledger records the
failed call.

Streams are read the way most code reads them: plain iteration, no helper that checks
for the final event. One gateway and two fakes serve the whole module (the primary's
time-outs are short; its circuit never opens)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from laneway.server import create_app
from laneway.settings import Settings
from laneway.testing import (
    FakeAnthropic,
    FakeOpenAIResponses,
    FakeReply,
    FakeTurn,
    Fault,
    RunningGateway,
)
from tests.e2e.conftest import ENV, openai_deployment

WORDS = "one two three four five six seven eight"
ANSWER = f"Echo: {WORDS}"
PROTOCOLS = ("chat", "messages", "responses", "relay")
TIMEOUT_S = 0.5  # the primary's read and idle time-outs
RELAY = ["reasoning.encrypted_content"]


def _echo(turn: FakeTurn) -> FakeReply:
    return FakeReply(text=f"Echo: {turn.last_user_text}")


@dataclass
class Rig:
    gateway: RunningGateway
    primary: FakeOpenAIResponses
    backup: FakeOpenAIResponses
    claude: FakeAnthropic
    ledger: Path
    openai: openai.OpenAI
    anthropic: anthropic.Anthropic


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    ledger = tmp_path_factory.mktemp("faults") / "ledger.db"
    timeouts = {"read": TIMEOUT_S, "idle": TIMEOUT_S}
    with (
        FakeOpenAIResponses(api_key=ENV["FAKE_KEY"], responder=_echo) as primary,
        FakeOpenAIResponses(api_key=ENV["FAKE_KEY"], responder=_echo) as backup,
        FakeAnthropic(api_key=ENV["FAKE_KEY"], responder=_echo) as claude,
    ):
        config = {
            "database": {"url": f"sqlite:///{ledger}"},
            "deployments": [
                openai_deployment("p", primary.url, model="gpt-5.4", timeouts=timeouts),
                openai_deployment("b", backup.url, model="gpt-5.4"),
                openai_deployment("q", primary.url, model="gpt-5.4"),  # default time-outs
                {
                    "name": "claude",
                    "model": "claude-sonnet-4-6",
                    "provider": "anthropic",
                    "api_base": claude.url,
                    "api_key": "env:FAKE_KEY",
                    "timeouts": timeouts,
                },
            ],
            "tiers": {"t": ["p", "b"]},
            "circuit": {"failure_threshold": 10_000},
            "retry": {"max_retries": 0},
            "ledger": {"flush_interval": 0.05},
        }
        app = create_app(Settings.model_validate(config), env=ENV)
        with RunningGateway(app) as gateway:
            yield Rig(gateway, primary, backup, claude, ledger, *_clients(gateway))


def _clients(gateway: RunningGateway) -> tuple[openai.OpenAI, anthropic.Anthropic]:
    return (
        openai.OpenAI(base_url=gateway.base_url, api_key="x", max_retries=0, timeout=20),
        anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0, timeout=20),
    )


@pytest.fixture
def fresh(rig: Rig) -> Rig:
    rig.primary.reset()
    rig.backup.reset()
    rig.claude.reset()
    return rig


# -- the clients ---------------------------------------------------------------------------


def _open(rig: Rig, protocol: str, model: str, stream: bool) -> Any:
    """The SDK call (for a stream: the SDK's stream object, not yet read)."""
    if protocol == "chat":
        return rig.openai.chat.completions.create(
            model=model, messages=[{"role": "user", "content": WORDS}], stream=stream
        )
    if protocol == "messages":
        return rig.anthropic.messages.create(
            model=model,
            max_tokens=256,
            messages=[{"role": "user", "content": WORDS}],
            stream=stream,
        )
    extra: dict[str, Any] = {"include": RELAY} if protocol == "relay" else {}
    return rig.openai.responses.create(
        model=model, input=WORDS, stream=stream, store=False, **extra
    )


def _text_of(protocol: str, answer: Any) -> str:
    """A non-streamed answer's text."""
    if protocol == "chat":
        return str(answer.choices[0].message.content)
    if protocol == "messages":
        return "".join(b.text for b in answer.content if b.type == "text")
    return str(answer.output_text)


def _delta_text(protocol: str, event: Any) -> str:
    if protocol == "chat":
        return (event.choices[0].delta.content or "") if event.choices else ""
    kind = getattr(event, "type", "")
    if protocol == "messages":
        delta = getattr(event, "delta", None)
        is_text = kind == "content_block_delta" and delta.type == "text_delta"
        return str(delta.text) if is_text else ""
    return str(event.delta) if kind == "response.output_text.delta" else ""


def _ask(rig: Rig, protocol: str, stream: bool, model: str = "tier:t") -> str:
    """The answer's text as the SDK's plain use gives it (what it raises, raised)."""
    answer = _open(rig, protocol, model, stream)
    if not stream:
        return _text_of(protocol, answer)
    return "".join(_delta_text(protocol, event) for event in answer)


# -- the ledger ----------------------------------------------------------------------------


def _last_id(rig: Rig) -> int:
    with sqlite3.connect(rig.ledger) as conn:
        try:
            return int(conn.execute("SELECT coalesce(max(id), 0) FROM ledger").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def _rows_after(
    rig: Rig, after: int, ready: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """The rows of the last request made (its id is the highest: a counter) among those
    written after row ``after``, once ``ready`` says so (the writer flushes in the
    background: an earlier request's rows may still come after ``after``)."""
    deadline = time.monotonic() + 10
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        with sqlite3.connect(rig.ledger) as conn:
            conn.row_factory = sqlite3.Row
            query = "SELECT * FROM ledger WHERE id > ? ORDER BY id"
            rows = [dict(r) for r in conn.execute(query, (after,))]
        if rows:
            last = max(r["request_id"] for r in rows)
            rows = [r for r in rows if r["request_id"] == last]
            if ready(rows):
                return rows
        time.sleep(0.05)
    raise AssertionError(f"the ledger never got the expected rows: {_brief(rows)}")


def _brief(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What an assertion message shows of each row."""
    keys = ("request_id", "attempt", "deployment", "status", "partial", "error_kind", "fallbacks")
    return [tuple(r[k] for k in keys) for r in rows]


def _calls(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of upstream calls (attempt 1, 2, …); attempt 0 is the request's own."""
    return [r for r in rows if r["attempt"] > 0]


# -- faults after the stream started: an exception, never a short success ------------------

# events the primary sends before the fault: some text is out by then (the Responses API
# starts with created, in_progress and a reasoning item)
_AFTER = {"chat": 3, "messages": 3, "responses": 3, "relay": 7}

MID_STREAM = {
    "cut": lambda n: Fault("cut", after_chunks=n),  # the connection drops
    "hang": lambda n: Fault("hang", after_chunks=n),  # silence past the idle time-out
    "malformed": lambda n: Fault("malformed"),  # an event that is not JSON
    "fail": lambda n: Fault("fail", after_chunks=n),  # the provider's in-stream error
    "short": lambda n: Fault("short", after_chunks=n),  # a clean end before any finish
}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("fault", sorted(MID_STREAM))
def test_a_stream_broken_after_the_start_raises_in_the_sdk(
    fresh: Rig, protocol: str, fault: str
) -> None:
    rig = fresh
    start = _last_id(rig)
    rig.primary.fail_next(MID_STREAM[fault](_AFTER[protocol]))
    seen: list[str] = []
    with pytest.raises((openai.APIError, anthropic.APIError)) as info:
        for event in _open(rig, protocol, "tier:t", True):
            seen.append(_delta_text(protocol, event))
    assert "".join(seen) != ANSWER
    assert not isinstance(info.value, openai.APIConnectionError | anthropic.APIConnectionError), (
        "the gateway ends the stream with an error event, not a dropped connection"
    )
    rows = _rows_after(rig, start, lambda rows: len(rows) >= 2)
    assert all(r["status"] >= 500 for r in rows), _brief(rows)  # none says answered
    assert all(r["partial"] for r in rows), _brief(rows)
    assert [r["deployment"] for r in _calls(rows)] == ["p"]  # no fall-over after the start
    assert not rig.backup.received


@pytest.mark.parametrize("protocol", ["chat", "messages", "responses"])
@pytest.mark.parametrize("fault", sorted(MID_STREAM))
def test_an_anthropic_stream_broken_after_the_start_raises_in_the_sdk(
    fresh: Rig, protocol: str, fault: str
) -> None:
    """The same faults on an Anthropic upstream (message_start, content_block_start, ping
    and a text delta out first; ``malformed`` comes after message_start, before any delta:
    an HTTP error; ``fail`` is Anthropic's ``event: error``)."""
    rig = fresh
    start = _last_id(rig)
    rig.claude.fail_next(MID_STREAM[fault](4))
    seen: list[str] = []
    with pytest.raises((openai.APIError, anthropic.APIError)) as info:
        for event in _open(rig, protocol, "claude", True):
            seen.append(_delta_text(protocol, event))
    assert "".join(seen) != ANSWER
    assert not isinstance(info.value, openai.APIConnectionError | anthropic.APIConnectionError)
    rows = _rows_after(rig, start, lambda rows: len(rows) >= 2)
    assert all(r["status"] >= 500 for r in rows), _brief(rows)
    if fault == "malformed":  # before any delta: the SDK's status error, nothing partial
        assert isinstance(info.value, openai.APIStatusError | anthropic.APIStatusError)
        assert info.value.status_code == 502
    else:
        assert all(r["partial"] for r in rows), _brief(rows)


def test_an_ended_stream_after_its_finish_is_complete_but_a_relayed_one_needs_its_final(
    fresh: Rig,
) -> None:
    """``unended``: everything but the last event (``[DONE]``, ``message_stop``,
    ``response.completed``). A chat stream that sent its finish reason is complete (the
    answer is whole: test_faults item 12); a relayed Responses stream without its final
    event is not (that event carries the usage and the status)."""
    rig = fresh
    for protocol in ("chat", "messages", "responses"):
        rig.primary.fail_next(Fault("unended"))
        assert _ask(rig, protocol, True) == ANSWER
    start = _last_id(rig)
    rig.primary.fail_next(Fault("unended"))
    with pytest.raises(openai.APIError):
        _ask(rig, "relay", True)
    rows = _rows_after(rig, start, lambda rows: len(rows) >= 2)
    assert all(r["status"] == 502 and r["partial"] for r in rows), _brief(rows)


# -- faults before the first byte: the backup answers, the ledger keeps the failure ---------

# the fault, and the status of the failed call's row (the upstream's, when it sent one)
BEFORE_FIRST_BYTE: dict[str, tuple[Fault, int | None]] = {
    "429": (Fault("status", status=429), 429),
    "500": (Fault("status", status=500), 500),
    "stall": (Fault("stall", seconds=TIMEOUT_S * 4), 504),  # past the read time-out
    "reset": (Fault("reset"), 502),  # the connection drops before any answer
    # a 200 whose body is not JSON (not streamed): see the test after this one
    "malformed": (Fault("malformed"), None),
}


# (a malformed stream breaks after its first event: see the mid-stream test)
_BEFORE_CASES = [
    pytest.param(fault, stream, id=f"{fault}-{'stream' if stream else 'json'}")
    for fault in sorted(BEFORE_FIRST_BYTE)
    for stream in (False, True)
    if not (fault == "malformed" and stream)
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("fault", "stream"), _BEFORE_CASES)
def test_a_failure_before_the_first_byte_falls_over_to_a_complete_answer(
    fresh: Rig, protocol: str, stream: bool, fault: str
) -> None:
    rig = fresh
    script, status = BEFORE_FIRST_BYTE[fault]
    start = _last_id(rig)
    rig.primary.fail_next(script)
    assert _ask(rig, protocol, stream) == ANSWER
    rows = _rows_after(rig, start, lambda rows: len(_calls(rows)) >= 2)
    calls = _calls(rows)
    assert [r["deployment"] for r in calls] == ["p", "b"], _brief(rows)
    assert calls[1]["status"] == 200 and not calls[1]["error_kind"], _brief(rows)
    assert calls[0]["error_kind"], _brief(rows)  # the failed call says why
    if status is not None:
        assert calls[0]["status"] == status, _brief(rows)
    request = [r for r in rows if r["attempt"] == 0]
    assert [(r["status"], r["fallbacks"], r["partial"]) for r in request] == [(200, 1, 0)]


# -- the client leaving --------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_that_leaves_mid_stream_is_ledgered_499_and_billed(
    fresh: Rig, protocol: str
) -> None:
    rig = fresh
    start = _last_id(rig)
    # an endless stream: a text delta every 50 ms until the gateway lets the upstream go
    rig.primary.fail_next(Fault("drip", after_chunks=_AFTER[protocol], seconds=0.05))
    stream = _open(rig, protocol, "q", True)
    text = ""
    for event in stream:
        text += _delta_text(protocol, event)
        if len(text) > 40:
            break
    stream.close()
    rows = _rows_after(rig, start, lambda rows: len(rows) >= 2)
    assert [(r["status"], bool(r["partial"])) for r in rows] == [(499, True)] * 2, _brief(rows)
    assert all(r["completion_tokens"] > 0 for r in rows), rows  # what was sent is billed


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_client_that_gives_up_before_the_answer_is_ledgered_499(
    fresh: Rig, protocol: str
) -> None:
    rig = fresh
    start = _last_id(rig)
    rig.primary.fail_next(Fault("stall", seconds=2.0))  # "q" waits for it (60 s time-out)
    client_openai = rig.openai.with_options(timeout=0.6)
    client_claude = rig.anthropic.with_options(timeout=0.6)
    quick = Rig(
        rig.gateway, rig.primary, rig.backup, rig.claude, rig.ledger, client_openai, client_claude
    )
    with pytest.raises((openai.APITimeoutError, anthropic.APITimeoutError)):
        _ask(quick, protocol, False, model="q")
    rows = _rows_after(rig, start, lambda rows: len(rows) >= 2)
    assert [r["status"] for r in rows] == [499, 499], _brief(rows)


def test_a_relayed_answer_with_status_failed_is_a_failure_not_an_empty_answer(
    fresh: Rig,
) -> None:
    """A non-streamed Responses answer can be an HTTP 200 whose response says
    ``status: "failed"`` (no output): the SDK returns it as a response whose
    ``output_text`` is empty. It is a failed call: the backup answers."""
    rig = fresh
    start = _last_id(rig)
    rig.primary.fail_next(Fault("fail"))
    assert _ask(rig, "relay", False) == ANSWER
    rows = _rows_after(rig, start, lambda rows: len(_calls(rows)) >= 2)
    calls = [(r["deployment"], r["status"], r["error_kind"]) for r in _calls(rows)]
    assert calls == [("p", 502, "upstream_error"), ("b", 200, None)], _brief(rows)


def test_a_call_that_answered_200_with_a_broken_body_is_ledgered_502(fresh: Rig) -> None:
    rig = fresh
    start = _last_id(rig)
    rig.primary.fail_next(Fault("malformed"))
    assert _ask(rig, "chat", False) == ANSWER
    calls = _calls(_rows_after(rig, start, lambda rows: len(_calls(rows)) >= 2))
    assert (calls[0]["status"], calls[0]["error_kind"]) == (502, "upstream_error")


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_with_no_backup_a_failure_before_the_first_byte_is_the_sdks_status_error(
    fresh: Rig, protocol: str, stream: bool
) -> None:
    rig = fresh
    start = _last_id(rig)
    rig.primary.fail_next(Fault("status", status=500))
    with pytest.raises((openai.APIStatusError, anthropic.APIStatusError)) as info:
        _ask(rig, protocol, stream, model="q")
    assert info.value.status_code == 502
    rows = _rows_after(rig, start, lambda rows: len(rows) >= 2)
    # the request's row, and its call's with the upstream's status
    assert [(r["status"], r["error_kind"]) for r in rows] == [
        (502, "upstream_error"),
        (500, "upstream_error"),
    ]


# -- the SDKs' stream helpers ----------------------------------------------------------------


def test_the_responses_stream_helper_raises_the_api_error_too(fresh: Rig) -> None:
    """``client.responses.stream()`` (the helper that accumulates the response) reads the
    same events: it raises the gateway's error, not its own "no response.completed"."""
    rig = fresh
    for extra in ({}, {"include": RELAY}):
        rig.primary.fail_next(Fault("cut", after_chunks=7 if extra else 3))
        kinds: list[str] = []
        with (
            pytest.raises(openai.APIError, match="upstream"),
            rig.openai.responses.stream(
                model="tier:t", input=WORDS, store=False, **extra
            ) as stream,
        ):
            kinds.extend(event.type for event in stream)
        assert kinds[-1] == "response.failed", kinds


def test_a_failed_responses_stream_ends_with_response_failed_and_an_error_event(
    fresh: Rig,
) -> None:
    """The events a failed Responses stream ends with, as any client reads them:
    ``response.failed`` (the response so far, the id ``response.created`` announced) and
    ``error`` with the documented flat fields and the nested ``error`` object."""
    rig = fresh
    for extra in ({}, {"include": RELAY}):
        rig.primary.fail_next(Fault("cut", after_chunks=7 if extra else 3))
        body = {"model": "tier:t", "input": WORDS, "stream": True, "store": False, **extra}
        url = rig.gateway.base_url + "/responses"
        with httpx.stream("POST", url, json=body, timeout=20) as reply:
            lines = [line for line in reply.iter_lines() if line.startswith("data: ")]
        events = [json.loads(line[len("data: ") :]) for line in lines]
        failed, error = events[-2:]
        assert failed["type"] == "response.failed"
        assert failed["response"]["id"] == events[0]["response"]["id"]
        assert failed["response"]["status"] == "failed"
        assert failed["response"]["error"]["code"] == "upstream_error"
        assert error["type"] == "error"
        assert error["sequence_number"] == failed["sequence_number"] + 1
        assert error["code"] == error["error"]["code"] == "upstream_error"
        assert error["message"] == error["error"]["message"]
        assert [e["sequence_number"] for e in events] == list(range(len(events)))


# -- the gateway stopping ------------------------------------------------------------------


def test_streams_still_running_when_the_grace_period_ends_raise_in_every_sdk(
    rig: Rig, tmp_path: Path
) -> None:
    rig.primary.reset()
    ledger = tmp_path / "ledger.db"
    config = {
        "database": {"url": f"sqlite:///{ledger}"},
        "deployments": [openai_deployment("q", rig.primary.url, model="gpt-5.4")],
        "ledger": {"flush_interval": 0.05},
    }
    app = create_app(Settings.model_validate(config), env=ENV)
    gateway = RunningGateway(app, graceful_shutdown_s=0.3).start()
    local = Rig(gateway, rig.primary, rig.backup, rig.claude, ledger, *_clients(gateway))
    streaming = {p: threading.Event() for p in PROTOCOLS}
    seen: dict[str, BaseException | str] = {}

    def read(protocol: str) -> None:
        text = ""
        try:
            for event in _open(local, protocol, "q", True):
                text += _delta_text(protocol, event)
                if text:
                    streaming[protocol].set()
            seen[protocol] = f"ended quietly after {text!r}"
        except Exception as exc:  # what the SDK raised
            seen[protocol] = exc
        streaming[protocol].set()

    threads = [threading.Thread(target=read, args=(p,)) for p in PROTOCOLS]
    for protocol, thread in zip(PROTOCOLS, threads, strict=True):
        rig.primary.fail_next(Fault("hang", after_chunks=_AFTER[protocol]))
        thread.start()
        assert streaming[protocol].wait(20), protocol  # text came, then the upstream hangs
    gateway.stop()
    for thread in threads:
        thread.join(20)
    local.openai.close()
    local.anthropic.close()
    for protocol in PROTOCOLS:
        assert isinstance(seen[protocol], openai.APIError | anthropic.APIError), (protocol, seen)
        assert "shutting down" in str(seen[protocol]), (protocol, seen[protocol])
    with sqlite3.connect(ledger) as conn:
        query = "SELECT request_id, status, error_kind, partial FROM ledger"
        rows = conn.execute(query).fetchall()
    assert len({row[0] for row in rows}) == len(PROTOCOLS), rows
    assert {row[1:] for row in rows} == {(503, "shutting_down", 1)}, rows
