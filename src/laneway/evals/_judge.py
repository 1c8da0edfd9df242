"""A judge model: rubric grading of one answer, and blind pairwise comparison of two.

The judge answers in JSON that a schema fixes (``response_format`` ``json_schema``;
where the judge's deployment does not support schemas, JSON mode, then none: the reply
must still be that JSON object): its reasoning first, then the grade (0-10) or the
winner (``A``, ``B`` or ``tie``). Nothing is read from free text, and no small token
cap cuts the reasoning short. A reply that is not that object is a judge failure, never
a grade of 0.

Pairwise verdicts are asked in both orders (answers are only ever "A" and "B", never
model names): the verdict is the winner when both orders agree, else a tie (which
cancels the judge's position bias); the judge's own ties are kept. Two identical answers
(after normalisation) are a tie without a judge call. Every verdict records the judge
model and :data:`PROMPT_VERSION`; :func:`position_bias` summarises how often the judge
chose the same *position* in both orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from laneway.evals._calls import call_model
from laneway.evals._checks import Check, extract_json, normalize_answer
from laneway.evals._suite import Case
from laneway.providers import ChatRequest

if TYPE_CHECKING:
    from laneway.evals._store import PairVerdict
    from laneway.gateway import Gateway

__all__ = [
    "PAIR_SCHEMA",
    "PROMPT_VERSION",
    "RUBRIC_SCHEMA",
    "PairResult",
    "judge_pair",
    "judge_rubric",
    "parse_pair",
    "parse_rubric",
    "position_bias",
]

PROMPT_VERSION = "judge-v2"
_MAX_TOKENS = 1024
_PASS_GRADE = 7

RUBRIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reasoning": {"type": "string"},
        "grade": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["reasoning", "grade"],
    "additionalProperties": False,
}
PAIR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reasoning": {"type": "string"},
        "winner": {"type": "string", "enum": ["A", "B", "tie"]},
    },
    "required": ["reasoning", "winner"],
    "additionalProperties": False,
}

_RUBRIC = """You are grading an answer against a rubric.

Question:
{question}

Answer:
{answer}

Rubric:
{rubric}

Think it through, then grade from 0 (fails the rubric) to 10 (fully meets it).
Reply with a JSON object only: {{"reasoning": "<why>", "grade": <integer 0-10>}}"""

_PAIR = """Two assistants answered the same request. Which answer is better?

Request:
{question}

[Answer A]
{a}

[Answer B]
{b}

Think it through, then decide. Reply with a JSON object only:
{{"reasoning": "<why>", "winner": "A" | "B" | "tie"}}"""


@dataclass(frozen=True, slots=True)
class PairResult:
    """``winner`` is ``a``, ``b`` or ``tie``; ``None`` when the judge failed (no verdict
    is stored, so a resumed run asks again). ``called`` is False for identical answers."""

    winner: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    called: bool = True


def _question(case: Case) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in case.chat_messages())


def _object(text: str) -> Mapping[str, Any] | None:
    ok, value = extract_json(text)
    return value if ok and isinstance(value, dict) else None


def parse_rubric(text: str) -> tuple[int, str] | None:
    """``(grade, reasoning)`` from a reply that is :data:`RUBRIC_SCHEMA`'s object."""
    value = _object(text)
    if value is None:
        return None
    grade, reasoning = value.get("grade"), value.get("reasoning")
    if type(grade) is not int or not 0 <= grade <= 10 or not isinstance(reasoning, str):
        return None
    return grade, reasoning


def parse_pair(text: str) -> tuple[str, str] | None:
    """``(winner, reasoning)`` with winner ``a``, ``b`` or ``tie`` from a reply that is
    :data:`PAIR_SCHEMA`'s object."""
    value = _object(text)
    if value is None:
        return None
    winner, reasoning = value.get("winner"), value.get("reasoning")
    if winner not in ("A", "B", "tie") or not isinstance(reasoning, str):
        return None
    return str(winner).lower(), reasoning


