"""Signals of one answer that a learned verifier reads (numpy and the standard library only).

Every signal is bounded (log counts, fractions, flags) and computed on at most the
first ``_SCAN_HEAD`` and last ``_SCAN_TAIL`` characters of the answer, so an answer
of any size costs well under a millisecond. They describe the answer's form, not its
topic: whether it is empty or a refusal, whether a JSON answer parses and carries a
non-empty ``answer``, hedging and self-correction, repetition, truncation, and its
size against the prompt's.
"""

from __future__ import annotations

import json
import math
import re

__all__ = ["ANSWER_FEATURE_NAMES", "answer_features", "is_refusal"]

_SCAN_HEAD = 3000
_SCAN_TAIL = 1000

_REFUSAL = re.compile(
    r"\b(?:i(?:'m| am) (?:sorry|unable|not able)|i can(?:not|'t) (?:help|assist|provide|"
    r"comply|do that|answer)|as an ai\b|i won't be able|i must decline|i do not have "
    r"(?:access|the ability))",
)
_HEDGE = re.compile(
    r"\b(?:maybe|perhaps|possibly|probably|might|not sure|unsure|i think|i believe|"
    r"approximately|roughly|it seems|unclear|assum(?:e|ing|ption))\b",
)
_SELF_CORRECT = re.compile(
    r"\b(?:wait|actually|mistake|let me re|re-?evaluat\w*|re-?check\w*|re-?calculat\w*|"
    r"correction|oops|on second thought|i made an error|however)\b",
)
_FENCED_JSON = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)
_NUMERIC = re.compile(r"[-+]?\$?\d[\d,]*(?:\.\d+)?(?:/\d+)?%?")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+", re.MULTILINE)
_HEADER = re.compile(r"^\s*#{1,6}\s", re.MULTILINE)
_ERROR_WORDS = re.compile(r"\b(?:error|exception|undefined|invalid|impossible|no solution)\b")

ANSWER_FEATURE_NAMES: tuple[str, ...] = (
    "log_answer_chars",
    "log_prompt_chars",
    "log_answer_prompt_ratio",
    "empty",
    "refusal",
    "log_hedges",
    "log_self_corrections",
    "json_found",
    "json_answer_present",
    "json_answer_numeric",
    "log_json_answer_chars",
    "repeated_lines",
    "distinct_words",
    "truncated",
    "digit_frac",
    "log_code_fences",
    "log_equals",
    "log_list_items",
    "log_headers",
    "log_error_words",
    "log_questions",
    "answer_integer",
    "log_answer_repeats",
    "last_number_is_answer",
    "answer_in_prompt",
)


def is_refusal(text: str) -> bool:
    """A refusal phrase in the first 300 characters of the answer."""
    return _REFUSAL.search(text[:300].lower()) is not None


def _json_answer(text: str) -> tuple[float, str | None, str]:
    """(found, the ``answer`` field, the rest of the object's text) of a JSON object."""
    match = _FENCED_JSON.search(text)
    candidate = match.group(1) if match else None
    if candidate is None:
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            return 0.0, None, ""
        candidate = text[start : end + 1]
    try:
        body = json.loads(candidate)
    except ValueError:
        return 0.0, None, ""
    if not isinstance(body, dict):
        return 1.0, None, ""
    answer = body.get("answer")
    rest = " ".join(str(v) for k, v in body.items() if k != "answer")
    if answer is None or str(answer).strip() == "":
        return 1.0, None, rest
    return 1.0, str(answer).strip(), rest


def _answer_signals(value: str | None, rest: str, prompt: str) -> list[float]:
    """present, numeric, log length, integer, repeats in the reasoning, the reasoning's
    last number is the answer, the answer appears in the prompt."""
    if value is None:
        return [0.0] * 7
    compact = value.replace(" ", "")
    numeric = _NUMERIC.fullmatch(compact) is not None
    numbers = _NUMERIC.findall(rest[-400:])
    last = numbers[-1].replace(",", "") if numbers else None
    return [
        1.0,
        1.0 if numeric else 0.0,
        math.log1p(len(value)),
        1.0 if compact.lstrip("-+").isdigit() else 0.0,
        math.log1p(rest.count(value)) if len(value) < 200 else 0.0,
        1.0 if last is not None and last == compact.replace(",", "") else 0.0,
        1.0 if 0 < len(value) < 200 and value in prompt else 0.0,
    ]


def answer_features(answer: str, prompt: str, prompt_chars: int | None = None) -> list[float]:
    """The bounded answer signals, in ``ANSWER_FEATURE_NAMES`` order (``prompt``: the
    last user turn; ``prompt_chars``: the whole conversation's size, default its size)."""
    if prompt_chars is None:
        prompt_chars = len(prompt)
    full = len(answer)
    text = answer if full <= _SCAN_HEAD + _SCAN_TAIL else answer[:_SCAN_HEAD] + answer[-_SCAN_TAIL:]
    lower = text.lower()
    stripped = text.strip()
    n = max(len(text), 1)
    lines = [line.strip() for line in stripped.splitlines() if line.strip()]
    words = lower.split()
    found, value, rest = _json_answer(text)
    present, numeric, answer_len, integer, repeats, last_is, in_prompt = _answer_signals(
        value, rest, prompt[:_SCAN_HEAD]
    )
    last = stripped[-1:] if stripped else ""
    return [
        math.log1p(full),
        math.log1p(prompt_chars),
        math.log1p(full) - math.log1p(prompt_chars),
        1.0 if len(stripped) < 2 else 0.0,
        1.0 if is_refusal(lower) else 0.0,
        math.log1p(len(_HEDGE.findall(lower))),
        math.log1p(len(_SELF_CORRECT.findall(lower))),
        found,
        present,
        numeric,
        answer_len,
        1.0 - len(set(lines)) / len(lines) if lines else 0.0,
        len(set(words)) / len(words) if words else 0.0,
        1.0 if last.isalnum() else 0.0,  # ends mid-word or mid-number: cut off
        sum(map(str.isdigit, text)) / n,
        math.log1p(text.count("```")),
        math.log1p(text.count("=")),
        math.log1p(len(_LIST_ITEM.findall(text))),
        math.log1p(len(_HEADER.findall(text))),
        math.log1p(len(_ERROR_WORDS.findall(lower))),
        math.log1p(text.count("?")),
        integer,
        repeats,
        last_is,
        in_prompt,
    ]
