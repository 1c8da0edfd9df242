"""Issue #12's edge, budget and shutdown items through the real HTTP path: header and
body limits (431, 415, 408), control characters in ``user``, admin input ranges, refused
requests in the ledger, ``no_private_route`` when the only private deployment fails,
estimated usage when an upstream sends none, images in budget reservations, and
answers to in-flight clients when the grace period after SIGTERM ends."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from aiohttp import web
from openai import OpenAI

from laneway.governance import GovernanceStore
from laneway.ledger import open_database
from laneway.providers import IMAGE_TOKENS_MAX, ChatRequest, prompt_upper_bound
from laneway.server import create_app
from laneway.settings import Settings
from laneway.testing import FakeOpenAI, Fault, RunningGateway
from tests.e2e.conftest import ENV, GatewayFactory, openai_deployment, rows_when

MASTER = "master-for-edge-tests"
PRICE = {"input_per_mtok": "2.50", "output_per_mtok": "10.00"}
FAST_LEDGER = {"ledger": {"flush_interval": 0.05}}
HELLO = {"model": "primary", "messages": [{"role": "user", "content": "hello"}]}
EMAIL = [{"role": "user", "content": "Write to maria.lopez@example.org about the invoice"}]


@pytest.fixture
def master_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(ENV, "LANEWAY_MASTER_KEY", MASTER)
    return MASTER


@pytest.fixture
def gw(start_gateway: GatewayFactory, fake_openai: FakeOpenAI) -> RunningGateway:
    primary = openai_deployment("primary", fake_openai.url, price=PRICE)
    return start_gateway(
        {"deployments": [primary], "server": {"body_timeout_s": 0.5}, **FAST_LEDGER}
    )


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error


# -- 6. limits the edge needs -------------------------------------------------------


def test_huge_or_many_headers_are_431_with_an_error_body(
    gw: RunningGateway, fake_openai: FakeOpenAI
) -> None:
    url = gw.base_url + "/chat/completions"
    big = httpx.post(url, json=HELLO, headers={"authorization": "Bearer " + "k" * 70_000})
    assert big.status_code == 431
    assert _error(big)["code"] == "request_header_fields_too_large"
    many = {f"x-h{i}": "v" for i in range(2_000)}
    response = httpx.post(url, json=HELLO, headers=many)
    assert response.status_code == 431
    assert "2" in _error(response)["message"]  # says how many it got
    one_mb = httpx.get(gw.url + "/health/live", headers={"x-big": "a" * 1_000_000})
    assert one_mb.status_code == 431  # every route, not only chat
    assert fake_openai.received == []
    assert httpx.post(url, json=HELLO).status_code == 200  # ordinary requests still pass


def test_non_json_content_type_is_415(gw: RunningGateway, fake_openai: FakeOpenAI) -> None:
    response = httpx.post(
        gw.base_url + "/chat/completions",
        content=orjson.dumps(HELLO),
        headers={"content-type": "text/plain"},
    )
    assert response.status_code == 415
    error = _error(response)
    assert error["code"] == "unsupported_media_type"
    assert "application/json" in error["message"]
    for ok in ("application/json", "application/json; charset=utf-8"):
        answer = httpx.post(
            gw.base_url + "/chat/completions",
            content=orjson.dumps(HELLO),
            headers={"content-type": ok},
        )
        assert answer.status_code == 200, ok
    assert len(fake_openai.received) == 2


@pytest.mark.parametrize("user", ["alice\x00", "alice\r\nX-Injected: 1", "a\nb", "x" * 600])
def test_control_characters_or_huge_user_are_400(
    gw: RunningGateway, fake_openai: FakeOpenAI, user: str
) -> None:
    response = httpx.post(gw.base_url + "/chat/completions", json={**HELLO, "user": user})
    assert response.status_code == 400
    error = _error(response)
    assert error["param"] == "user"
    assert fake_openai.received == []


def test_a_body_that_never_completes_is_408(
    gw: RunningGateway, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
            b'content-type: application/json\r\ncontent-length: 500\r\n\r\n{"model":'
        )
        started = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        waited = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert orjson.loads(body)["error"]["code"] == "request_timeout"
    assert 0.4 < waited < 5
    assert fake_openai.received == []
    rows = rows_when(tmp_path, lambda rows: any(r["status"] == 408 for r in rows))
    assert rows[-1]["error_kind"] == "request_timeout"


# -- 17. refused requests leave a trace ----------------------------------------------


def test_refused_requests_are_in_the_ledger_with_key_and_client(
    start_gateway: GatewayFactory,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    master_key: str,
) -> None:
    primary = openai_deployment("primary", fake_openai.url, price=PRICE)
    gw = start_gateway(
        {"deployments": [primary], "server": {"max_body_bytes": 2048}, **FAST_LEDGER}
    )
    url = gw.base_url + "/chat/completions"
    store = GovernanceStore(open_database(f"sqlite:///{tmp_path / 'ledger.db'}"))
    secret, record = store.create_key("team-a")
    auth = {"authorization": f"Bearer {secret}"}
    assert httpx.post(url, json=HELLO, headers={"authorization": "Bearer wrong"}).status_code == 401
    bad = httpx.post(
        url, content=b"{not json", headers={**auth, "content-type": "application/json"}
    )
    assert bad.status_code == 400
    too_big = {**HELLO, "messages": [{"role": "user", "content": "x" * 5000}]}
    assert httpx.post(url, json=too_big, headers=auth).status_code == 413
    rows = rows_when(tmp_path, lambda rows: len(rows) >= 3)
    by_status = {r["status"]: r for r in rows}
    assert set(by_status) == {400, 401, 413}
    for row in rows:
        assert row["client"] == "127.0.0.1"
        assert row["prompt"] is None  # never the body
        assert row["cost_nusd"] == 0  # nothing went upstream: known, not unknown
        assert orjson.loads(row["audit"])["refused"] == row["error_kind"]
    assert by_status[401]["key_id"] is None
    assert by_status[400]["key_id"] == record.id
    assert by_status[413]["key_id"] == record.id
    assert "not json" not in str(rows)


def test_admin_key_options_out_of_range_are_400_in_words(
    start_gateway: GatewayFactory, fake_openai: FakeOpenAI, master_key: str
) -> None:
    primary = openai_deployment("primary", fake_openai.url)
    gw = start_gateway({"deployments": [primary]})
    headers = {"authorization": f"Bearer {MASTER}"}
    for body, param in (
        ({"name": "a", "rpm": 10**30}, "rpm"),
        ({"name": "a", "tpm": -1}, "tpm"),
        ({"name": "a", "rpm": "60"}, "rpm"),
        ({"name": "a", "budget_usd": "NaN"}, "budget_usd"),
        ({"name": "a", "budget_usd": 1e30}, "budget_usd"),
        ({"name": "a", "models": "gpt-4o"}, "models"),
        ({"name": "a", "log_prompts": "yes"}, "log_prompts"),
    ):
        response = httpx.post(gw.url + "/admin/keys", json=body, headers=headers)
        assert response.status_code == 400, body
        error = _error(response)
        assert error["param"] == param
        for python_text in ("Traceback", "invalid literal", "Error(", "int()", "decimal."):
            assert python_text not in error["message"]
    ok = httpx.post(gw.url + "/admin/keys", json={"name": "a", "rpm": 60}, headers=headers)
    assert ok.status_code == 200


# -- 5. the only private deployment fails: no_private_route ----------------------------


def _private_only(url: str, **timeouts: Any) -> dict[str, Any]:
    private = {
        "name": "private",
        "model": "llama-3.1-8b-instruct",
        "provider": "openai_compatible",
        "vendor": "vllm",
        "api_base": url + "/v1",
        "hosting": "self_hosted",
    }
    if timeouts:
        private["timeouts"] = timeouts
    return private


@pytest.mark.parametrize("failure", ["down", "silent", "refusing"])
def test_sensitive_request_gets_no_private_route_when_the_private_model_fails(
    start_gateway: GatewayFactory, fake_openai: FakeOpenAI, failure: str
) -> None:
    with FakeOpenAI(model="llama-3.1-8b-instruct") as private:
        url = private.url
        if failure == "down":
            private.fail_next(*(Fault("status", status=503) for _ in range(20)))
        elif failure == "silent":
            private.fail_next(*(Fault("stall", seconds=5) for _ in range(20)))
        deployments = [
            openai_deployment("external", fake_openai.url),
            _private_only(url, read=0.5, idle=0.5) if failure == "silent" else _private_only(url),
        ]
        config = {
            "deployments": deployments,
            "tiers": {"standard": ["external", "private"]},
            "retry": {"max_retries": 1, "base_delay": 0.001, "max_delay": 0.002},
        }
        if failure == "refusing":
            private.__exit__(None, None, None)  # nothing listens on its port any more
        gw = start_gateway(config)
        client = OpenAI(base_url=gw.base_url, api_key="x", max_retries=0, timeout=30)
        with client, pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="tier:standard", messages=EMAIL)  # type: ignore[arg-type]
        assert info.value.status_code == 503
        assert isinstance(info.value.body, dict)
        assert info.value.body["code"] == "no_private_route"
        assert fake_openai.received == []  # never sent to the closed API
        # a stream fails the same way before its first byte
        client = OpenAI(base_url=gw.base_url, api_key="x", max_retries=0, timeout=30)
        with client, pytest.raises(openai.APIStatusError) as info:
            list(client.chat.completions.create(model="tier:standard", messages=EMAIL, stream=True))  # type: ignore[arg-type]
        assert info.value.status_code == 503
        assert fake_openai.received == []


# -- 13. an upstream 200 without usage -----------------------------------------------


class _NoUsageUpstream:
    """An OpenAI-compatible upstream that never sends ``usage`` (JSON or SSE), or with
    ``image_tokens`` set, one that bills each image part as a real provider does."""

    def __init__(self, image_tokens: int | None = None) -> None:
        self.image_tokens = image_tokens
        self.calls = 0
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.calls += 1
        text = "The answer is forty-two, as everybody knows by now."
        base = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o"}
        if not body.get("stream"):
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
            reply: dict[str, Any] = {**base, "choices": [choice]}
            if self.image_tokens is not None:
                await asyncio.sleep(0.3)  # long enough for concurrent requests to overlap
                images = sum(
                    1
                    for m in body["messages"]
                    if isinstance(m["content"], list)
                    for part in m["content"]
                    if part["type"] == "image_url"
                )
                prompt = 20 + images * self.image_tokens
                reply["usage"] = {
                    "prompt_tokens": prompt,
                    "completion_tokens": 12,
                    "total_tokens": prompt + 12,
                }
            return web.json_response(reply)
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        for word, finish in ((text, None), ("", "stop")):
            chunk = {"index": 0, "delta": {"content": word}, "finish_reason": finish}
            event = {**base, "object": "chat.completion.chunk", "choices": [chunk]}
            await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        return response

    def __enter__(self) -> _NoUsageUpstream:
        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._chat)
            self._runner = web.AppRunner(app)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def no_usage() -> Iterator[_NoUsageUpstream]:
    with _NoUsageUpstream() as server:
        yield server


def test_missing_usage_is_estimated_billed_and_marked(
    start_gateway: GatewayFactory, no_usage: _NoUsageUpstream, tmp_path: Path
) -> None:
    primary = openai_deployment("primary", no_usage.url, price=PRICE)
    gw = start_gateway({"deployments": [primary], **FAST_LEDGER})
    with OpenAI(base_url=gw.base_url, api_key="x", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="primary", messages=[{"role": "user", "content": "what is the answer?"}]
        )
        assert Decimal(raw.headers["x-laneway-cost-usd"]) > 0
        stream = client.chat.completions.create(
            model="primary",
            messages=[{"role": "user", "content": "what is the answer?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    rows = rows_when(tmp_path, lambda rows: len(rows) >= 2)
    for row in rows:
        assert row["status"] == 200
        assert row["estimated"] == 1
        assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
        assert row["cost_nusd"] is not None and row["cost_nusd"] > 0  # never $0


def test_a_budget_is_charged_for_answers_without_usage(
    start_gateway: GatewayFactory, no_usage: _NoUsageUpstream, tmp_path: Path, master_key: str
) -> None:
    dear = {"input_per_mtok": "200", "output_per_mtok": "800"}
    primary = openai_deployment("primary", no_usage.url, price=dear)
    gw = start_gateway({"deployments": [primary]})
    store = GovernanceStore(open_database(f"sqlite:///{tmp_path / 'ledger.db'}"))
    secret, _ = store.create_key("small", budget_usd=Decimal("0.20"), period="day")
    served = 0
    refusal: object = None
    with OpenAI(base_url=gw.base_url, api_key=secret, max_retries=0) as client:
        for _ in range(60):
            try:
                client.chat.completions.create(
                    model="primary",
                    messages=[{"role": "user", "content": "what is the answer?"}],
                    max_tokens=50,
                )
            except openai.RateLimitError as exc:
                refusal = exc.body
                break
            served += 1
    assert isinstance(refusal, dict) and refusal["code"] == "budget_exceeded"
    # each answer costs ~$0.012 estimated: the budget stops it after about 16, not 60
    assert 5 <= served < 30, served
    assert no_usage.calls == served


# -- 14. images count in budget reservations -----------------------------------------


def test_reservations_count_every_image_part() -> None:
    text_only = ChatRequest(model="m", messages=({"role": "user", "content": "describe"},))
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    low = {"type": "image_url", "image_url": {"url": "https://example.com/b.png", "detail": "low"}}
    with_images = ChatRequest(
        model="m",
        messages=(
            {"role": "user", "content": [{"type": "text", "text": "describe"}, image, image, low]},
        ),
    )
    base = prompt_upper_bound(text_only)
    assert prompt_upper_bound(with_images) >= base + 2 * IMAGE_TOKENS_MAX + 85
    data_url = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 300_000}}
    inline = ChatRequest(
        model="m",
        messages=({"role": "user", "content": [{"type": "text", "text": "x"}, data_url]},),
    )
    # the base64 characters are the image, not 100k tokens of text
    assert prompt_upper_bound(inline) < IMAGE_TOKENS_MAX + 100


def test_an_image_budget_is_not_overspent_by_concurrent_requests(
    start_gateway: GatewayFactory, tmp_path: Path, master_key: str
) -> None:
    budget = Decimal("0.10")
    with _NoUsageUpstream(image_tokens=1_445) as upstream:  # gpt-4o, high detail
        primary = openai_deployment("primary", upstream.url, price=PRICE)
        gw = start_gateway({"deployments": [primary]})
        store = GovernanceStore(open_database(f"sqlite:///{tmp_path / 'ledger.db'}"))
        secret, record = store.create_key("img", budget_usd=budget, period="day")
        parts = [{"type": "text", "text": "describe these"}] + [
            {"type": "image_url", "image_url": {"url": f"https://example.com/{i}.png"}}
            for i in range(8)
        ]
        body = {
            "model": "primary",
            "messages": [{"role": "user", "content": parts}],
            "max_tokens": 64,
        }
        statuses: list[int] = []

        def call() -> None:
            response = httpx.post(
                gw.base_url + "/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {secret}"},
                timeout=30,
            )
            statuses.append(response.status_code)

        threads = [threading.Thread(target=call) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        served = statuses.count(200)
        assert served >= 1 and statuses.count(429) >= 1, statuses
        # each answer really costs 8 × 1,445 + 20 prompt tokens ≈ $0.029: before, the
        # reservation ignored the images and all 12 were served ($0.35 on a $0.10 budget)
        per_request = (Decimal(8 * 1_445 + 20) * Decimal("2.50") + 12 * Decimal(10)) / 10**6
        deadline = time.monotonic() + 10
        while True:
            spent = store.spend(record).spent_usd
            if spent >= served * per_request or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert spent == served * per_request
        one_request_max = Decimal("0.09")
        assert spent <= budget + one_request_max


# -- 15. SIGTERM past the grace period -----------------------------------------------


def _start_with_grace(settings: dict[str, Any], tmp_path: Path, grace: float) -> RunningGateway:
    config = Settings.model_validate(
        {"database": {"url": f"sqlite:///{tmp_path / 'ledger.db'}"}, **settings}
    )
    gateway = RunningGateway(create_app(config, env=ENV))
    gateway._server.config.timeout_graceful_shutdown = grace  # type: ignore[assignment]
    return gateway.start()


def test_in_flight_requests_get_503_shutting_down_after_the_grace_period(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.latency = 8
    primary = openai_deployment("primary", fake_openai.url, price=PRICE)
    gw = _start_with_grace({"deployments": [primary]}, tmp_path, grace=0.5)
    got: dict[str, Any] = {}

    def call() -> None:
        response = httpx.post(gw.base_url + "/chat/completions", json=HELLO, timeout=20)
        got["status"] = response.status_code
        got["body"] = response.content

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 5
    while not fake_openai.received and time.monotonic() < deadline:
        time.sleep(0.02)
    gw.stop()
    thread.join(20)
    assert got["status"] == 503, got
    assert orjson.loads(got["body"])["error"]["code"] == "shutting_down"


def test_in_flight_streams_end_with_an_error_event_after_the_grace_period(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.chunk_delay = 0.5
    primary = openai_deployment("primary", fake_openai.url, price=PRICE)
    gw = _start_with_grace({"deployments": [primary]}, tmp_path, grace=0.5)
    got: list[bytes] = []
    words = " ".join(["w"] * 40)
    body = {**HELLO, "stream": True, "messages": [{"role": "user", "content": words}]}

    def call() -> None:
        with httpx.stream("POST", gw.base_url + "/chat/completions", json=body, timeout=20) as r:
            got.extend(r.iter_bytes())

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    gw.stop()
    thread.join(20)
    text = b"".join(got)
    assert b'"shutting_down"' in text, text[-300:]
    assert b"[DONE]" not in text
