"""Upstream faults end to end (issue 12, items 7–12 and 16): the gateway on a real port,
the official ``openai`` SDK as the client, fake upstreams playing scripted faults. Time
bounds are generous (a loaded 2-core machine); attempts are counted exactly."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from laneway.testing import FakeOpenAI, Fault
from tests.e2e.conftest import GatewayFactory, openai_deployment, rows_when

HI = [{"role": "user", "content": "hi"}]
WORDS = "one two three four five six"
FAST_LEDGER = {"ledger": {"flush_interval": 0.05}}


def _client(gw: Any, timeout: float = 30) -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key="unused", max_retries=0, timeout=timeout)


def _tier(*deployments: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "deployments": list(deployments),
        "tiers": {"t": [d["name"] for d in deployments]},
        **extra,
    }


# -- item 7: a silent upstream -----------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_silent_deployment_gets_one_attempt_and_the_backup_answers_in_time(
    fake_openai: FakeOpenAI, fake_backup: FakeOpenAI, start_gateway: GatewayFactory, stream: bool
) -> None:
    read = 0.8
    timeouts = {"read": read, "idle": read}
    gw = start_gateway(
        _tier(
            openai_deployment("silent", fake_openai.url, timeouts=timeouts),
            openai_deployment("backup", fake_backup.url),
        )
    )
    _client(gw).chat.completions.create(model="backup", messages=HI)  # warm the gateway up
    fake_backup.reset()
    fake_openai.fail_next(*(Fault("silent") for _ in range(3)))  # never sends headers
    started = time.monotonic()
    if stream:
        chunks = _client(gw).chat.completions.create(model="tier:t", messages=HI, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        text = _client(gw).chat.completions.create(model="tier:t", messages=HI).choices[0]
        text = text.message.content or ""
    elapsed = time.monotonic() - started
    assert text == "Echo: hi"
    assert len(fake_openai.received) == 1  # before the fix: 3, one whole time-out each
    assert len(fake_backup.received) == 1
    assert elapsed < read + 1.0, elapsed


# -- item 8: the circuit breaker --------------------------------------------------------


def test_half_open_lets_one_probe_through_ten_concurrent_requests(
    fake_openai: FakeOpenAI, fake_backup: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    cooldown = 2.0
    gw = start_gateway(
        _tier(
            openai_deployment("sick", fake_openai.url),
            openai_deployment("backup", fake_backup.url),
            circuit={"failure_threshold": 1, "cooldown": cooldown},
        )
    )
    client = _client(gw)
    fake_openai.fail_next(Fault("status", status=503))
    assert client.chat.completions.create(model="tier:t", messages=HI).choices
    assert len(fake_openai.received) == 1  # its failure opened the circuit: no retry
    time.sleep(cooldown + 0.1)  # half-open now
    fake_openai.reset()
    fake_openai.latency = 0.5  # the probe is out while the other requests arrive
    fake_openai.fail_next(*(Fault("status", status=503) for _ in range(30)))

    def one(_: int) -> str:
        response = client.chat.completions.with_raw_response.create(model="tier:t", messages=HI)
        return response.headers["x-laneway-deployment"]

    with ThreadPoolExecutor(10) as pool:
        served = list(pool.map(one, range(10)))
    assert served == ["backup"] * 10
    assert len(fake_openai.received) == 1  # one probe; before the fix: 30 attempts


@pytest.mark.parametrize("stream", [False, True])
def test_an_open_circuit_with_nothing_else_fails_fast_with_503_and_retry_after(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory, stream: bool
) -> None:
    gw = start_gateway(
        {
            "deployments": [openai_deployment("only", fake_openai.url)],
            "circuit": {"failure_threshold": 1, "cooldown": 30},
        }
    )
    client = _client(gw)
    fake_openai.fail_next(*(Fault("status", status=503) for _ in range(3)))
    with pytest.raises(openai.APIStatusError) as first:
        client.chat.completions.create(model="only", messages=HI)
    assert first.value.status_code == 502
    assert len(fake_openai.received) == 1  # its failure opened the circuit
    started = time.monotonic()
    for _ in range(3):
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="only", messages=HI, stream=stream)
        assert info.value.status_code == 503
        assert isinstance(info.value.body, dict) and info.value.body["code"] == "circuit_open"
        assert 1 <= int(info.value.response.headers["retry-after"]) <= 30
    assert time.monotonic() - started < 3.0
    assert len(fake_openai.received) == 1  # before the fix: 3 attempts per request


# -- item 9: the retry budget ----------------------------------------------------------


def test_a_sustained_outage_gets_at_most_1_2_attempts_per_request(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {
            "deployments": [openai_deployment("down", fake_openai.url)],
            "circuit": {"failure_threshold": 1_000_000},  # the budget alone holds it
        }
    )
    fake_openai.fail_next(*(Fault("status", status=503) for _ in range(1000)))
    client = _client(gw)

    def one(_: int) -> int:
        try:
            client.chat.completions.create(model="down", messages=HI)
        except openai.APIStatusError as exc:
            return exc.status_code
        return 200

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(one, range(200)))
    assert statuses == [502] * 200
    attempts = len(fake_openai.received)
    assert 200 <= attempts <= 240, attempts  # before the fix: 409 (2.04x)


# -- item 10: a stream that never ends ------------------------------------------------


def test_an_endless_stream_ends_at_its_maximum_duration_with_an_error_event(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    limit = 1.0
    deployment = openai_deployment("drip", fake_openai.url, timeouts={"stream": limit})
    gw = start_gateway({"deployments": [deployment], **FAST_LEDGER})
    fake_openai.fail_next(Fault("drip", seconds=0.05))
    started = time.monotonic()
    chunks = _client(gw).chat.completions.create(
        model="drip", messages=[{"role": "user", "content": WORDS}], stream=True
    )
    received = 0
    with pytest.raises(openai.APIError) as info:
        for _ in chunks:
            received += 1
            if time.monotonic() - started > 10:
                chunks.close()
                pytest.fail("still streaming 10 s after the 1 s limit")
    elapsed = time.monotonic() - started
    assert received >= 5  # it streamed until the limit
    assert limit <= elapsed < limit + 3.0, elapsed
    assert "maximum duration" in info.value.message
    rows = rows_when(tmp_path, lambda rows: len(rows) >= 1)
    assert (rows[0]["partial"], rows[0]["error_kind"]) == (1, "upstream_error")


# -- item 11: an HTML error page ------------------------------------------------------


def test_an_html_error_page_never_reaches_the_client(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {"deployments": [openai_deployment("gpt", fake_openai.url)], "retry": {"max_retries": 0}}
    )
    fake_openai.fail_next(Fault("html", status=502))
    with pytest.raises(openai.APIStatusError) as info:
        _client(gw).chat.completions.create(model="gpt", messages=HI)
    assert info.value.status_code == 502
    assert isinstance(info.value.body, dict)
    message = info.value.body["message"]
    assert "HTTP 502" in message and "text/html" in message and "bytes" in message
    for leaked in ("<", "DOCTYPE", "SECRET-INTERNAL-HOST", "corp.internal"):
        assert leaked not in message, message


# -- item 12: a stream that ends after its finish reason without [DONE] ----------------


def test_a_stream_without_done_after_its_finish_reason_is_a_success(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url)], **FAST_LEDGER})
    fake_openai.fail_next(Fault("unended"))
    chunks = list(
        _client(gw).chat.completions.create(
            model="gpt",
            messages=[{"role": "user", "content": WORDS}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )  # before the fix: the content, then an error event (APIError here)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"Echo: {WORDS}"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert len(fake_openai.received) == 1
    rows = rows_when(tmp_path, lambda rows: len(rows) >= 1)
    assert (rows[0]["status"], rows[0]["partial"], rows[0]["error_kind"]) == (200, 0, None)


# -- item 16: an upstream's 429 -------------------------------------------------------


def test_the_only_deployments_429_is_passed_on_with_its_retry_after(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url)]})
    # a Retry-After over retry.max_retry_after (10 s): no wait here, passed on at once
    fake_openai.fail_next(Fault("status", status=429, retry_after=20))
    with pytest.raises(openai.RateLimitError) as info:
        _client(gw).chat.completions.create(model="gpt", messages=HI)
    assert info.value.status_code == 429  # before the fix: 502 without Retry-After
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "rate_limited"
    assert info.value.response.headers["retry-after"] == "20"
    assert len(fake_openai.received) == 1


def test_a_429_without_retry_after_after_retries_gets_a_sane_retry_after(
    fake_openai: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {
            "deployments": [openai_deployment("gpt", fake_openai.url)],
            "retry": {"base_delay": 0.01, "max_delay": 0.05},
        }
    )
    fake_openai.fail_next(*(Fault("status", status=429) for _ in range(3)))
    with pytest.raises(openai.RateLimitError) as info:
        _client(gw).chat.completions.create(model="gpt", messages=HI)
    assert info.value.response.headers["retry-after"] == "5"
    assert len(fake_openai.received) == 3  # retried twice first


@pytest.mark.parametrize(
    ("first", "second", "status"),
    [
        (Fault("status", status=503), Fault("status", status=429, retry_after=20), 429),
        (Fault("status", status=429, retry_after=20), Fault("status", status=503), 502),
    ],
)
def test_when_every_deployment_fails_the_last_one_tried_decides(
    fake_openai: FakeOpenAI,
    fake_backup: FakeOpenAI,
    start_gateway: GatewayFactory,
    first: Fault,
    second: Fault,
    status: int,
) -> None:
    gw = start_gateway(
        _tier(
            openai_deployment("a", fake_openai.url),
            openai_deployment("b", fake_backup.url),
            retry={"max_retries": 0},
        )
    )
    fake_openai.fail_next(first)
    fake_backup.fail_next(second)
    with pytest.raises(openai.APIStatusError) as info:
        _client(gw).chat.completions.create(model="tier:t", messages=HI)
    assert info.value.status_code == status
    expected = {429: "rate_limited", 502: "upstream_error"}[status]
    assert isinstance(info.value.body, dict) and info.value.body["code"] == expected
    assert ("retry-after" in info.value.response.headers) == (status == 429)
    assert (len(fake_openai.received), len(fake_backup.received)) == (1, 1)
