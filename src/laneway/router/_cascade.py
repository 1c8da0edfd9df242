"""Cascades: the cheap tier answers first; checks on its answer decide escalation.

A profile may carry ``cascade: {from: TIER, to: TIER, checks: [...]}``. Each check is
a name or ``{name: ..., threshold: ...}``:

=================  ==========================================================  =========
check              escalates when                                              threshold
=================  ==========================================================  =========
``json_schema``    the request asked for a JSON schema (``response_format``)     –
                   and the answer does not parse or does not validate
``tool_arguments`` a tool call's arguments are not JSON or fail the tool's       –
                   parameter schema, or name an undeclared tool
``finish_length``  ``finish_reason`` is ``length`` (the answer was cut off)      –
``empty_refusal``  the answer is empty (no text, no tool call) or a refusal      –
``logprob``        mean token log-probability < threshold (needs logprobs)       required
``verifier``       the learned verifier's escalation probability ≥ threshold     0.5
=================  ==========================================================  =========

Checks run in the order given; the first that fires decides. A check whose input
is missing (no logprobs from the upstream, no verifier in the router) does not fire
and never fails the request. ``check_answer`` is pure: the gateway calls it on the
buffered cheap answer and, when ``escalate`` is true, calls the ``to`` tier.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs

from laneway.errors import ConfigError
from laneway.router._answer_features import is_refusal
from laneway.router._conversation import Conversation, conversation_from_messages
from laneway.router._verifier import Verifier

__all__ = [
    "CHECK_NAMES",
    "AnswerResult",
    "CascadeSpec",
    "CheckSpec",
    "EscalationDecision",
    "RequestInfo",
    "ToolCall",
    "calibrate_logprob_threshold",
    "check_answer",
    "parse_cascade",
]

CHECK_NAMES: tuple[str, ...] = (
    "json_schema",
    "tool_arguments",
    "finish_length",
    "empty_refusal",
    "logprob",
    "verifier",
)
DEFAULT_VERIFIER_THRESHOLD = 0.5


@dataclass(frozen=True, slots=True)
class CheckSpec:
    name: str
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class CascadeSpec:
    from_tier: str
    to_tier: str
    checks: tuple[CheckSpec, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.from_tier,
            "to": self.to_tier,
            "checks": [
                c.name if c.threshold is None else {"name": c.name, "threshold": c.threshold}
                for c in self.checks
            ],
        }


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: str  # the JSON text the model produced


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What of the request the checks need (protocol-neutral)."""

    conversation: Conversation
    task: str | None = None
    response_schema: Mapping[str, Any] | None = None  # JSON schema the answer must meet
    json_object: bool = False  # ``response_format: json_object``: the answer must be JSON
    tools: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name → parameters

    @classmethod
    def from_openai(
        cls,
        messages: Sequence[Mapping[str, Any]],
        *,
        response_format: Any = None,
        tools: Any = None,
        task: str | None = None,
    ) -> RequestInfo:
        """From Chat Completions fields (``response_format``: ``json_schema`` with a
        ``schema``, or ``json_object``; ``tools``: function tools with ``parameters``).
        Malformed parts are ignored, never raised on."""
        schema: Mapping[str, Any] | None = None
        json_object = False
        if isinstance(response_format, Mapping):
            kind = response_format.get("type")
            spec = response_format.get("json_schema")
            if kind == "json_schema" and isinstance(spec, Mapping):
                found = spec.get("schema")
                schema = found if isinstance(found, Mapping) else None
                json_object = schema is None
            elif kind == "json_object":
                json_object = True
        declared: dict[str, Mapping[str, Any]] = {}
        for tool in tools if isinstance(tools, Sequence) else ():
            fn = tool.get("function") if isinstance(tool, Mapping) else None
            if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
                params = fn.get("parameters")
                declared[fn["name"]] = params if isinstance(params, Mapping) else {}
        return cls(conversation_from_messages(messages), task, schema, json_object, declared)


