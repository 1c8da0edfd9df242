"""The admin API with hostile or mistyped bodies: a 400 that says what is wrong, never a
500, and never a key or kill switch created without what the caller asked for (a typo
must not look like success)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from laneway.testing import FakeOpenAI, RunningGateway
from tests.e2e.conftest import ENV, GatewayFactory, openai_deployment

MASTER = "master-for-hostile-admin"
ADMIN = {"authorization": f"Bearer {MASTER}"}


@pytest.fixture
def gw(
    monkeypatch: pytest.MonkeyPatch, start_gateway: GatewayFactory, fake_openai: FakeOpenAI
) -> RunningGateway:
    monkeypatch.setitem(ENV, "LANEWAY_MASTER_KEY", MASTER)
    return start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url)]})


def _post(gw: RunningGateway, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(gw.url + path, json=body, headers=ADMIN, timeout=10)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"kind": "deployment", "name": "gpt", "reason": {"why": "x"}}, "reason"),
        ({"kind": "deployment", "name": "gpt", "reason": 5}, "reason"),
        ({"kind": "deployment", "name": "gpt", "reason": "x" * 5000}, "reason"),
        ({"kind": "deployment", "name": "gpt", "reson": "typo"}, "reson"),
        ({"kind": "deployment", "name": "gpt", "force": "yes"}, "force"),
    ],
    ids=["reason-object", "reason-number", "reason-huge", "unknown-field", "force-string"],
)
def test_a_bad_kill_body_is_a_400_and_kills_nothing(
    gw: RunningGateway, body: dict[str, Any], param: str
) -> None:
    response = _post(gw, "/admin/kill", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["param"] == param
    kills = httpx.get(gw.url + "/admin/kills", headers=ADMIN, timeout=10).json()["kills"]
    assert kills == []
    assert (
        _post(gw, "/admin/unkill", {"kind": "deployment", "name": "gpt", "x": 1}).status_code == 400
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "team", "budget": 5}, "budget"),  # budget_usd mistyped: no budget at all
        ({"name": "team", "rpm_limit": 10}, "rpm_limit"),
        ({"name": "team", "period": "day"}, "period"),  # a period without a budget
    ],
    ids=["budget-typo", "rpm-typo", "period-without-budget"],
)
def test_a_mistyped_key_option_is_refused_not_ignored(
    gw: RunningGateway, body: dict[str, Any], param: str
) -> None:
    response = _post(gw, "/admin/keys", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    keys = httpx.get(gw.url + "/admin/keys", headers=ADMIN, timeout=10).json()["keys"]
    assert keys == []  # no unlimited key was created
