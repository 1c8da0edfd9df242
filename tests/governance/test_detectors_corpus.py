"""Acceptance: recall and false-positive rate per kind on the Faker-generated corpus."""

from __future__ import annotations

import pytest

from laneway.governance._scan import Scanner
from laneway.settings._policies import FAST_KINDS, SensitivePolicy
from tests.governance.corpus import POSITIONS, KindScore, evaluate, generate


@pytest.fixture(scope="module")
def scores() -> list[KindScore]:
    positives, cleans = generate()
    assert len(positives) >= 200 and len(cleans) >= 200
    assert {s.position for s in positives} == set(POSITIONS)
    assert len({s.locale for s in positives}) >= 10
    scanner = Scanner(SensitivePolicy())
    table, _ = evaluate(
        lambda r: dict(scanner.scan_request(r).counts), positives, cleans, FAST_KINDS
    )
    for s in table:
        print(f"{s.kind:14} recall {s.recall:.3f} fpr {s.false_positive_rate:.3f}")
    return table


def test_corpus_is_deterministic() -> None:
    a, _ = generate(seed=5, per_kind=3, clean=3)
    b, _ = generate(seed=5, per_kind=3, clean=3)
    assert [s.request for s in a] == [s.request for s in b]


@pytest.mark.parametrize("kind", FAST_KINDS)
def test_recall_per_kind(scores: list[KindScore], kind: str) -> None:
    score = next(s for s in scores if s.kind == kind)
    assert score.positives >= 20
    assert score.recall >= 0.95, f"{kind}: recall {score.recall:.3f}"


@pytest.mark.parametrize("kind", FAST_KINDS)
def test_false_positive_rate_per_kind(scores: list[KindScore], kind: str) -> None:
    score = next(s for s in scores if s.kind == kind)
    assert score.false_positive_rate <= 0.02, f"{kind}: FPR {score.false_positive_rate:.3f}"
