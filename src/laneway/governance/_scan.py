"""The scanner: runs the detectors over every text a request sends upstream.

What is scanned is derived from the request (:mod:`._sent`): every field, key and string
leaf of the validated request, with a short documented list of exceptions. Each text is
read through its normalised copy (:mod:`._normalize`: NFKC, format characters removed,
Unicode digits and dashes mapped, percent-escapes decoded) and findings are mapped back to
offsets in the original text. A :class:`Finding` holds a kind and offsets only, never the
matched text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from laneway.errors import ConfigError
from laneway.governance._detectors import (
    Detector,
    Hit,
    custom_detector,
    fast_detectors,
    resolve_overlaps,
)
from laneway.governance._normalize import OffsetMap, normalize
from laneway.governance._sent import leaf_prefix, plain_texts, walk_request
from laneway.providers import ChatRequest
from laneway.settings import FAST_KINDS, NER_KINDS, SensitivePolicy

__all__ = [
    "CAP_FROM",
    "DETECTOR_ERROR",
    "HIT_CAP",
    "Finding",
    "ScanResult",
    "Scanner",
    "leaf_prefix",
    "request_texts",
    "scan_output",
]

DETECTOR_ERROR = "detector_error"  # the key scan_output counts failing detectors under


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What a request contains: finding counts per kind, per position (``system``,
    ``user``, ``assistant``, ``tool_call``, ``tool_result``, ``tools``, ``schema``,
    ``params``: see :mod:`._sent`), detectors that raised and
    detectors that stopped at the hit cap of a large request (``capped``: their counts
    are lower bounds; each found something, so the request is sensitive anyway)."""

    counts: Mapping[str, int]
    errors: tuple[str, ...] = ()
    positions: Mapping[str, int] = field(default_factory=dict)
    capped: tuple[str, ...] = ()

    @property
    def sensitive(self) -> bool:
        """Any finding, or any detector error (fail closed)."""
        return bool(self.errors) or any(n > 0 for n in self.counts.values())