@dataclass(frozen=True, slots=True)
class AnswerResult:
    """The cheap tier's buffered answer."""

    text: str
    finish_reason: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    token_logprobs: Sequence[float] | None = None  # one per generated token, if asked

    @classmethod
    def from_openai_choice(cls, choice: Mapping[str, Any]) -> AnswerResult:
        """From one Chat Completions ``choice`` (``message``, ``finish_reason``,
        ``logprobs.content[].logprob``)."""
        message = choice.get("message")
        message = message if isinstance(message, Mapping) else {}
        content = message.get("content")
        text = content if isinstance(content, str) else ""
        calls: list[ToolCall] = []
        for call in message.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping):
                args = fn.get("arguments")
                calls.append(
                    ToolCall(str(fn.get("name", "")), args if isinstance(args, str) else "")
                )
        logprobs: list[float] | None = None
        block = choice.get("logprobs")
        items = block.get("content") if isinstance(block, Mapping) else None
        if isinstance(items, Sequence):
            logprobs = [
                float(i["logprob"])
                for i in items
                if isinstance(i, Mapping) and isinstance(i.get("logprob"), int | float)
            ]
        reason = choice.get("finish_reason")
        return cls(text, reason if isinstance(reason, str) else None, tuple(calls), logprobs)


@dataclass(frozen=True, slots=True)
class EscalationDecision:
    escalate: bool
    check: str | None  # the check that fired (None: none did)
    prob: float | None  # the verifier's escalation probability, when it ran


def _check_spec(item: Any, where: str) -> CheckSpec:
    name: Any
    threshold: Any
    if isinstance(item, str):
        name, threshold = item, None
    elif isinstance(item, Mapping):
        unknown = set(item) - {"name", "threshold"}
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        name, threshold = item.get("name"), item.get("threshold")
    else:
        raise ConfigError(f"{where}: a check is a name or {{name, threshold}}")
    if name not in CHECK_NAMES:
        raise ConfigError(f"{where}: unknown check {name!r}; known: {', '.join(CHECK_NAMES)}")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ConfigError(f"{where}: threshold must be a number")
        if not math.isfinite(threshold):
            raise ConfigError(f"{where}: threshold must be finite")
        if name == "verifier" and not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"{where}: the verifier threshold is a probability in [0, 1]")
        if name not in ("logprob", "verifier"):
            raise ConfigError(f"{where}: check {name!r} takes no threshold")
    if name == "logprob" and threshold is None:
        raise ConfigError(
            f"{where}: the logprob check needs a threshold (mean token log-probability; "
            "calibrate it with laneway.router.calibrate_logprob_threshold)"
        )
    return CheckSpec(str(name), None if threshold is None else float(threshold))


