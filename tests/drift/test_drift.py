"""Drift: each signal's test on planted samples; a model swapped behind a stable name is
flagged by the first canary run after the swap (fake upstream whose model id and answers
change), a stable model is not; ledger windows; gauges for Prometheus; CLI exit codes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from typer.testing import CliRunner, Result

from laneway.cli import _drift as drift_cli
from laneway.evals._drift import DriftSample, detect_drift, is_refusal
from laneway.evals._drift_store import DriftCollector, drift_gauges
from laneway.ledger import LEDGER, open_database
from laneway.testing import FakeOpenAI, FakeReply, FakeTurn, running
from tests.evals.conftest import ENV, case_index, deployment

N = 30


def _sample(
    rng: np.random.Generator,
    *,
    latency: float = 100.0,
    tokens: float = 20.0,
    errors: int = 0,
    refusals: int = 0,
    fmt_ok: int = 50,
    models: tuple[str, ...] = ("m-1",),
    prints: tuple[str, ...] = (),
) -> DriftSample:
    return DriftSample(
        latency_ms=list(rng.normal(latency, latency * 0.1, 50)),
        output_tokens=list(rng.normal(tokens, 2.0, 50)),
        calls=50,
        errors=errors,
        answers=50 - errors,
        refusals=refusals,
        format_checked=50,
        format_ok=fmt_ok,
        served_models=frozenset(models),
        fingerprints=frozenset(prints),
    )


def _alarms(**recent: Any) -> set[str]:
    base = _sample(np.random.default_rng(1))
    report = detect_drift("t", "a", "b", base, _sample(np.random.default_rng(2), **recent))
    return {s.signal for s in report.alarms}


def test_each_signal_alarms_on_its_own_change_only() -> None:
    assert _alarms() == set()
    assert _alarms(models=("m-2",)) == {"served_model"}
    assert _alarms(prints=("fp_b",)) == set()  # no baseline fingerprint to compare with
    base = _sample(np.random.default_rng(1), prints=("fp_a",))
    recent = _sample(np.random.default_rng(2), prints=("fp_b",))
    report = detect_drift("t", "a", "b", base, recent)
    assert {s.signal for s in report.alarms} == {"fingerprint"}
    assert _alarms(latency=200.0) == {"latency"}
    assert _alarms(latency=50.0) == set()  # faster is not an alarm
    assert _alarms(tokens=40.0) == {"output_length"}
    assert _alarms(tokens=10.0) == {"output_length"}  # shorter answers are drift too
    assert _alarms(errors=15) == {"error_rate"}
    assert _alarms(refusals=15) == {"refusal_rate"}
    assert _alarms(fmt_ok=30) == {"format_adherence"}
    assert _alarms(errors=1, refusals=1, fmt_ok=48) == set()  # noise, not drift


def test_quality_and_judge_preference_signals() -> None:
    rng = np.random.default_rng(1)
    base, recent = _sample(rng), _sample(rng)
    worse = detect_drift(
        "t", "a", "b", base, recent, quality=(1e-6, 0.9, 0.6, "sign-test"), preference=(2, 5, 23)
    )
    assert {s.signal for s in worse.alarms} == {"quality", "judge_preference"}
    same = detect_drift(
        "t", "a", "b", base, recent, quality=(0.5, 0.9, 0.88, "sign-test"), preference=(10, 10, 10)
    )
    assert same.alarms == ()
    # Bonferroni: a p just under alpha is not an alarm among several tests.
    edge = detect_drift(
        "t", "a", "b", base, recent, alpha=0.01, quality=(0.009, 0.9, 0.8, "sign-test")
    )
    assert edge.alarms == ()


def test_refusals() -> None:
    assert is_refusal("I'm sorry, but I can't help with that.")
    assert is_refusal("As an AI language model, I cannot do this.")
    assert is_refusal("", "content_filter")
    assert not is_refusal("The answer is 42.")
    assert not is_refusal(None)


class Swappable(FakeOpenAI):
    """A fake upstream behind a stable deployment name; ``swap()`` puts another model
    behind it (a new model id, and it gets half of the sums wrong, verbosely). A fixed
    100 ms latency keeps CPU noise from looking like latency drift."""

    def __init__(self) -> None:
        super().__init__(
            responder=self.answer,
            api_key=ENV["FAKE_KEY"],
            model="gpt-4o-2024-08-06",
            latency=0.1,
        )
        self.swapped = False

    def swap(self) -> None:
        self.swapped = True
        self.model = "gpt-4o-mini-2024-07-18"

    def answer(self, turn: FakeTurn) -> FakeReply:
        i = case_index(turn.last_user_text)
        if self.swapped and i % 2 == 0:
            return FakeReply(text=f"Let me think about this carefully. The sum is {2 * i + 1}.")
        return FakeReply(text=str(2 * i))


@pytest.fixture
def upstream() -> Iterator[Swappable]:
    with running(Swappable()) as (fake,):
        yield fake


@pytest.fixture
def home(tmp_path: Path, monkeypatch: Any, upstream: Swappable) -> Path:
    monkeypatch.chdir(tmp_path)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LANEWAY_DATABASE_URL", raising=False)
    config = {
        "database": {"url": f"sqlite:///{tmp_path / 'l.db'}"},
        "deployments": [deployment("prod", upstream.url)],
        "retry": {"max_retries": 0, "base_delay": 0.0},
    }
    (tmp_path / "laneway.yaml").write_text(yaml.safe_dump(config), "utf-8")
    lines = ["name: canary", "cases:"] + [
        f'  - {{id: q{i:03d}, prompt: "Q{i}: what is {i} plus {i}?", numeric: {2 * i}}}'
        for i in range(N)
    ]
    (tmp_path / "canary.yaml").write_text("\n".join(lines) + "\n", "utf-8")
    return tmp_path


def _drift(*args: str) -> Result:
    import typer

    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    drift_cli.register(app)
    return CliRunner().invoke(app, ["drift", *args])


def test_a_model_swapped_behind_a_stable_name_is_flagged_by_one_canary_run(
    home: Path, upstream: Swappable
) -> None:
    first = _drift("run", "--suite", "canary.yaml", "--model", "prod")
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("baseline pinned: run drift-")
    same = _drift("run", "--suite", "canary.yaml", "--model", "prod")
    assert same.exit_code == 0, same.output
    assert "no drift" in same.stdout
    upstream.swap()
    swapped = _drift("run", "--suite", "canary.yaml", "--model", "prod")
    assert swapped.exit_code == 1, swapped.output
    alarm = next(line for line in swapped.stdout.splitlines() if line.startswith("DRIFT ALARM"))
    assert "served_model" in alarm and "quality" in alarm and "output_length" in alarm
    assert "gpt-4o-mini-2024-07-18" in swapped.stdout
    # The gauges follow the latest check; `drift status` says the same, exit 1.
    engine = open_database(f"sqlite:///{home / 'l.db'}")
    gauges = {g.signal: g for g in drift_gauges(engine)}
    assert gauges["served_model"].alarm and gauges["quality"].alarm
    assert not gauges["error_rate"].alarm
    registry = CollectorRegistry()
    registry.register(DriftCollector(engine))
    text = generate_latest(registry).decode()
    assert 'laneway_drift_alarm{signal="served_model",target="canary:prod"} 1.0' in text
    assert 'laneway_drift_alarm{signal="error_rate",target="canary:prod"} 0.0' in text
    assert 'laneway_drift_last_check_timestamp_seconds{target="canary:prod"}' in text
    engine.dispose()
    status = _drift("status")
    assert status.exit_code == 1 and "ALARM" in status.stdout
    # Columns named, the p-value shown, the time's zone said (it was unlabelled UTC).
    lines = status.stdout.splitlines()
    assert lines[0].split() == ["target", "signal", "state", "p", "checked", "(UTC)"]
    alarm = next(line.split() for line in lines if "ALARM" in line)
    assert alarm[3] in ("–", "<") or float(alarm[3]) < 0.01, alarm  # "–": a changed model id
    # Re-pinning accepts the new model as the baseline.
    repin = _drift("run", "--suite", "canary.yaml", "--model", "prod", "--rebaseline")
    assert repin.exit_code == 0 and "baseline pinned" in repin.stdout
    after = _drift("run", "--suite", "canary.yaml", "--model", "prod", "--json")
    assert after.exit_code == 0, after.output


def test_a_judge_prefers_the_reference_answers(home: Path, upstream: Swappable) -> None:
    """With --judge, each new answer is compared blind with the pinned reference answer."""
    import orjson

    judged: list[int] = []

    def judge(turn: FakeTurn) -> FakeReply:
        text = turn.last_user_text
        i = case_index(text)
        a = text.split("[Answer A]\n", 1)[1].split("\n\n[Answer B]", 1)[0].strip()
        b = text.split("[Answer B]\n", 1)[1].split("\n\nThink", 1)[0].strip()
        judged.append(i)
        winner = "tie" if a == b else ("A" if a == str(2 * i) else "B")
        return FakeReply(text=orjson.dumps({"reasoning": "r", "winner": winner}).decode())

    with running(FakeOpenAI(responder=judge, api_key=ENV["FAKE_KEY"])) as (judge_fake,):
        config = yaml.safe_load((home / "laneway.yaml").read_text("utf-8"))
        config["deployments"].append(deployment("judge", judge_fake.url))
        (home / "laneway.yaml").write_text(yaml.safe_dump(config), "utf-8")
        assert _drift("run", "--suite", "canary.yaml", "--model", "prod").exit_code == 0
        same = _drift("run", "--suite", "canary.yaml", "--model", "prod", "--judge", "judge")
        assert same.exit_code == 0, same.output
        assert judged == []  # identical answers: ties, no judge call
        upstream.swap()
        out = _drift(
            "run", "--suite", "canary.yaml", "--model", "prod", "--judge", "judge", "--json"
        )
    assert out.exit_code == 1
    import json

    signals = {s["signal"]: s for s in json.loads(out.stdout)["signals"]}
    assert signals["judge_preference"]["recent"] == "0 wins, 15 ties, 15 losses"
    assert signals["judge_preference"]["alarm"]
    assert len(judged) == 2 * 15  # only the 15 changed answers, in both orders


def _ledger_rows(engine: sa.Engine, start: datetime, n: int, **values: Any) -> None:
    rng = np.random.default_rng(len(values))
    latency = values.pop("latency", 100.0)
    errors = values.pop("errors", 0)
    rows = [
        {
            "request_id": f"r{start.timestamp()}-{i}",
            "attempt": 0,
            "ts": start + timedelta(minutes=i),
            "source": "api",
            "requested_model": "prod",
            "deployment": "prod",
            "stream": False,
            "status": 502 if i < errors else 200,
            "fallbacks": 0,
            "partial": False,
            "latency_ms": float(rng.normal(latency, 10.0)),
            "completion_tokens": 20,
            **values,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(LEDGER), rows)


def _check_alarms(home: Path, baseline: dict[str, Any], recent: dict[str, Any]) -> set[str]:
    engine = open_database(f"sqlite:///{home / 'l.db'}")
    now = datetime.now(UTC)
    _ledger_rows(engine, now - timedelta(days=5), 200, **baseline)
    _ledger_rows(engine, now - timedelta(hours=12), 100, **recent)
    engine.dispose()
    out = _drift("check", "--deployment", "prod", "--window", "1d", "--baseline", "7d")
    assert out.exit_code == 1, out.output
    alarm = next(line for line in out.stdout.splitlines() if line.startswith("DRIFT ALARM"))
    return set(alarm.split(": ")[1].split(", "))


def test_ledger_windows(home: Path) -> None:
    # Slower and failing more; the same output length (not an alarm).
    assert _check_alarms(home, {}, {"latency": 180.0, "errors": 12}) == {"latency", "error_rate"}


@pytest.mark.skipif(
    "served_model" not in LEDGER.c, reason="the ledger has no served_model column (migration 4)"
)
def test_ledger_served_model_change(home: Path) -> None:
    alarms = _check_alarms(
        home, {"served_model": "gpt-4o-2024-08-06"}, {"served_model": "gpt-4o-mini"}
    )
    assert alarms == {"served_model"}


def test_ledger_check_without_traffic(home: Path) -> None:
    missing = _drift("check", "--deployment", "prod")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: no ledger database")
    open_database(f"sqlite:///{home / 'l.db'}").dispose()
    none = _drift("check", "--deployment", "other")
    assert none.exit_code == 1
    # (was "has no logged request": only client traffic is compared by default)
    assert none.stderr.startswith("error: deployment 'other' has no logged client traffic")


def test_an_incomplete_canary_run_is_an_error_and_pins_nothing(home: Path) -> None:
    config = yaml.safe_load((home / "laneway.yaml").read_text("utf-8"))
    config["deployments"].append(deployment("down", "http://127.0.0.1:9"))
    (home / "laneway.yaml").write_text(yaml.safe_dump(config), "utf-8")
    out = _drift("run", "--suite", "canary.yaml", "--model", "down")
    assert out.exit_code == 1, out.output
    assert out.stderr.startswith("error: canary run drift-")
    assert "is incomplete (30 failed calls" in out.stderr
    engine = open_database(f"sqlite:///{home / 'l.db'}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM drift_baselines")).scalar() == 0
    engine.dispose()


@pytest.mark.parametrize("window", ["2026-01-31", "abc", "0h"])
def test_check_windows_are_durations_not_dates(home: Path, window: str) -> None:
    # "--window 2026-01-31" used to be accepted as "since that date" (a window of months).
    for option in ("--window", "--baseline"):
        out = _drift("check", "--deployment", "prod", option, window)
        assert out.exit_code == 2, out.output
        assert out.stderr.splitlines() == [
            f"error: {option} {window!r}: give a duration such as 1d, 12h or 90m"
        ]