class Scanner:
    """Compiled detectors for one :class:`SensitivePolicy`; pure and thread-safe.

    ``extra`` detectors (plugins, tests) run alongside the configured ones and count
    towards :attr:`kinds`."""

    __slots__ = ("_detectors", "_digitless", "kinds")

    def __init__(self, policy: SensitivePolicy, *, extra: Sequence[Detector] = ()) -> None:
        custom_kinds = tuple(c.kind for c in policy.custom)
        known = set(FAST_KINDS) | set(custom_kinds) | set(NER_KINDS)
        if policy.kinds is None:
            kinds = set(FAST_KINDS) | set(custom_kinds) | (set(NER_KINDS) if policy.ner else set())
        else:
            kinds = set(policy.kinds)
            unknown = sorted(kinds - known)
            if unknown:
                raise ConfigError(f"policies.sensitive.kinds: unknown kind(s) {unknown}")
            if kinds & set(NER_KINDS) and not policy.ner:
                raise ConfigError("policies.sensitive.kinds names NER kinds: set ner: true")
        detectors = fast_detectors(kinds)
        rank = len(FAST_KINDS)
        detectors += [custom_detector(c, rank) for c in policy.custom if c.kind in kinds]
        ner_kinds = frozenset(kinds & set(NER_KINDS))
        if policy.ner and ner_kinds:
            from laneway.governance._ner import ner_detector

            detectors.append(ner_detector(ner_kinds, rank + 1))
        detectors += list(extra)
        self._detectors: tuple[Detector, ...] = tuple(detectors)
        # every shape the _NEEDS_DIGIT detectors accept contains a decimal digit
        self._digitless = tuple(d for d in detectors if d.name not in _NEEDS_DIGIT)
        self.kinds: frozenset[str] = frozenset(kinds).union(*(d.kinds for d in extra))

    @property
    def detector_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self._detectors)

    def scan_text_checked(self, text: str) -> tuple[list[Finding], tuple[str, ...]]:
        """Findings (non-overlapping, sorted) and the names of detectors that raised."""
        if not text:
            return [], ()
        copy: str = text
        offsets: OffsetMap | None = None
        errors: list[str] = []
        if not text.isascii() or "%" in text or "&#" in text:  # else: its own normalised copy
            copy, offsets, errors = _normalized(text)
        hits: list[tuple[int, Hit]] = []
        kinds = self.kinds
        detectors = self._detectors if has_digit(copy) else self._digitless
        for detector in detectors:
            try:
                found = detector.find(copy)
            except Exception:  # fail closed: the caller treats the text as sensitive
                errors.append(detector.name)
                continue
            if found:
                hits.extend((detector.priority, h) for h in found if h[0] in kinds)
        if not hits:
            return [], tuple(errors)
        kept = resolve_overlaps(hits)
        if offsets is None:
            return [Finding(k, s, e) for k, s, e in kept], tuple(errors)
        return [Finding(k, *offsets.original(s, e)) for k, s, e in kept], tuple(errors)

    def _scan_capped(self, text: str) -> tuple[list[Finding], tuple[str, ...], tuple[str, ...]]:
        """As :meth:`scan_text_checked` for a large text, each detector stopping after
        :data:`HIT_CAP` hits: enough to know the text is sensitive, and bounded work for
        a body of 100 000 repeated phone numbers. Also returns the capped detectors."""
        copy, offsets, errors = _normalized(text)
        hits: list[tuple[int, Hit]] = []
        capped: list[str] = []
        kinds = self.kinds
        detectors = self._detectors if has_digit(copy) else self._digitless
        for detector in detectors:
            at_most = detector.find_at_most
            try:
                found = detector.find(copy) if at_most is None else at_most(copy, HIT_CAP)
            except Exception:  # fail closed: the caller treats the text as sensitive
                errors.append(detector.name)
                continue
            if at_most is not None and len(found) >= HIT_CAP:
                capped.append(detector.name)
            hits.extend((detector.priority, h) for h in found if h[0] in kinds)
        kept = resolve_overlaps(hits) if hits else []
        if offsets is None:
            findings = [Finding(k, s, e) for k, s, e in kept]
        else:
            findings = [Finding(k, *offsets.original(s, e)) for k, s, e in kept]
        return findings, tuple(errors), tuple(capped)

    def scan_text(self, text: str) -> list[Finding]:
        """Findings only; use :meth:`scan_text_checked` where a detector error matters."""
        return self.scan_text_checked(text)[0]

    def scan_request(self, request: ChatRequest) -> ScanResult:
        """Every text the request sends (:func:`request_texts`), scanned in one pass:
        the texts are joined with a separator no detector pattern can span (NUL
        characters), and each finding is mapped back to its position. One pass instead
        of one per text halves the per-detector overhead on typical requests."""
        texts, seams = _collected(request)
        if not texts:
            return ScanResult({}, (), {})
        if seams:
            return self._with_seams(self._scan_texts(texts), seams)
        return self._scan_texts(texts)

    def _scan_texts(self, texts: list[tuple[str, str]]) -> ScanResult:
        joined = _SEPARATOR.join([text for _, text in texts])
        capped: tuple[str, ...] = ()
        if len(joined) > CAP_FROM:
            findings, errs, capped = self._scan_capped(joined)
        else:
            findings, errs = self.scan_text_checked(joined)
        if not findings:
            return _CLEAN if not errs else ScanResult({}, tuple(dict.fromkeys(errs)), {})
        starts: list[int] = []
        offset = 0
        for _, text in texts:
            starts.append(offset)
            offset += len(text) + len(_SEPARATOR)
        counts: Counter[str] = Counter()
        positions: Counter[str] = Counter()
        for finding in findings:
            counts[finding.kind] += 1
            positions[texts[bisect_right(starts, finding.start) - 1][0]] += 1
        return ScanResult(dict(counts), tuple(dict.fromkeys(errs)), dict(positions), capped)

    def _with_seams(self, result: ScanResult, seams: list[tuple[str, str, str]]) -> ScanResult:
        """``result`` plus the values that span a seam between two adjacent text parts
        (the end of one and the start of the next, read as one text; a value inside
        either part was counted already)."""
        counts: Counter[str] = Counter(result.counts)
        positions: Counter[str] = Counter(result.positions)
        errors = list(result.errors)
        for position, before, after in seams:
            head, tail = before[-_SEAM:], after[:_SEAM]
            findings, errs = self.scan_text_checked(head + tail)
            errors.extend(errs)
            cut = len(head)
            for finding in findings:
                if finding.start < cut < finding.end:
                    counts[finding.kind] += 1
                    positions[position] += 1
        if counts == result.counts and len(errors) == len(result.errors):
            return result
        return ScanResult(
            dict(counts), tuple(dict.fromkeys(errors)), dict(positions), result.capped
        )