async def _ask(
    gateway: Gateway, judge: str, prompt: str, name: str, schema: dict[str, Any]
) -> tuple[str | None, str | None]:
    """(reply text, None) or (None, error code)."""
    request = ChatRequest(
        model=judge,
        messages=({"role": "user", "content": prompt},),
        stream=False,
        max_tokens=_MAX_TOKENS,
        temperature=0.0,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True},
        },
    )
    report = await call_model(gateway, request, retries=2, delay=0.5)
    if report.result is None:
        return None, report.error.code if report.error is not None else "error"
    return report.result.content or "", None


async def judge_rubric(
    gateway: Gateway, judge: str, case: Case, answer: str
) -> tuple[Check | None, str]:
    """A ``judge`` check (grade/10 as the score; passes at 7 or more) and its detail, or
    ``(None, why)`` when the judge failed or did not answer in the schema."""
    assert case.rubric is not None
    prompt = _RUBRIC.format(question=_question(case), answer=answer, rubric=case.rubric)
    reply, error = await _ask(gateway, judge, prompt, "grade", RUBRIC_SCHEMA)
    if reply is None:
        return None, f"judge {judge} failed ({error})"
    parsed = parse_rubric(reply)
    if parsed is None:
        return None, f"judge {judge} did not answer in the grade schema: {reply[:200]!r}"
    grade, reasoning = parsed
    detail = f"grade {grade}/10 ({judge}, {PROMPT_VERSION}): {reasoning[:500]}"
    return Check("rubric", "judge", grade >= _PASS_GRADE, grade / 10.0, detail), detail


async def _one_order(
    gateway: Gateway, judge: str, question: str, first: str, second: str
) -> tuple[tuple[str, str] | None, str | None]:
    reply, error = await _ask(
        gateway, judge, _PAIR.format(question=question, a=first, b=second), "verdict", PAIR_SCHEMA
    )
    if reply is None:
        return None, error
    parsed = parse_pair(reply)
    return (parsed, None) if parsed is not None else (None, "not in the verdict schema")


async def judge_pair(gateway: Gateway, judge: str, case: Case, a: str, b: str) -> PairResult:
    """Compare answers ``a`` and ``b`` in both orders; disagreement is a tie."""
    base: dict[str, Any] = {"judge": judge, "prompt_version": PROMPT_VERSION}
    if normalize_answer(a) == normalize_answer(b):
        return PairResult("tie", {**base, "identical": True}, called=False)
    question = _question(case)
    forward, err1 = await _one_order(gateway, judge, question, a, b)
    backward, err2 = await _one_order(gateway, judge, question, b, a)
    errors = [e for e in (err1, err2) if e]
    if forward is None or backward is None:
        return PairResult(None, {**base, "errors": errors})
    one = forward[0]
    swapped = {"a": "b", "b": "a", "tie": "tie"}[backward[0]]
    winner = one if one == swapped else "tie"
    detail = {
        **base,
        "forward": one,
        "reversed": swapped,
        "reasoning": [forward[1][:2000], backward[1][:2000]],
        "errors": errors,
    }
    return PairResult(winner, detail)


def position_bias(pairs: Iterable[PairVerdict]) -> dict[str, Any]:
    """How the judge's verdicts moved when the answers swapped places, over the judged
    pairs asked in both orders: ``consistent`` (same answer won both times, or tie both
    times), ``first`` (the answer shown first won both times), ``second`` (the one shown
    second won both times), ``mixed`` (a tie in one order only); shares of ``n``."""
    counts = {"consistent": 0, "first": 0, "second": 0, "mixed": 0}
    for pair in pairs:
        forward, backward = pair.detail.get("forward"), pair.detail.get("reversed")
        if pair.rater != "judge" or forward is None or backward is None:
            continue
        if forward == backward:
            counts["consistent"] += 1
        elif "tie" in (forward, backward):
            counts["mixed"] += 1
        elif forward == "a":  # A first won forward; A shown second lost when reversed
            counts["first"] += 1
        else:
            counts["second"] += 1
    n = sum(counts.values())
    shares = {k: (v / n if n else None) for k, v in counts.items()}
    return {"n": n, **{f"{k}_share": v for k, v in shares.items()}, **counts}
