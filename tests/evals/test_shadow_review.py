"""The sample of shadow pairs a person reviews: reviewed, failed and identical pairs are
never drawn, at most ``sample`` are, the draw is repeatable under a seed, sides are
shuffled, the page's JSON names no model, and the verdicts are summarised beside the
judge's in the shadow report."""

from __future__ import annotations

from typing import Any

from laneway.evals import ReviewItem, ReviewServer, ShadowPair, shadow_report, shadow_review_items


def _row(i: int, candidate: str | None, primary: str = "primary answer", **extra: Any) -> Any:
    return {
        "id": i,
        "prompt": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"Q{i}"},
        ],
        "candidate_output": candidate,
        "primary_output": primary,
        "candidate_error": None,
        "human_verdict": None,
        **extra,
    }


def _rows() -> list[dict[str, Any]]:
    rows = [_row(i, f"candidate answer {i}") for i in range(100)]
    rows += [
        _row(100, "Primary answer."),  # identical once normalised
        _row(101, None, candidate_error="upstream_timeout"),
        _row(102, "reviewed already", human_verdict="a"),
    ]
    return rows


def test_the_sample_leaves_out_reviewed_failed_and_identical_pairs() -> None:
    everything = shadow_review_items(_rows(), sample=1000, seed=1)
    assert {int(i.case_id) for i in everything} == set(range(100))
    five = shadow_review_items(_rows(), sample=5, seed=1)
    assert len(five) == 5
    assert [i.case_id for i in five] == [i.case_id for i in shadow_review_items(_rows(), 5, 1)]
    assert {i.swapped for i in everything} == {True, False}
    item = everything[0]
    assert (item.model_a, item.answer_a) == ("candidate", f"candidate answer {item.case_id}")
    assert item.prompt == f"[system] Be brief.\n\n[user] Q{item.case_id}"


def test_the_page_sees_no_model_and_choices_reach_the_sink() -> None:
    items = shadow_review_items(_rows(), sample=2, seed=3)
    saved: list[tuple[str, str]] = []

    def sink(item: ReviewItem, winner: str) -> None:
        saved.append((item.case_id, winner))

    server = ReviewServer(sink, items)
    shown = server.next_item()
    assert set(shown) == {"done", "token", "prompt", "a", "b", "position", "total"}
    first = items[0]
    candidate_side = "b" if first.swapped else "a"
    assert shown[candidate_side] == first.answer_a
    assert server.choose(str(shown["token"]), candidate_side)
    assert not server.choose(str(shown["token"]), "a")  # once only
    assert saved == [(first.case_id, "a")]  # stored as: the candidate won
    assert server.choose(str(server.next_item()["token"]), "tie")
    assert server.next_item() == {"done": True, "saved": 2, "total": 2}


def test_the_report_counts_human_verdicts_beside_the_judges() -> None:
    def pair(verdict: str | None, human: str | None) -> ShadowPair:
        return ShadowPair(10.0, 10.0, "x", "y", verdict=verdict, human=human)

    pairs = [pair("candidate", "candidate"), pair("primary", "candidate"), pair("tie", "tie")]
    pairs += [pair("primary", None), pair(None, "primary")]
    report = shadow_report(pairs)
    assert report.human is not None and report.judge is not None
    assert (report.human.wins, report.human.ties, report.human.losses) == (2, 1, 1)
    assert (report.judge.wins, report.judge.ties, report.judge.losses) == (1, 1, 2)
    assert report.judge_human_agreement == (2, 3)
    assert shadow_report([pair("tie", None)]).human is None
