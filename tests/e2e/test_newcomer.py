"""What a newcomer meets first: the README's tour run for real (``scripts/newcomer_tour.py``)
and the answers that must name every valid choice."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from laneway.testing import FakeOpenAI
from tests.e2e.conftest import GatewayFactory, openai_deployment


def _unknown_model_message(base_url: str) -> str:
    client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=30)
    with client, pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gtp", messages=[{"role": "user", "content": "hi"}])
    assert info.value.code == "model_not_found"
    return info.value.message


def test_model_not_found_names_the_auto_names(
    start_gateway: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    gw = start_gateway(
        {"deployments": [openai_deployment("gpt", fake_openai.url)], "tiers": {"simple": ["gpt"]}}
    )
    message = _unknown_model_message(gw.base_url)
    assert "valid names: gpt, tier:simple, auto, auto:<profile>, gpt-4o" in message


def test_without_tiers_auto_is_not_offered(
    start_gateway: GatewayFactory, fake_openai: FakeOpenAI
) -> None:
    gw = start_gateway({"deployments": [openai_deployment("gpt", fake_openai.url)]})
    assert "auto" not in _unknown_model_message(gw.base_url)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_newcomer_tour_passes() -> None:
    """``scripts/newcomer_tour.py`` on this checkout: every README step, its output and its
    time budget (LANEWAY_TOUR_SLACK multiplies the budgets on a loaded machine)."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "newcomer_tour.py"
    slack = os.environ.get("LANEWAY_TOUR_SLACK", "2")
    result = subprocess.run(
        [sys.executable, str(script), "--slack", slack],
        capture_output=True,
        text=True,
        timeout=850,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    passed = re.search(r"tour passed: (\d+) commands", result.stdout)
    assert passed is not None, result.stdout[-3000:]
    assert int(passed.group(1)) >= 20  # the README's tour: install to team keys
