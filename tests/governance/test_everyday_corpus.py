"""Acceptance (issue 12, item 4): sentences with sensitive values in everyday forms and
contexts, and clean business texts, read from the data files in ``corpus/``.

``everyday_positive.jsonl`` / ``everyday_clean.jsonl`` are the set the detectors were
tuned on; ``heldout_*.jsonl`` (about a quarter, written from other sentence templates)
were never used for tuning and are reported separately. Each positive line holds one
value (``kind``) in one form (``form``: plain, full-width or Arabic-Indic digits, zero-width
characters, soft hyphens, URL-encoding, lower case, dotted groups, no-break spaces …);
each clean line says what it is (``what``: order or invoice numbers, versions, dates,
prices, timestamps, tracking numbers, UUIDs, hashes …).

    pytest tests/governance/test_everyday_corpus.py -q -s    # prints the tables
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from laneway.governance import Scanner
from laneway.providers import ChatRequest
from laneway.settings._policies import SensitivePolicy

CORPUS = Path(__file__).parent / "corpus"


def load(name: str) -> list[dict[str, Any]]:
    with (CORPUS / f"{name}.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(SensitivePolicy())


def _kinds(scanner: Scanner, text: str) -> set[str]:
    request = ChatRequest(model="m", messages=({"role": "user", "content": text},))
    return set(scanner.scan_request(request).counts)


def test_the_corpus_is_large_and_varied() -> None:
    positives = load("everyday_positive") + load("heldout_positive")
    cleans = load("everyday_clean") + load("heldout_clean")
    assert len(positives) >= 200 and len(cleans) >= 200
    assert 0.2 <= len(load("heldout_positive")) / len(positives) <= 0.3
    assert 0.2 <= len(load("heldout_clean")) / len(cleans) <= 0.3
    forms = Counter(row["form"] for row in positives)
    assert forms["plain"] < len(positives) / 2  # most in an everyday form
    assert len(forms) >= 15
    assert len({row["kind"] for row in positives}) >= 9
    assert len({row["what"] for row in cleans}) >= 15


@pytest.mark.parametrize("name", ["everyday_positive", "heldout_positive"])
def test_no_sensitive_sentence_is_missed(scanner: Scanner, name: str) -> None:
    rows = load(name)
    missed = [row for row in rows if not _kinds(scanner, row["text"])]
    wrong = [row for row in rows if row["kind"] not in _kinds(scanner, row["text"])]
    print(
        f"\n{name}: {len(rows)} sentences, {len(missed)} not flagged, "
        f"{len(wrong)} not as their kind"
    )
    assert missed == []
    if name == "everyday_positive":
        assert wrong == []
    else:  # held out: flagged, though another kind may claim the value (a phone as an ID)
        assert len(wrong) <= len(rows) * 0.05


@pytest.mark.parametrize(("name", "bound"), [("everyday_clean", 0.01), ("heldout_clean", 0.03)])
def test_false_positive_rate_on_clean_business_texts(
    scanner: Scanner, name: str, bound: float
) -> None:
    rows = load(name)
    per_kind: Counter[str] = Counter()
    flagged = 0
    for row in rows:
        kinds = _kinds(scanner, row["text"])
        flagged += bool(kinds)
        per_kind.update(kinds)
    print(f"\n{name}: {flagged}/{len(rows)} flagged; per kind {dict(per_kind) or '{}'}")
    assert flagged / len(rows) <= bound
