"""Scoring one answer against a case's checks (everything except the judge's rubric).

Each check gives a :class:`Check` with a kind: ``answer`` (expected, regex, contains,
numeric, Python scorer), ``format`` (JSON asked for / JSON Schema) or ``instruction``
(the case's ``instructions``). A case passes when every check passes; a case with no
check at all is unscored (``passed is None``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from laneway.errors import ConfigError, InvalidRequest
from laneway.evals._suite import Case, Instructions
from laneway.governance import ClientSchema

__all__ = [
    "Check",
    "CheckKind",
    "extract_json",
    "load_scorer",
    "normalize_answer",
    "score_answer",
    "verdict",
]

CheckKind = Literal["answer", "format", "instruction", "judge"]

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(.*?)\n?```$", re.DOTALL)
_WORD = re.compile(r"[\w'-]+", re.UNICODE)
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        [
            "the",
            "a",
            "an",
            "and",
            "of",
            "to",
            "is",
            "in",
            "it",
            "that",
            "for",
            "on",
            "with",
            "as",
            "are",
            "be",
            "this",
            "was",
        ]
    ),
    "fr": frozenset(
        [
            "le",
            "la",
            "les",
            "et",
            "de",
            "des",
            "un",
            "une",
            "est",
            "dans",
            "que",
            "pour",
            "sur",
            "avec",
            "au",
            "du",
        ]
    ),
    "de": frozenset(
        [
            "der",
            "die",
            "das",
            "und",
            "ist",
            "ein",
            "eine",
            "nicht",
            "zu",
            "mit",
            "den",
            "von",
            "auf",
            "im",
            "sich",
        ]
    ),
    "es": frozenset(
        [
            "el",
            "la",
            "los",
            "las",
            "y",
            "de",
            "un",
            "una",
            "es",
            "en",
            "que",
            "por",
            "con",
            "para",
            "del",
            "se",
        ]
    ),
}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    kind: CheckKind
    passed: bool
    score: float
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "passed": self.passed,
            "score": self.score,
            "detail": self.detail,
        }


def _check(name: str, kind: CheckKind, passed: bool, detail: str = "") -> Check:
    return Check(name, kind, passed, 1.0 if passed else 0.0, "" if passed else detail)


def normalize_answer(text: str) -> str:
    """Lower case, collapsed spaces, surrounding quotes and final punctuation removed
    (used for ``expected`` and for answer agreement across repeats)."""
    out = " ".join(text.strip().lower().split())
    return out.strip("\"'`*").rstrip(".!。").strip()


def extract_json(text: str) -> tuple[bool, Any]:
    """Parse the answer as JSON (one surrounding Markdown code fence is allowed)."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        return True, orjson.loads(body)
    except orjson.JSONDecodeError:
        return False, None


def _last_number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def _answer_checks(case: Case, text: str) -> list[Check]:
    checks: list[Check] = []
    if case.expected is not None:
        got, want = normalize_answer(text), normalize_answer(case.expected)
        ok = {
            "exact": got == want,
            "contains": re.search(rf"(?<!\w){re.escape(want)}(?!\w)", got) is not None,
            "startswith": got.startswith(want),
        }[case.match]
        checks.append(_check("expected", "answer", ok, f"expected {case.expected!r}"))
    if case.regex is not None:
        ok = re.search(case.regex, text) is not None
        checks.append(_check("regex", "answer", ok, f"no match for /{case.regex}/"))
    lower = text.lower()
    for needle in case.contains:
        checks.append(_check(f"contains:{needle}", "answer", needle.lower() in lower, "missing"))
    for needle in case.not_contains:
        checks.append(
            _check(f"not_contains:{needle}", "answer", needle.lower() not in lower, "present")
        )
    if case.numeric is not None:
        value = _last_number(text)
        ok = value is not None and abs(value - case.numeric.value) <= case.numeric.tolerance
        checks.append(_check("numeric", "answer", ok, f"got {value}, want {case.numeric.value}"))
    return checks


def _format_checks(case: Case, text: str) -> list[Check]:
    if not case.wants_json():
        return []
    ok, value = extract_json(text)
    if not ok:
        return [_check("json", "format", False, "not valid JSON")]
    checks = [_check("json", "format", True)]
    if case.json_schema is not None:
        try:  # the suite loader already refused a bad schema; this is its compiled form
            problem = ClientSchema.compile(case.json_schema, "json_schema").problem(value)
        except InvalidRequest as exc:
            problem = str(exc)
        checks.append(_check("json_schema", "format", problem is None, problem or ""))
    return checks


