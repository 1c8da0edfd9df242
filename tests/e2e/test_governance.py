"""Governance through the real gateway: sensitive data stays on self-hosted deployments
(fail closed, also under failures), redact / block actions, license and origin policy,
keys, budgets, kill switch, output checks, pinning and the canary secret."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from laneway.testing import FakeOpenAI, FakeReply, FakeTurn, Fault
from tests.e2e.conftest import GatewayFactory, ledger_rows, openai_deployment
from tests.governance.corpus import generate

EMAIL_PROMPT = [{"role": "user", "content": "Write to maria.lopez@example.org about the invoice"}]


@pytest.fixture
def external() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-upstream-secret", model="gpt-4o") as server:
        yield server


@pytest.fixture
def private() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(model="llama-3.1-8b-instruct") as server:
        yield server


def two_lane(external: FakeOpenAI, private: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    """An external closed deployment first in the tier, a self-hosted one second."""
    return {
        "deployments": [
            openai_deployment("external", external.url),
            {
                "name": "private",
                "model": "llama-3.1-8b-instruct",
                "provider": "openai_compatible",
                "vendor": "vllm",
                "api_base": private.url + "/v1",
                "hosting": "self_hosted",
            },
        ],
        "tiers": {"standard": ["external", "private"]},
        "retry": {"max_retries": 1, "base_delay": 0.001, "max_delay": 0.002},
        **extra,
    }


def _client(gw: Any, key: str = "unused") -> OpenAI:
    return OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)


def test_sensitive_requests_stay_private_clean_ones_go_external(
    external: FakeOpenAI, private: FakeOpenAI, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = start_gateway(two_lane(external, private))
    with _client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="tier:standard", messages=EMAIL_PROMPT
        )  # type: ignore[arg-type]
        assert raw.headers["x-laneway-deployment"] == "private"
        clean = client.chat.completions.with_raw_response.create(
            model="tier:standard", messages=[{"role": "user", "content": "hello"}]
        )
        assert clean.headers["x-laneway-deployment"] == "external"
    assert len(external.received) == 1
    assert "maria.lopez" not in json.dumps(external.received[0].body)
    gw.stop()
    summary = [r for r in ledger_rows(tmp_path) if r["attempt"] == 0]
    audit = (
        json.loads(summary[0]["audit"])
        if isinstance(summary[0]["audit"], str)
        else (summary[0]["audit"])
    )
    assert audit["sensitive"] is True
    assert audit["detectors"] == {"email": 1}
    assert {"deployment": "external", "rule": "sensitive"}.items() <= audit["removed"][0].items()
    assert "maria.lopez" not in json.dumps(summary)


def test_a_large_request_says_which_detector_counts_are_lower_bounds(
    external: FakeOpenAI, private: FakeOpenAI, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    from laneway.governance._scan import HIT_CAP

    gw = start_gateway(two_lane(external, private))
    text = "write to x1@example.com and y2@example.org " * (HIT_CAP + 100)
    with _client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="tier:standard", messages=[{"role": "user", "content": text}]
        )
        assert raw.headers["x-laneway-deployment"] == "private"
    gw.stop()
    audit = json.loads(str(ledger_rows(tmp_path)[0]["audit"]))
    assert audit["sensitive"] is True
    assert audit["detectors_capped"] == ["email"]
    assert audit["detectors"]["email"] == HIT_CAP


def test_fail_closed_when_the_private_deployment_fails_or_is_killed(
    external: FakeOpenAI,
    private: FakeOpenAI,
    start_gateway: GatewayFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gw = start_gateway(two_lane(external, private))
    private.fail_next(*(Fault("status", status=503) for _ in range(4)))
    with _client(gw) as client:
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="tier:standard", messages=EMAIL_PROMPT)  # type: ignore[arg-type]
        # the README's answer when no private deployment answered (was 502 before)
        assert info.value.status_code == 503
        assert isinstance(info.value.body, dict)
        assert info.value.body["code"] == "no_private_route"
        assert external.received == []  # no retry or fallback ever went external
    gw.stop()


def test_no_private_route_gives_503(external: FakeOpenAI, start_gateway: GatewayFactory) -> None:
    gw = start_gateway({"deployments": [openai_deployment("external", external.url)]})
    with _client(gw) as client, pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="external", messages=EMAIL_PROMPT)  # type: ignore[arg-type]
    assert info.value.status_code == 503
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "no_private_route"
    assert external.received == []


def test_corpus_never_reaches_the_external_deployment(
    external: FakeOpenAI, private: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    positives, cleans = generate(per_kind=25, clean=200)
    assert len(positives) >= 200
    gw = start_gateway(two_lane(external, private))
    # the self-hosted deployment fails now and then: retries stay on it, never external
    private.fail_next(
        *(
            Fault("status", status=500) if i % 7 == 0 else Fault("stall", seconds=0)
            for i in range(len(positives))
        )
    )
    leaked: Counter[str] = Counter()
    detected: Counter[str] = Counter()
    false_positive = 0
    with _client(gw) as client:
        for sample in positives:
            before = len(external.received)
            # 200 from the private model, 502 when its scripted failures outlast the
            # retries, 400 when it cannot serve the request (e.g. images): never external
            assert _send(client, sample.request) in (200, 400, 502)
            if len(external.received) != before:
                leaked[sample.kind or "?"] += 1
            else:
                detected[sample.kind or "?"] += 1
        private.reset()
        for sample in cleans:
            before = len(external.received)
            assert _send(client, sample.request) in (200, 400)
            if len(external.received) == before:
                false_positive += 1
    total = Counter(s.kind for s in positives)
    print("\nkind          recall")
    for kind in sorted(total):
        print(f"{kind:14s}{detected[kind] / total[kind]:.3f}")
    print(f"clean prompts routed private (false positives): {false_positive}/{len(cleans)}")
    assert sum(leaked.values()) == 0, f"sensitive prompts reached the external model: {leaked}"
    assert false_positive / len(cleans) <= 0.05


def _send(client: OpenAI, request: Any) -> int:
    try:
        client.chat.completions.create(
            model="tier:standard",
            messages=list(request.messages),
            tools=list(request.tools) or openai.NOT_GIVEN,
        )
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


def test_redact_sends_placeholders_and_restores_the_answer(
    external: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {
            "deployments": [openai_deployment("external", external.url)],
            "policies": {"sensitive": {"action": "redact"}},
        }
    )
    with _client(gw) as client:
        answer = client.chat.completions.create(model="external", messages=EMAIL_PROMPT)  # type: ignore[arg-type]
    sent = json.dumps(external.received[0].body)
    assert "maria.lopez@example.org" not in sent
    assert "[EMAIL_1]" in sent
    # the fake echoes the placeholder; the client gets its own value back
    assert answer.choices[0].message.content == (
        "Echo: Write to maria.lopez@example.org about the invoice"
    )


def test_block_action(external: FakeOpenAI, start_gateway: GatewayFactory) -> None:
    gw = start_gateway(
        {
            "deployments": [openai_deployment("external", external.url)],
            "policies": {"sensitive": {"action": "block"}},
        }
    )
    with _client(gw) as client, pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="external", messages=EMAIL_PROMPT)  # type: ignore[arg-type]
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "sensitive_data_blocked"
    assert "maria" not in info.value.body["message"]
    assert external.received == []


def test_license_and_origin_policy(
    external: FakeOpenAI, private: FakeOpenAI, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {
            "deployments": [
                {
                    "name": "deepseek",
                    "model": "deepseek-v3.2",
                    "provider": "openai_compatible",
                    "api_base": external.url + "/v1",
                },
                {
                    "name": "llama",
                    "model": "llama-3.1-8b-instruct",
                    "provider": "openai_compatible",
                    "api_base": private.url + "/v1",
                },
            ],
            "tiers": {"standard": ["deepseek", "llama"]},
            "policies": {"denied_origins": ["CN"]},
        }
    )
    with _client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="tier:standard", messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.headers["x-laneway-deployment"] == "llama"
        with pytest.raises(openai.PermissionDeniedError) as info:
            client.chat.completions.create(
                model="deepseek", messages=[{"role": "user", "content": "hi"}]
            )
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "policy_denied"
    assert "CN" in info.value.body["message"]
    assert external.received == []


def test_keys_budget_and_kill_switch(
    external: FakeOpenAI,
    private: FakeOpenAI,
    start_gateway: GatewayFactory,
) -> None:
    from tests.e2e.conftest import ENV

    ENV["LANEWAY_MASTER_KEY"] = "master-secret-123"
    try:
        config = two_lane(external, private)
        config["deployments"][0]["price"] = {"input_per_mtok": "1000", "output_per_mtok": "1000"}
        gw = start_gateway(config)
        admin = {"Authorization": "Bearer master-secret-123", "content-type": "application/json"}
        with _client(gw, "wrong") as bad, pytest.raises(openai.AuthenticationError) as info:
            bad.models.list()
        assert isinstance(info.value.body, dict)
        assert info.value.body["code"] == "invalid_api_key"
        created = _admin(
            gw,
            "POST",
            "/admin/keys",
            admin,
            {"name": "team-a", "budget_usd": "0.05", "period": "day", "models": ["external"]},
        )
        key = created["key"]
        assert created["record"]["name"] == "team-a"
        with _client(gw, key) as client:
            statuses = []
            for _ in range(12):
                try:
                    client.chat.completions.create(
                        model="external",
                        max_tokens=5,
                        messages=[{"role": "user", "content": "hello there"}],
                    )
                    statuses.append("ok")
                except openai.RateLimitError as exc:
                    statuses.append(exc.body["code"] if isinstance(exc.body, dict) else "?")
            assert "ok" in statuses
            assert statuses[-1] == "budget_exceeded"
            assert set(statuses) == {"ok", "budget_exceeded"}
            with pytest.raises(openai.PermissionDeniedError):  # outside the key's scope
                client.chat.completions.create(
                    model="private", messages=[{"role": "user", "content": "x"}]
                )
        keys = _admin(gw, "GET", "/admin/keys", admin)["keys"]
        assert all("key" not in k and "hash" not in k for k in keys)
        # a kill switch for a name the config lacks is refused (a typo must not "succeed")
        with pytest.raises(urllib.error.HTTPError) as typo:
            _admin(gw, "POST", "/admin/kill", admin, {"kind": "deployment", "name": "privte"})
        assert typo.value.code == 400
        assert "no deployment 'privte'" in json.loads(typo.value.read())["error"]["message"]
        forced = {"kind": "model", "name": "not-yet-added", "force": True}
        assert _admin(gw, "POST", "/admin/kill", admin, forced)["killed"]
        _admin(gw, "POST", "/admin/unkill", admin, {"kind": "model", "name": "not-yet-added"})
        # kill switch: next request in ≤ 1 s, shown in /health/ready, then unkill
        _admin(
            gw,
            "POST",
            "/admin/kill",
            admin,
            {"kind": "deployment", "name": "private", "reason": "bad weights"},
        )
        time.sleep(1.0)
        with urllib.request.urlopen(f"{gw.url}/health/ready") as response:  # noqa: S310
            health = json.loads(response.read())
        assert "bad weights" in health["deployments"]["private"]["disabled"]
        with (
            _client(gw, "master-secret-123") as master,
            pytest.raises(openai.APIStatusError) as killed,
        ):
            master.chat.completions.create(
                model="private", messages=[{"role": "user", "content": "x"}]
            )
        assert killed.value.status_code == 503
        assert isinstance(killed.value.body, dict)
        assert killed.value.body["code"] == "deployment_disabled"
        _admin(gw, "POST", "/admin/unkill", admin, {"kind": "deployment", "name": "private"})
        time.sleep(1.0)
        with _client(gw, "master-secret-123") as master:
            ok = master.chat.completions.create(
                model="private", messages=[{"role": "user", "content": "x"}]
            )
        assert ok.choices[0].message.content == "Echo: x"
        _admin(gw, "POST", f"/admin/keys/{created['record']['id']}/revoke", admin, {})
        time.sleep(1.0)
        with _client(gw, key) as revoked, pytest.raises(openai.AuthenticationError):
            revoked.chat.completions.create(
                model="external", messages=[{"role": "user", "content": "x"}]
            )
    finally:
        ENV.pop("LANEWAY_MASTER_KEY")


def _admin(
    gw: Any, method: str, path: str, headers: dict[str, str], body: dict[str, Any] | None = None
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 (loopback)
        gw.url + path, data=data, method=method, headers=headers
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310 (loopback)
        return json.loads(response.read())


def test_json_schema_output_is_validated_retried_and_failed_over(
    start_gateway: GatewayFactory,
) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}

    def wrong(turn: FakeTurn) -> FakeReply:
        return FakeReply(text='{"n": "not a number"}')

    def right(turn: FakeTurn) -> FakeReply:
        return FakeReply(text='{"n": 3}')

    with FakeOpenAI(responder=wrong) as bad, FakeOpenAI(responder=right) as good:
        gw = start_gateway(
            {
                "deployments": [
                    {
                        "name": "bad",
                        "model": "x",
                        "provider": "openai_compatible",
                        "api_base": bad.url + "/v1",
                    },
                    {
                        "name": "good",
                        "model": "y",
                        "provider": "openai_compatible",
                        "api_base": good.url + "/v1",
                    },
                ],
                "tiers": {"standard": ["bad", "good"]},
            }
        )
        fmt: Any = {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}
        with _client(gw) as client:
            raw = client.chat.completions.with_raw_response.create(
                model="tier:standard",
                response_format=fmt,
                messages=[{"role": "user", "content": "count"}],
            )
            assert json.loads(raw.parse().choices[0].message.content or "") == {"n": 3}
            assert raw.headers["x-laneway-deployment"] == "good"
            assert len(bad.received) == 2  # the first answer and one retry
            with pytest.raises(openai.APIStatusError) as info:
                client.chat.completions.create(
                    model="bad",
                    response_format=fmt,
                    messages=[{"role": "user", "content": "count"}],
                )
        assert info.value.status_code == 502
        assert isinstance(info.value.body, dict)
        assert info.value.body["code"] == "invalid_output"


def test_pinned_weights_mismatch_disables_the_deployment(
    external: FakeOpenAI, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"not the weights you pinned")
    gw = start_gateway(
        {
            "deployments": [
                openai_deployment("pinned", external.url, model_file=str(weights), sha256="0" * 64)
            ]
        }
    )
    with _client(gw) as client, pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="pinned", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 503
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "deployment_disabled"
    assert "sha256" in info.value.body["message"]
    assert external.received == []


def test_canary_secret_never_stored_logged_or_echoed(
    external: FakeOpenAI,
    private: FakeOpenAI,
    start_gateway: GatewayFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    canary = "sk-ant-api03-" + "CANARYcanary0123456789" * 4 + "-AA"
    gw = start_gateway({**two_lane(external, private), "ledger": {"log_prompts": True}})
    # an upstream that echoes the prompt in its error message
    private.fail_next(Fault("status", status=400, message=f"cannot process 'my key is {canary}'"))
    with _client(gw) as client:
        with pytest.raises(openai.APIStatusError) as failed:
            client.chat.completions.create(
                model="tier:standard",
                messages=[{"role": "user", "content": f"my key is {canary}, keep it"}],
            )
        answer = client.chat.completions.create(
            model="tier:standard",
            messages=[{"role": "user", "content": f"my key is {canary}, keep it"}],
        )
    assert canary not in json.dumps(failed.value.body)
    assert answer.choices[0].message.content is not None
    assert external.received == []
    gw.stop()
    out, err = capfd.readouterr()
    assert canary not in out + err + caplog.text
    for path in tmp_path.glob("ledger.db*"):
        assert canary.encode() not in path.read_bytes(), path
    rows = ledger_rows(tmp_path)
    logged = [r["prompt"] for r in rows if r["prompt"]]
    assert logged
    assert all("[API_KEY_1]" in p for p in logged)
