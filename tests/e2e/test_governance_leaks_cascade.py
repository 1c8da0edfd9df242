"""A cascade's escalation is governed like the first call: a sensitive request whose cheap
answer fails a check goes to the strong tier's self-hosted deployment, never to the
closed one listed first in that tier."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import GatewayFactory
from tests.e2e.test_router_v2_gateway import ScriptedUpstream, _deployment, task_router

__all__ = ["task_router"]  # the trained router fixture, shared with its module

EMAIL = "dana.whitfield@example.org"


def _cut_off(body: dict[str, Any]) -> tuple[str, str, float | None]:
    return "cut off in the midd", "length", -0.1  # the finish_length check fires


def _fine(body: dict[str, Any]) -> tuple[str, str, float | None]:
    return "strong answer", "stop", None


@pytest.fixture
def lanes() -> Iterator[tuple[ScriptedUpstream, ScriptedUpstream, ScriptedUpstream]]:
    with (
        ScriptedUpstream(_cut_off) as cheap,
        ScriptedUpstream(_fine) as closed,
        ScriptedUpstream(_fine) as private,
    ):
        yield cheap, closed, private


@pytest.mark.parametrize("sensitive", [True, False])
def test_a_sensitive_escalation_stays_private(
    start_gateway: GatewayFactory,
    lanes: tuple[ScriptedUpstream, ScriptedUpstream, ScriptedUpstream],
    task_router: Any,
    sensitive: bool,
) -> None:
    cheap, closed, private = lanes
    deployments = [
        {**_deployment("cheap", cheap.base), "hosting": "self_hosted"},
        {**_deployment("strong", closed.base), "hosting": "serverless"},
        {**_deployment("strong-private", private.base), "hosting": "self_hosted"},
    ]
    cascade = {"from": "cheap", "to": "strong", "checks": ["finish_length"]}
    gw = start_gateway(
        {
            "deployments": deployments,
            "tiers": {"cheap": ["cheap"], "strong": ["strong", "strong-private"]},
            "router": {"path": str(task_router), "cascades": {"default": cascade}},
        }
    )
    text = f"write a long letter to {EMAIL}" if sensitive else "write a long letter"
    body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
    response = httpx.post(gw.base_url + "/chat/completions", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert "escalated:finish_length" in response.headers["x-laneway-route-reason"]
    assert cheap.bodies  # the cheap tier answered first
    if sensitive:
        assert response.headers["x-laneway-deployment"] == "strong-private"
        assert not closed.bodies and len(private.bodies) == 1
    else:  # the same request without the value escalates to the closed one first
        assert response.headers["x-laneway-deployment"] == "strong"
