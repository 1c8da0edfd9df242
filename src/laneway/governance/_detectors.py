"""Detector objects: the fast set, the team's custom detectors and the opt-in NER detector.

A :class:`Detector` is a named pure function ``text -> [(kind, start, end)]``. The scanner
runs each one inside its own ``try`` so that a failing detector is recorded by name and
the request is treated as sensitive (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from laneway.governance import _validators as v
from laneway.governance._fast import FAST_FINDERS, Finder
from laneway.settings._policies import CustomDetector

__all__ = ["Detector", "Hit", "custom_detector", "fast_detectors", "resolve_overlaps"]

Hit = tuple[str, int, int]  # (kind, start, end)


@dataclass(frozen=True, slots=True)
class Detector:
    """``name`` identifies the detector in ``ScanResult.errors``; ``priority``: lower wins
    when the spans of two detectors overlap."""

    name: str
    kinds: frozenset[str]
    priority: int
    find: Callable[[str], list[Hit]]


def _single(kind: str, finder: Finder) -> Callable[[str], list[Hit]]:
    def find(text: str) -> list[Hit]:
        return [(kind, start, end) for start, end in finder(text)]

    return find


def fast_detectors(kinds: Iterable[str]) -> list[Detector]:
    """The fast detectors for ``kinds`` (others ignored), each compiled once."""
    wanted = set(kinds)
    return [
        Detector(kind, frozenset({kind}), rank, _single(kind, factory()))
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

    def find(text: str) -> list[Hit]:
        return [
            (kind, m.start(), m.end())
            for m in pattern.finditer(text)
            if m.end() > m.start() and (check is None or check(m.group()))
        ]

    return Detector(f"custom:{kind}", frozenset({kind}), priority, find)


def resolve_overlaps(hits: list[tuple[int, Hit]]) -> list[Hit]:
    """Keep non-overlapping hits: lower priority number first, then longer, then earlier."""
    ordered = sorted(hits, key=lambda ph: (ph[0], ph[1][1] - ph[1][2], ph[1][1]))
    kept: list[Hit] = []
    for _, hit in ordered:
        _, start, end = hit
        if all(end <= s or start >= e for _, s, e in kept):
            kept.append(hit)
    kept.sort(key=lambda h: h[1])
    return kept