def parse_cascade(body: Any, tiers: Sequence[str] | None = None) -> CascadeSpec:
    """Validate a ``cascade`` mapping; ``tiers`` (cheapest first), when given, must
    contain ``from`` and ``to`` with ``from`` cheaper than ``to``."""
    if not isinstance(body, Mapping):
        raise ConfigError("cascade: expected a mapping {from, to, checks}")
    unknown = set(body) - {"from", "to", "checks"}
    if unknown:
        raise ConfigError(f"cascade: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    low, high, checks = body.get("from"), body.get("to"), body.get("checks")
    if not isinstance(low, str) or not isinstance(high, str):
        raise ConfigError("cascade: 'from' and 'to' must be tier names")
    if low == high:
        raise ConfigError("cascade: 'from' and 'to' must be different tiers")
    if tiers is not None:
        missing = [t for t in (low, high) if t not in tiers]
        if missing:
            raise ConfigError(
                f"cascade: unknown tier(s) {', '.join(missing)}; known: {', '.join(tiers)}"
            )
        if list(tiers).index(low) > list(tiers).index(high):
            raise ConfigError(f"cascade: 'from' ({low}) must be cheaper than 'to' ({high})")
    if not isinstance(checks, list) or not checks:
        raise ConfigError("cascade: 'checks' must be a non-empty list")
    specs = tuple(_check_spec(c, f"cascade.checks[{i}]") for i, c in enumerate(checks))
    names = [c.name for c in specs]
    if len(set(names)) != len(names):
        raise ConfigError("cascade: a check is listed twice")
    return CascadeSpec(low, high, specs)


_REGEX_BYTES = 1 << 20


def _json_fails(text: str, schema: Mapping[str, Any] | None) -> bool:
    """The answer is not JSON, or fails ``schema``. The client's schema is compiled
    offline (no remote ``$ref``) with linear-time patterns; a schema that does not
    compile holds the answer to nothing."""
    try:
        body = json.loads(text)
    except ValueError:
        return True
    if schema is None:
        return False
    try:
        validator = jsonschema_rs.validator_for(
            dict(schema),
            offline=True,
            validate_formats=False,
            pattern_options=jsonschema_rs.RegexOptions(
                size_limit=_REGEX_BYTES, dfa_size_limit=_REGEX_BYTES
            ),
        )
    except (jsonschema_rs.ValidationError, ValueError, TypeError):
        return False
    return not validator.is_valid(body)


def _tool_arguments_fail(request: RequestInfo, result: AnswerResult) -> bool:
    for call in result.tool_calls:
        if request.tools and call.name not in request.tools:
            return True
        schema = request.tools.get(call.name)
        if _json_fails(call.arguments or "{}", schema):
            return True
    return False


def _mean_logprob(values: Sequence[float] | None) -> float | None:
    if not values:
        return None
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def check_answer(
    spec: CascadeSpec,
    request: RequestInfo,
    result: AnswerResult,
    verifier: Verifier | None = None,
) -> EscalationDecision:
    """Run ``spec``'s checks on the cheap answer, in order; the first that fires wins."""
    prob: float | None = None
    for check in spec.checks:
        fired = False
        if check.name == "json_schema":
            wants_json = request.response_schema is not None or request.json_object
            fired = (
                wants_json
                and not result.tool_calls
                and _json_fails(result.text, request.response_schema)
            )
        elif check.name == "tool_arguments":
            fired = _tool_arguments_fail(request, result)
        elif check.name == "finish_length":
            fired = result.finish_reason == "length"
        elif check.name == "empty_refusal":
            empty = not result.text.strip() and not result.tool_calls
            fired = empty or is_refusal(result.text.lower())
        elif check.name == "logprob":
            mean = _mean_logprob(result.token_logprobs)
            fired = mean is not None and check.threshold is not None and mean < check.threshold
        elif check.name == "verifier" and verifier is not None and not result.tool_calls:
            verdict = verifier.judge(request.conversation, result.text, request.task)
            prob = verdict.escalation
            threshold = DEFAULT_VERIFIER_THRESHOLD if check.threshold is None else check.threshold
            fired = prob >= threshold
        if fired:
            return EscalationDecision(True, check.name, prob)
    return EscalationDecision(False, None, prob)


def calibrate_logprob_threshold(mean_logprobs: Sequence[float], good: Sequence[bool]) -> float:
    """The threshold on mean token log-probability that best separates bad answers
    from good ones on labelled answers (Youden's J: share of bad answers escalated
    minus share of good answers escalated, maximised; an answer escalates when its
    mean log-probability is below the threshold)."""
    if len(mean_logprobs) != len(good) or not mean_logprobs:
        raise ConfigError("logprob calibration needs answers, each with an outcome")
    bad_total = sum(1 for g in good if not g)
    good_total = len(good) - bad_total
    if bad_total == 0 or good_total == 0:
        raise ConfigError("logprob calibration needs both good and bad answers")
    pairs = sorted(zip(mean_logprobs, good, strict=True))
    best, best_j = pairs[0][0], 0.0
    bad_below = good_below = 0
    for i, (value, ok) in enumerate(pairs):
        bad_below += not ok
        good_below += ok
        nxt = pairs[i + 1][0] if i + 1 < len(pairs) else value + 1.0
        if nxt == value:
            continue
        j = bad_below / bad_total - good_below / good_total
        if j > best_j:
            best, best_j = (value + nxt) / 2.0, j
    return float(best)
