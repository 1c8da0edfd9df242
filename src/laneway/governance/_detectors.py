"""Detector objects: the fast set, the team's custom detectors and the opt-in NER detector.

A :class:`Detector` is a named pure function ``text -> [(kind, start, end)]``. The scanner
runs each one inside its own ``try`` so that a failing detector is recorded by name and
the request is treated as sensitive (fail closed).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from laneway.governance import _validators as v
from laneway.governance._fast import ALL, FAST_FINDERS, Finder
from laneway.settings import CustomDetector

__all__ = ["Detector", "Hit", "custom_detector", "fast_detectors", "resolve_overlaps"]

Hit = tuple[str, int, int]  # (kind, start, end)


@dataclass(frozen=True, slots=True)
class Detector:
    """``name`` identifies the detector in ``ScanResult.errors``; ``priority``: lower wins
    when the spans of two detectors overlap. ``find_at_most(text, n)``, when present,
    stops after ``n`` hits (the scanner's cap on large requests)."""

    name: str
    kinds: frozenset[str]
    priority: int
    find: Callable[[str], list[Hit]]
    find_at_most: Callable[[str, int], list[Hit]] | None = None


def _single(kind: str, finder: Finder) -> Callable[[str], list[Hit]]:
    def find(text: str) -> list[Hit]:
        return [(kind, start, end) for start, end in finder(text)]

    return find


def _single_at_most(kind: str, finder: Finder) -> Callable[[str, int], list[Hit]]:
    def find_at_most(text: str, limit: int) -> list[Hit]:
        return [(kind, start, end) for start, end in finder(text, limit)]

    return find_at_most


def _fast_detector(kind: str, rank: int, finder: Finder) -> Detector:
    return Detector(
        kind, frozenset({kind}), rank, _single(kind, finder), _single_at_most(kind, finder)
    )


def fast_detectors(kinds: Iterable[str]) -> list[Detector]:
    """The fast detectors for ``kinds`` (others ignored), each compiled once."""
    wanted = set(kinds)
    return [
        _fast_detector(kind, rank, factory())
        for rank, (kind, factory) in enumerate(FAST_FINDERS)
        if kind in wanted
    ]


_CHECKS: dict[str, Callable[[str], bool]] = {
    "luhn": v.luhn_valid,
    "mod97": v.mod97_valid,
}


def custom_detector(spec: CustomDetector, priority: int) -> Detector:
    """A regex (+ optional Luhn / mod-97 check on the whole match) from the settings file."""
    pattern = re.compile(spec.pattern, re.IGNORECASE if spec.ignore_case else 0)
    check = _CHECKS.get(spec.validator)
    kind = spec.kind

    def find_at_most(text: str, limit: int) -> list[Hit]:
        hits: list[Hit] = []
        for m in pattern.finditer(text):
            if m.end() > m.start() and (check is None or check(m.group())):
                hits.append((kind, m.start(), m.end()))
                if len(hits) >= limit:
                    break
        return hits

    def find(text: str) -> list[Hit]:
        return find_at_most(text, ALL)

    return Detector(f"custom:{kind}", frozenset({kind}), priority, find, find_at_most)


def resolve_overlaps(hits: list[tuple[int, Hit]]) -> list[Hit]:
    """Keep non-overlapping hits: lower priority number first, then longer, then earlier.

    Greedy in that order: a hit is kept unless it overlaps one kept before it. A few hits
    (the usual case) are compared pairwise; many hits use a prefix-maximum tree over
    the hits' start order, O(n log n) with the same result (an adversarial body of
    repeated phone numbers gives tens of thousands of hits)."""
    ordered = sorted(hits, key=lambda ph: (ph[0], ph[1][1] - ph[1][2], ph[1][1]))
    if len(ordered) > _PAIRWISE_MAX:
        kept = _greedy_many([hit for _, hit in ordered])
    else:
        kept = []
        for _, hit in ordered:
            _, start, end = hit
            if all(end <= s or start >= e for _, s, e in kept):
                kept.append(hit)
    kept.sort(key=lambda h: h[1])
    return kept


_PAIRWISE_MAX = 32  # up to this many hits the pairwise loop is cheaper than the tree


def _greedy_many(ordered: list[Hit]) -> list[Hit]:
    """The greedy pass of :func:`resolve_overlaps` for many hits. A new hit ``[a, b)``
    overlaps a kept ``[s, e)`` iff ``s < b and a < e``: the largest ``e`` among kept hits
    with ``s < b`` is a prefix maximum over the hits sorted by start (a Fenwick tree)."""
    n = len(ordered)
    by_start = sorted(range(n), key=lambda i: ordered[i][1])
    starts = [ordered[i][1] for i in by_start]
    rank = [0] * n
    for r, i in enumerate(by_start, 1):
        rank[i] = r
    floor = starts[0]  # no start is below it, so "max end > start" is false when empty
    tree = [floor] * (n + 1)
    kept: list[Hit] = []
    for i, hit in enumerate(ordered):
        _, start, end = hit
        k = bisect_left(starts, end)  # kept hits of start rank <= k begin before ``end``
        best = floor
        while k:
            if tree[k] > best:
                best = tree[k]
            k &= k - 1
        if best > start:
            continue
        kept.append(hit)
        r = rank[i]
        while r <= n:
            if tree[r] < end:
                tree[r] = end
            r += r & -r
    return kept
