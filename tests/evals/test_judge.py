"""Judge model: rubric grades and blind pairwise verdicts as JSON-schema answers, asked in
both orders (a judge that always prefers position A gives ties, and the report shows its
position bias); identical answers tie without a call; free text is never parsed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from laneway.evals import (
    PROMPT_VERSION,
    RunOptions,
    compute_metrics,
    load_run,
    load_suite,
    position_bias,
    run_suite,
)
from laneway.evals._judge import parse_pair, parse_rubric
from laneway.evals._report import render_report, win_matrix
from laneway.evals._runner import new_run
from laneway.settings import Settings
from laneway.testing import FakeOpenAI, FakeReply, FakeTurn, running
from tests.evals.conftest import ENV, Plan, PlantedFake, case_index, deployment, settings_for

CASES = 6


def _json(**values: Any) -> FakeReply:
    return FakeReply(text=orjson.dumps({"reasoning": "because", **values}).decode())


def fair_judge(turn: FakeTurn) -> FakeReply:
    text = turn.last_user_text
    i = case_index(text)
    if "[Answer A]" in text:
        a = re.search(r"\[Answer A\]\n(.*?)\n\n\[Answer B\]", text, re.DOTALL)
        assert a is not None
        return _json(winner="A" if a.group(1).strip() == str(2 * i) else "B")
    answer = text.split("Answer:\n", 1)[1].split("\n\nRubric:", 1)[0].strip()
    return _json(grade=8 if answer == str(2 * i) else 2)


def biased_judge(turn: FakeTurn) -> FakeReply:
    return _json(winner="A") if "[Answer A]" in turn.last_user_text else _json(grade=5)


def chatty_judge(turn: FakeTurn) -> FakeReply:
    """Free text, as the old parser read it ("I give it 7" scored 0)."""
    if "[Answer A]" in turn.last_user_text:
        return FakeReply(text="Answer A is worse, so B")
    return FakeReply(text="I give it 7 out of 10")


def _suite(tmp_path: Path) -> Any:
    lines = ["name: judged", "defaults: {rubric: The sum is right.}", "cases:"]
    for i in range(1, 2 * CASES, 2):
        lines.append(f'  - {{id: q{i:03d}, prompt: "Q{i}: what is {i} plus {i}?"}}')
    path = tmp_path / "judged.yaml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return load_suite(path)


def test_parsers_read_the_schema_only() -> None:
    assert parse_rubric('{"reasoning": "ok", "grade": 7}') == (7, "ok")
    assert parse_rubric('```json\n{"reasoning": "ok", "grade": 10}\n```') == (10, "ok")
    assert parse_rubric("I give it 7") is None
    assert parse_rubric('{"reasoning": "ok", "grade": 11}') is None
    assert parse_rubric('{"reasoning": "ok", "grade": 7.5}') is None
    assert parse_rubric('{"grade": 7}') is None
    assert parse_pair('{"reasoning": "r", "winner": "B"}') == ("b", "r")
    assert parse_pair('{"reasoning": "r", "winner": "tie"}') == ("tie", "r")
    assert parse_pair("Answer A is worse, so B") is None
    assert parse_pair('{"reasoning": "r", "winner": "C"}') is None


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
    assert all(p.detail["judge"] == "judge" for p in pairs)
    assert all(p.detail["prompt_version"] == PROMPT_VERSION for p in pairs)
    assert all(p.detail["reasoning"] == ["because", "because"] for p in pairs)
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
    assert "Judge position bias" in html
    assert position_bias(pairs)["consistent_share"] == 1.0


async def test_position_biased_judge_gives_ties(
    tmp_path: Path, engine: sa.Engine, gateway_factory: Any
) -> None:
    _, record, _ = await _judged_run(tmp_path, engine, gateway_factory, biased_judge, "biased")
    pairs = record.pairs("judge")
    assert len(pairs) == CASES
    assert {p.winner for p in pairs} == {"tie"}
    assert all(p.detail["forward"] == "a" and p.detail["reversed"] == "b" for p in pairs)
    bias = position_bias(pairs)
    assert (bias["n"], bias["first"], bias["first_share"]) == (CASES, CASES, 1.0)
    html = render_report(load_run("biased", engine), [])
    assert "the answer shown <b>first</b> won both times 100.0%" in html


async def test_free_text_is_a_judge_failure_not_a_zero(
    tmp_path: Path, engine: sa.Engine, gateway_factory: Any
) -> None:
    suite = _suite(tmp_path)
    with running(
        PlantedFake(Plan()),
        PlantedFake(Plan(wrong=frozenset(range(2 * CASES)))),
        FakeOpenAI(responder=chatty_judge, api_key=ENV["FAKE_KEY"]),
    ) as (good, bad, judge):
        settings = settings_for(tmp_path, {"good": good, "bad": bad})  # type: ignore[dict-item]
        # A judge model whose catalog entry does not rule out JSON schemas (gpt-4o does).
        judge_deployment = {**deployment("judge", judge.url), "model": "gpt-5"}
        settings = Settings.model_validate(
            {
                **settings.model_dump(mode="json"),
                "deployments": [*settings.model_dump(mode="json")["deployments"], judge_deployment],
            }
        )
        gateway = await gateway_factory(settings)
        options = RunOptions(models=("good", "bad"), judge="judge", concurrency=3)
        record = new_run(engine, suite, options, run_id="chatty")
        summary = await run_suite(gateway, suite, record, options)
        sent = [r.body for r in judge.received]
    assert summary.status == "incomplete"
    assert summary.error_codes == {"judge_error": 2 * CASES}
    rows = list(record.results())
    assert {r.error_code for r in rows} == {"judge_error"}
    assert all(r.passed is None and r.score is None for r in rows)  # never a grade of 0
    # The gateway checks the reply against the schema asked for (and retries it once).
    assert rows[0].error == "judge judge failed (invalid_output)"
    assert summary.judge_failures == CASES and record.pairs("judge") == []
    # Every judge request asked for the schema and left room for the reasoning.
    assert {b["response_format"]["json_schema"]["name"] for b in sent} == {"grade", "verdict"}
    assert all(
        b["response_format"]["json_schema"]["schema"]["required"][0] == "reasoning" for b in sent
    )
    assert min(b.get("max_completion_tokens") or b.get("max_tokens") for b in sent) >= 1024


async def test_identical_answers_tie_without_a_call_and_skip_review(
    tmp_path: Path, engine: sa.Engine, gateway_factory: Any
) -> None:
    from laneway.evals._review import review_items

    suite = _suite(tmp_path)
    with running(
        PlantedFake(Plan()),
        PlantedFake(Plan(wrong=frozenset({1, 3}))),  # differs on the first two cases only
        FakeOpenAI(responder=fair_judge, api_key=ENV["FAKE_KEY"]),
    ) as (good, twin, judge):
        settings = settings_for(tmp_path, {"good": good, "twin": twin, "judge": judge})  # type: ignore[dict-item]
        gateway = await gateway_factory(settings)
        options = RunOptions(models=("good", "twin"), judge="judge", pairwise=True)
        record = new_run(engine, suite, options, run_id="twins")
        summary = await run_suite(gateway, suite, record, options)
        pair_calls = [r for r in judge.received if "[Answer A]" in str(r.body)]
    assert summary.status == "complete"
    assert summary.pair_verdicts == CASES and summary.pairs_identical == CASES - 2
    assert len(pair_calls) == 2 * 2  # two differing cases, both orders
    pairs = {p.case_id: p for p in record.pairs("judge")}
    assert {c: p.winner for c, p in pairs.items() if p.detail.get("identical")} == {
        f"q{i:03d}": "tie" for i in range(5, 2 * CASES, 2)
    }
    assert {p.winner for c, p in pairs.items() if not p.detail.get("identical")} == {"a"}
    assert sorted(i.case_id for i in review_items(record)) == ["q001", "q003"]