def _normalized(text: str) -> tuple[str, OffsetMap | None, list[str]]:
    """The detectors' copy of ``text``; past the normaliser's bound (an adversarial text
    of escapes) the raw text, and an error that makes the request sensitive."""
    try:
        copy, offsets = normalize(text)
    except ValueError:
        return text, None, [NORMALIZE_ERROR]
    return copy, offsets, []


NORMALIZE_ERROR = "normalize"  # the error name when the normalised copy was given up
_SEPARATOR = "\n\x00\x00\n"
CAP_FROM = 16_384  # characters: a request scan of a longer text caps the hits per detector
HIT_CAP = 1_000  # hits per detector in such a scan (counts past it are not needed)
_CLEAN = ScanResult(MappingProxyType({}), (), MappingProxyType({}))  # shared: read-only
_DIGIT = re.compile(r"\d")
_SEAM = 256  # characters each side of a seam between text parts (an email is at most 254)


def has_digit(text: str) -> bool:
    """Any Unicode decimal digit (what ``\\d`` matches). ASCII text, the usual case, is
    checked with ten substring searches (memchr speed) instead of a regex that steps
    through every character."""
    if text.isascii():
        return (
            "0" in text or "1" in text or "2" in text or "3" in text or "4" in text
            or "5" in text or "6" in text or "7" in text or "8" in text or "9" in text
        )  # fmt: skip
    return _DIGIT.search(text) is not None


_NEEDS_DIGIT = frozenset({"phone", "payment_card", "iban", "national_id", "date_of_birth"})


def scan_output(text: str, scanner: Scanner) -> Mapping[str, int]:
    """Finding counts per kind in a model's answer; failing detectors are counted under
    ``"detector_error"`` (treat a non-zero count as a finding)."""
    findings, errors = scanner.scan_text_checked(text)
    counts = Counter(f.kind for f in findings)
    if errors:
        counts[DETECTOR_ERROR] = len(errors)
    return dict(counts)


class _Collect:
    """The scanner's visitor: records each text after its context, and each seam
    between two adjacent text parts; changes nothing."""

    __slots__ = ("seams", "texts")

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        self.seams: list[tuple[str, str, str]] = []

    def seam(self, position: str, before: str, after: str) -> None:
        self.seams.append((position, before, after))

    def text(self, position: str, prefix: str, text: str) -> str:
        self.texts.append((position, prefix + text if prefix else text))
        return text

    def encoded(self, position: str, text: str) -> None:
        self.texts.append((position, text))


def request_texts(request: ChatRequest) -> list[tuple[str, str]]:
    """``(position, text)`` for every text ``request`` sends upstream (JSON leaves after
    their key, ``"phone: …"``); plain-text requests without a generic walk."""
    return _collected(request)[0]


def _collected(request: ChatRequest) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """:func:`request_texts` and the seams between adjacent text parts."""
    texts = plain_texts(request)
    if texts is not None:
        return texts, []
    collect = _Collect()
    walk_request(request, collect)
    return collect.texts, collect.seams
