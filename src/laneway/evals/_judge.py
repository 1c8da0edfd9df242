"""A judge model: rubric grading of one answer, and blind pairwise comparison of two.

Pairwise verdicts are asked in both orders (the answers are only ever "A" and "B", never
model names); when the two orders disagree the verdict is a tie, which cancels the
judge's position bias.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from laneway.evals._checks import Check
from laneway.evals._suite import Case
from laneway.providers import ChatRequest

if TYPE_CHECKING:
    from laneway.server import Gateway

__all__ = ["PairResult", "judge_pair", "judge_rubric", "parse_choice", "parse_grade"]

_RUBRIC = """You are grading an answer against a rubric.

Question:
{question}

Answer:
{answer}

Rubric:
{rubric}

Reply with a single integer grade from 0 (fails the rubric) to 10 (fully meets it)."""

_PAIR = """Two assistants answered the same request. Which answer is better?

Request:
{question}

[Answer A]
{a}

[Answer B]
{b}

Reply with exactly one word: A, B or TIE."""

_PASS_GRADE = 7


@dataclass(frozen=True, slots=True)
class PairResult:
    winner: str  # "a", "b" or "tie"
    detail: dict[str, Any] = field(default_factory=dict)


def _question(case: Case) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in case.chat_messages())


def parse_grade(text: str) -> int | None:
    """The first integer 0-10 in the judge's reply."""
    for found in re.findall(r"\d+", text):
        value = int(found)
        if 0 <= value <= 10:
            return value
    return None


def parse_choice(text: str) -> str | None:
    """``a``, ``b`` or ``tie`` from the judge's reply (the last such word wins)."""
    found = re.findall(r"\b(A|B|TIE)\b", text.upper())
    return found[-1].lower() if found else None


async def _ask(gateway: Gateway, judge: str, prompt: str) -> tuple[str | None, str | None]:
    request = ChatRequest(
        model=judge,
        messages=({"role": "user", "content": prompt},),
        stream=False,
        max_tokens=16,
        temperature=0.0,
    )
    from laneway.server import run_request

    report = await run_request(gateway, request, source="eval")
    if report.result is None:
        return None, report.error.code if report.error is not None else "error"
    return report.result.content or "", None


async def judge_rubric(gateway: Gateway, judge: str, case: Case, answer: str) -> Check:
    """A ``judge`` check: grade/10 as the score; passes at 7 or more."""
    assert case.rubric is not None
    prompt = _RUBRIC.format(question=_question(case), answer=answer, rubric=case.rubric)
    reply, error = await _ask(gateway, judge, prompt)
    grade = parse_grade(reply) if reply is not None else None
    if grade is None:
        return Check("rubric", "judge", False, 0.0, f"judge gave no grade ({error or reply!r})")
    return Check("rubric", "judge", grade >= _PASS_GRADE, grade / 10.0, f"grade {grade}/10")


async def judge_pair(gateway: Gateway, judge: str, case: Case, a: str, b: str) -> PairResult:
    """Compare answers ``a`` and ``b`` in both orders; disagreement is a tie."""
    question = _question(case)
    first, err1 = await _ask(gateway, judge, _PAIR.format(question=question, a=a, b=b))
    second, err2 = await _ask(gateway, judge, _PAIR.format(question=question, a=b, b=a))
    one = parse_choice(first) if first is not None else None
    two = parse_choice(second) if second is not None else None
    swapped = {"a": "b", "b": "a", "tie": "tie"}.get(two or "")
    winner = one if one is not None and one == swapped else "tie"
    detail = {"forward": one, "reversed": swapped, "errors": [e for e in (err1, err2) if e]}
    return PairResult(winner, detail)
