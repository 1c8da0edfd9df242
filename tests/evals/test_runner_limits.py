"""Per-provider rate limits, candidate validation, response-format downgrade."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from laneway.errors import ConfigError
from laneway.evals import RunOptions, candidates_from, load_suite, run_suite
from laneway.evals._runner import _RateLimiter, new_run
from laneway.testing import FakeOpenAI
from tests.evals.conftest import ENV, settings_for


async def test_rate_limiter_spaces_request_starts() -> None:
    limiter = _RateLimiter(50.0)
    started = time.perf_counter()
    for _ in range(6):
        await limiter.wait()
    assert time.perf_counter() - started >= 5 / 50 - 0.005


def test_candidates_are_validated() -> None:
    assert candidates_from(" a, b ,tier:x") == ("a", "b", "tier:x")
    with pytest.raises(ConfigError, match="twice"):
        candidates_from("a,a")
    with pytest.raises(ConfigError, match="at least one"):
        candidates_from(" , ")


async def test_unknown_candidate_and_rate_limited_run(
    tmp_path: Path, engine: Any, gateway_factory: Any
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\ncases:\n" + "".join(f"  - {{id: c{i}, prompt: p{i}}}\n" for i in range(6)),
        "utf-8",
    )
    suite = load_suite(path)
    with FakeOpenAI(api_key=ENV["FAKE_KEY"]) as fake:
        gateway = await gateway_factory(settings_for(tmp_path, {"one": fake}))  # type: ignore[dict-item]
        bad = RunOptions(models=("nope",))
        with pytest.raises(ConfigError, match="candidate 'nope'"):
            await run_suite(gateway, suite, new_run(engine, suite, bad, "bad"), bad)
        options = RunOptions(models=("one", "tier:none"), concurrency=6, rps_per_provider=40.0)
        with pytest.raises(ConfigError):
            await run_suite(gateway, suite, new_run(engine, suite, options, "bad2"), options)
        options = RunOptions(models=("one",), concurrency=6, rps_per_provider=40.0)
        started = time.perf_counter()
        summary = await run_suite(gateway, suite, new_run(engine, suite, options, "ok"), options)
        elapsed = time.perf_counter() - started
    assert summary.status == "complete"
    assert elapsed >= 5 / 40 - 0.005  # six starts at 40/s, even with six workers
