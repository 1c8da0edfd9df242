"""Drift: a deployment's recent behaviour against its baseline, each signal with a test
suited to it.

==================  ============================================  =====================
signal              test                                          alarm when
==================  ============================================  =====================
served_model        change in the set of model ids the upstream   any id not seen in the
                    reported                                      baseline
fingerprint         change in the set of ``system_fingerprint``   any fingerprint not
                                                                  seen in the baseline
quality             paired test over cases (canary runs only:     significantly worse
                    exact sign test / sign-flip)
judge_preference    exact sign test of the judge's wins against   significantly more
                    losses, recent answers vs the pinned          losses than wins
                    reference (baseline) answers
latency             Mann-Whitney U, failed calls included         significant and the
                                                                  median 20% and 25 ms
                                                                  slower
output_length       Mann-Whitney U on completion tokens           significant, either way
refusal_rate        Fisher's exact test                           significantly higher
error_rate          Fisher's exact test                           significantly higher
format_adherence    Fisher's exact test                           significantly lower
==================  ============================================  =====================

The statistical signals share the significance level: each is tested at alpha / m
(Bonferroni over the m tests made), so a cron job checking every hour does not page on
noise. Changes of model id or fingerprint are facts, not estimates: they alarm as such.
With ``min_calls``, a side with fewer calls is too small to test: only those changes are
checked, and the report's ``note`` says so (a quiet hour of ledger traffic, three calls
that failed, is not an alarm on error rate or latency).

Both sides must hold the same kind of traffic (``DriftReport.source`` says which): a
canary run against the pinned canary run, a window of client traffic against an earlier
window of client traffic. An eval suite's or a shadow rule's calls in one window only
would read as drift of output length, errors and refusals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from laneway.evals._stats import format_p, sign_test
from laneway.evals._twosample import TwoSample, fisher_exact, mann_whitney
from laneway.ledger import percentile

__all__ = [
    "DriftReport",
    "DriftSample",
    "DriftSignal",
    "detect_drift",
    "is_refusal",
]

_REFUSAL = re.compile(
    r"\b(?:I(?:'m| am) (?:sorry|unable|not able)|I (?:can(?:not|'t)|won't) (?:help|assist|"
    r"provide|do|comply|answer)|as an AI(?: language model)?|I must decline)\b",
    re.IGNORECASE,
)
_SLOWER = 1.2
# A median this much slower at least: a few milliseconds are the measuring machine's own
# noise (a canary against a 3 ms upstream on a busy machine read 3 -> 8 ms, p = 0.004),
# never a provider's drift.
_SLOWER_MS = 25.0


def is_refusal(text: str | None, finish_reason: str | None = None) -> bool:
    """A refusal: a content filter stopped it, or the answer opens with a stock refusal
    phrase (looked for in its first 300 characters)."""
    if finish_reason == "content_filter":
        return True
    return bool(text) and _REFUSAL.search((text or "")[:300]) is not None


@dataclass(slots=True)
class DriftSample:
    """One side (baseline or recent) of a comparison: one entry per call."""

    latency_ms: list[float]
    output_tokens: list[float]
    calls: int = 0
    errors: int = 0
    answers: int = 0
    refusals: int = 0
    format_checked: int = 0
    format_ok: int = 0
    served_models: frozenset[str] = frozenset()
    fingerprints: frozenset[str] = frozenset()

    @classmethod
    def empty(cls) -> DriftSample:
        return cls([], [])


@dataclass(frozen=True, slots=True)
class DriftSignal:
    signal: str
    method: str
    baseline: str
    recent: str
    p_value: float | None
    alarm: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "method": self.method,
            "baseline": self.baseline,
            "recent": self.recent,
            "p_value": self.p_value,
            "p_text": None if self.p_value is None else format_p(self.p_value),
            "alarm": self.alarm,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class DriftReport:
    target: str
    baseline: str  # a run id or a time window
    recent: str
    alpha: float
    signals: tuple[DriftSignal, ...]
    note: str = ""  # e.g. why the statistical signals were not tested
    source: str = ""  # what traffic both sides hold, e.g. "client traffic (source=api)"

    @property
    def alarms(self) -> tuple[DriftSignal, ...]:
        return tuple(s for s in self.signals if s.alarm)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "baseline": self.baseline,
            "recent": self.recent,
            "source": self.source or None,
            "alpha": self.alpha,
            "alarm": bool(self.alarms),
            "note": self.note or None,
            "signals": [s.to_json() for s in self.signals],
        }


def _ids(values: Iterable[str]) -> str:
    shown = sorted(values)
    return ", ".join(shown) if shown else "–"


def _change(signal: str, base: frozenset[str], recent: frozenset[str]) -> DriftSignal | None:
    if not base and not recent:
        return None
    new = recent - base
    detail = f"new: {_ids(new)}" if new else ""
    if not base:
        detail = "no baseline value to compare with"
    return DriftSignal(signal, "change", _ids(base), _ids(recent), None, bool(new and base), detail)


def _rate(hits: int, n: int) -> str:
    return "–" if n == 0 else f"{hits / n:.1%} ({hits}/{n})"


def _median(values: Sequence[float]) -> str:
    m = percentile(values, 50)
    return "–" if m is None else f"median {m:.0f}"


@dataclass(frozen=True, slots=True)
class _Pending:
    signal: str
    test: TwoSample | None
    baseline: str
    recent: str
    worse: bool  # the recent side moved in the direction that matters
    p: float | None = None
    method: str | None = None


def _two_sample(base: DriftSample, recent: DriftSample) -> list[_Pending]:
    out: list[_Pending] = []
    if base.latency_ms and recent.latency_ms:
        test = mann_whitney(base.latency_ms, recent.latency_ms)
        b50 = percentile(base.latency_ms, 50) or 0.0
        r50 = percentile(recent.latency_ms, 50) or 0.0
        slower = r50 > _SLOWER * b50 and r50 - b50 >= _SLOWER_MS
        out.append(
            _Pending("latency", test, _median(base.latency_ms), _median(recent.latency_ms), slower)
        )
    if base.output_tokens and recent.output_tokens:
        test = mann_whitney(base.output_tokens, recent.output_tokens)
        out.append(
            _Pending(
                "output_length",
                test,
                _median(base.output_tokens),
                _median(recent.output_tokens),
                True,
            )
        )
    rates = (
        ("refusal_rate", base.refusals, base.answers, recent.refusals, recent.answers, 1),
        ("error_rate", base.errors, base.calls, recent.errors, recent.calls, 1),
        (
            "format_adherence",
            base.format_ok,
            base.format_checked,
            recent.format_ok,
            recent.format_checked,
            -1,
        ),
    )
    for name, bh, bn, rh, rn, direction in rates:
        if bn and rn:
            test = fisher_exact(bh, bn, rh, rn)
            out.append(
                _Pending(name, test, _rate(bh, bn), _rate(rh, rn), test.effect * direction > 0)
            )
    return out


def _too_few(base: DriftSample, recent: DriftSample, min_calls: int) -> str:
    sides = [(n, side) for n, side in ((recent.calls, "recent"), (base.calls, "baseline"))]
    small = [f"{n} in the {side} window" for n, side in sides if n < min_calls]
    if not small:
        return ""
    return (
        f"too few calls to test: {' and '.join(small)} (at least {min_calls} in each); "
        "only model id and fingerprint changes checked"
    )


def detect_drift(
    target: str,
    baseline_label: str,
    recent_label: str,
    base: DriftSample,
    recent: DriftSample,
    *,
    alpha: float = 0.01,
    quality: tuple[float, float, float, str] | None = None,
    preference: tuple[int, int, int] | None = None,
    min_calls: int = 0,
    source: str = "",
) -> DriftReport:
    """Every signal of ``recent`` against ``base`` (both of the traffic ``source`` names:
    the report only says it). ``quality`` is (p, baseline rate,
    recent rate, method) of a paired test over cases; ``preference`` is the judge's
    (wins, ties, losses) of the recent answers against the pinned reference answers.
    A side with fewer than ``min_calls`` calls gets no statistical test (see ``note``)."""
    note = _too_few(base, recent, min_calls)
    pending = [] if note else _two_sample(base, recent)
    if quality is not None and not note:
        p, b_rate, r_rate, method = quality
        pending.append(
            _Pending("quality", None, f"{b_rate:.1%}", f"{r_rate:.1%}", r_rate < b_rate, p, method)
        )
    if preference is not None and not note:
        wins, ties, losses = preference
        pending.append(
            _Pending(
                "judge_preference",
                None,
                "reference answers",
                f"{wins} wins, {ties} ties, {losses} losses",
                losses > wins,
                sign_test(losses, wins),
                "sign-test",
            )
        )
    level = alpha / max(1, len(pending))
    signals: list[DriftSignal] = [
        s
        for s in (
            _change("served_model", base.served_models, recent.served_models),
            _change("fingerprint", base.fingerprints, recent.fingerprints),
        )
        if s is not None
    ]
    for item in pending:
        p_value = item.test.p_value if item.test is not None else item.p
        method = item.test.method if item.test is not None else (item.method or "")
        assert p_value is not None
        signals.append(
            DriftSignal(
                item.signal,
                method,
                item.baseline,
                item.recent,
                p_value,
                p_value < level and item.worse,
                f"tested at alpha/{len(pending)} = {level:.2g}",
            )
        )
    return DriftReport(target, baseline_label, recent_label, alpha, tuple(signals), note, source)