def _language_ok(text: str, language: str) -> bool:
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 4:
        return True
    hits = {lang: sum(w in stop for w in words) for lang, stop in _STOPWORDS.items()}
    best = max(hits.values())
    return hits[language] > 0 and hits[language] == best


def _format_rule(text: str, rule: str) -> bool:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if rule == "json":
        return extract_json(text)[0]
    if rule == "bullets":
        return bool(lines) and all(re.match(r"^\s*[-*•]\s+", ln) for ln in lines)
    if rule == "numbered":
        return bool(lines) and all(re.match(r"^\s*\d+[.)]\s+", ln) for ln in lines)
    if rule == "one_line":
        return len(lines) == 1
    return re.search(r"(^|\n)\s*(#{1,6}\s|[-*]\s|```)|\*\*", text) is None  # no_markdown


def _instruction_checks(rules: Instructions, text: str) -> list[Check]:
    words = _WORD.findall(text)
    lower = text.lower()
    found: list[Check] = []

    def add(name: str, ok: bool, detail: str) -> None:
        found.append(_check(name, "instruction", ok, detail))

    if rules.max_words is not None:
        add("max_words", len(words) <= rules.max_words, f"{len(words)} words")
    if rules.min_words is not None:
        add("min_words", len(words) >= rules.min_words, f"{len(words)} words")
    if rules.max_chars is not None:
        add("max_chars", len(text.strip()) <= rules.max_chars, f"{len(text.strip())} chars")
    if rules.max_lines is not None:
        n = len([ln for ln in text.strip().splitlines() if ln.strip()])
        add("max_lines", n <= rules.max_lines, f"{n} lines")
    for word in rules.required_words:
        ok = re.search(rf"(?<!\w){re.escape(word.lower())}(?!\w)", lower) is not None
        add(f"required:{word}", ok, "missing")
    for word in rules.forbidden_words:
        ok = re.search(rf"(?<!\w){re.escape(word.lower())}(?!\w)", lower) is None
        add(f"forbidden:{word}", ok, "present")
    if rules.language is not None:
        add("language", _language_ok(text, rules.language), f"not {rules.language}")
    if rules.format is not None:
        add(f"format:{rules.format}", _format_rule(text, rules.format), "wrong format")
    if rules.starts_with is not None:
        ok = text.strip().lower().startswith(rules.starts_with.lower())
        add("starts_with", ok, "wrong start")
    if rules.ends_with is not None:
        ok = text.strip().lower().endswith(rules.ends_with.lower())
        add("ends_with", ok, "wrong end")
    if rules.case is not None:
        letters = [c for c in text if c.isalpha()]
        ok = all(c.islower() if rules.case == "lower" else c.isupper() for c in letters)
        add(f"case:{rules.case}", ok, f"not {rules.case} case")
    return found


ScorerFn = Callable[[str, Case], "bool | float"]


def load_scorer(path: str) -> ScorerFn:
    """Import ``package.module:function`` (or ``package.module.function``)."""
    module_name, _, attr = path.partition(":")
    if not attr:
        module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        fn = getattr(module, attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"scorer {path!r} cannot be imported: {exc}") from None
    if not callable(fn):
        raise ConfigError(f"scorer {path!r} is not callable")
    return fn  # type: ignore[no-any-return]


def _scorer_check(case: Case, text: str) -> Check:
    assert case.scorer is not None
    value = load_scorer(case.scorer)(text, case)
    if isinstance(value, bool):
        return _check("scorer", "answer", value, f"{case.scorer} said no")
    score = min(1.0, max(0.0, float(value)))
    return Check("scorer", "answer", score >= 0.5, score, f"{case.scorer}: {score:.2f}")


def score_answer(case: Case, text: str) -> list[Check]:
    """Every check of ``case`` except the judge's rubric, on the answer ``text``."""
    checks = _answer_checks(case, text) + _format_checks(case, text)
    checks += _instruction_checks(case.instructions, text)
    if case.scorer is not None:
        checks.append(_scorer_check(case, text))
    return checks


def verdict(checks: list[Check]) -> tuple[bool | None, float | None]:
    """(passed, score): all checks pass; the mean check score. ``None`` when unscored."""
    if not checks:
        return None, None
    return all(c.passed for c in checks), sum(c.score for c in checks) / len(checks)
