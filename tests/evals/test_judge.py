"""Judge model: rubric grades, and blind pairwise verdicts in both orders (a judge
that always prefers position A gives ties)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from laneway.evals import RunOptions, compute_metrics, load_run, load_suite, run_suite
from laneway.evals._judge import parse_choice, parse_grade
from laneway.evals._report import render_report, win_matrix
from laneway.evals._runner import new_run
from laneway.testing import FakeOpenAI, FakeReply, FakeTurn, running
from tests.evals.conftest import ENV, Plan, PlantedFake, case_index, settings_for

CASES = 6


def fair_judge(turn: FakeTurn) -> FakeReply:
    text = turn.last_user_text
    i = case_index(text)
    if "[Answer A]" in text:
        a = re.search(r"\[Answer A\]\n(.*?)\n\n\[Answer B\]", text, re.DOTALL)
        assert a is not None
        return FakeReply(text="A" if a.group(1).strip() == str(2 * i) else "B")
    answer = text.split("Answer:\n", 1)[1].split("\n\nRubric:", 1)[0].strip()
    return FakeReply(text="8" if answer == str(2 * i) else "2")


def biased_judge(turn: FakeTurn) -> FakeReply:
    return FakeReply(text="A" if "[Answer A]" in turn.last_user_text else "5")


def _suite(tmp_path: Path) -> Any:
    lines = ["name: judged", "defaults: {rubric: The sum is right.}", "cases:"]
    for i in range(1, 2 * CASES, 2):
        lines.append(f'  - {{id: q{i:03d}, prompt: "Q{i}: what is {i} plus {i}?"}}')
    path = tmp_path / "judged.yaml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return load_suite(path)


def test_parsers() -> None:
    assert parse_grade("Grade: 7/10") == 7
    assert parse_grade("42 then 9") == 9
    assert parse_grade("none") is None
    assert parse_choice("I think B.") == "b"
    assert parse_choice("tie") == "tie"
    assert parse_choice("Answer A is worse, so B") == "b"
    assert parse_choice("neither") is None


async def _judged_run(
    tmp_path: Path, engine: sa.Engine, factory: Any, responder: Any, run_id: str
) -> Any:
    suite = _suite(tmp_path)
    wrong = frozenset(range(2 * CASES))
    with running(
        PlantedFake(Plan()),
        PlantedFake(Plan(wrong=wrong)),
        FakeOpenAI(responder=responder, api_key=ENV["FAKE_KEY"]),
    ) as (good, bad, judge):
        settings = settings_for(tmp_path, {"good": good, "bad": bad, "judge": judge})  # type: ignore[dict-item]
        gateway = await factory(settings)
        options = RunOptions(models=("good", "bad"), judge="judge", concurrency=3)
        record = new_run(engine, suite, options, run_id=run_id)
        summary = await run_suite(gateway, suite, record, options)
        await gateway.aclose()
    assert summary.status == "complete"
    return suite, record, summary


async def test_rubric_and_pairwise_with_a_fair_judge(
    tmp_path: Path, engine: sa.Engine, gateway_factory: Any
) -> None:
    suite, record, summary = await _judged_run(
        tmp_path, engine, gateway_factory, fair_judge, "fair"
    )
    assert summary.pair_verdicts == CASES
    metrics = {
        m.model: m
        for m in compute_metrics(record.results(), suite.to_dict(), ("good", "bad"))
        if m.tag is None
    }
    assert metrics["good"].pass_rate == 1.0
    assert metrics["bad"].pass_rate == 0.0
    rubric = [c for r in record.results() for c in r.checks if c["kind"] == "judge"]
    assert len(rubric) == 2 * CASES
    assert {c["score"] for c in rubric} == {0.8, 0.2}
    pairs = record.pairs("judge")
    assert len(pairs) == CASES
    assert {(p.model_a, p.model_b, p.winner) for p in pairs} == {("good", "bad", "a")}
    assert all(p.detail["forward"] == p.detail["reversed"] == "a" for p in pairs)
    matrix = win_matrix(pairs, ["good", "bad"])
    assert matrix["good"]["bad"] == 1.0
    assert matrix["bad"]["good"] == 0.0
    html = render_report(
        load_run("fair", engine),
        compute_metrics(record.results(), suite.to_dict(), ("good", "bad")),
    )
    assert "Pairwise win rates (judge)" in html
    assert 'id="plot-quality_cost"' in html and "<svg" in html
    assert 'id="plot-pairwise"' in html


async def test_position_biased_judge_gives_ties(
    tmp_path: Path, engine: sa.Engine, gateway_factory: Any
) -> None:
    _, record, _ = await _judged_run(tmp_path, engine, gateway_factory, biased_judge, "biased")
    pairs = record.pairs("judge")
    assert len(pairs) == CASES
    assert {p.winner for p in pairs} == {"tie"}
    assert all(p.detail["forward"] == "a" and p.detail["reversed"] == "b" for p in pairs)
