"""Cascade specs and the checks the gateway runs on the cheap tier's answer."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from laneway.errors import ConfigError
from laneway.router import (
    AnswerResult,
    CascadeSpec,
    RequestInfo,
    ToolCall,
    calibrate_logprob_threshold,
    check_answer,
    conversation_from_prompt,
    default_router_dir,
    load_router,
    parse_cascade,
)

TIERS = ("simple", "standard", "complex", "frontier")
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
CONV = conversation_from_prompt("Which city is the capital of Italy? Answer in JSON.")


def spec(*checks: Any) -> CascadeSpec:
    return parse_cascade({"from": "simple", "to": "frontier", "checks": list(checks)}, TIERS)


def test_parse_cascade_accepts_names_and_thresholds() -> None:
    s = spec("json_schema", {"name": "logprob", "threshold": -0.8}, "verifier")
    assert (s.from_tier, s.to_tier) == ("simple", "frontier")
    assert [c.name for c in s.checks] == ["json_schema", "logprob", "verifier"]
    assert s.checks[1].threshold == -0.8
    assert parse_cascade(s.to_dict(), TIERS) == s


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"from": "simple", "to": "frontier", "checks": ["nope"]}, "unknown check 'nope'"),
        ({"from": "simple", "to": "simple", "checks": ["finish_length"]}, "different tiers"),
        ({"from": "frontier", "to": "simple", "checks": ["finish_length"]}, "cheaper"),
        ({"from": "simple", "to": "huge", "checks": ["finish_length"]}, "unknown tier"),
        ({"from": "simple", "to": "frontier", "checks": []}, "non-empty list"),
        ({"from": "simple", "to": "frontier", "checks": ["logprob"]}, "needs a threshold"),
        ({"from": "simple", "to": "frontier", "checks": [{"name": "verifier", "threshold": 2}]},
         r"\[0, 1\]"),
        ({"from": "simple", "to": "frontier", "checks": [{"name": "finish_length",
                                                           "threshold": 1}]}, "no threshold"),
        ({"from": "simple", "to": "frontier", "checks": ["finish_length"], "x": 1}, "unknown key"),
        ({"from": "simple", "to": "frontier", "checks": ["finish_length", "finish_length"]},
         "twice"),
    ],
)  # fmt: skip
def test_parse_cascade_rejects_bad_specs(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_cascade(body, TIERS)


def test_json_schema_check() -> None:
    s = spec("json_schema")
    req = RequestInfo(CONV, response_schema=SCHEMA)
    good = check_answer(s, req, AnswerResult('{"city": "Rome"}', "stop"))
    assert not good.escalate and good.check is None
    for text in ('{"town": "Rome"}', "Rome", '{"city": 3}'):
        d = check_answer(s, req, AnswerResult(text, "stop"))
        assert d.escalate and d.check == "json_schema"
    # No schema asked for: free text passes; json_object mode needs parseable JSON.
    assert not check_answer(s, RequestInfo(CONV), AnswerResult("Rome", "stop")).escalate
    assert check_answer(s, RequestInfo(CONV, json_object=True), AnswerResult("Rome")).escalate


def test_tool_arguments_check() -> None:
    s = spec("tool_arguments")
    req = RequestInfo(CONV, tools={"lookup": SCHEMA})
    ok = AnswerResult("", "tool_calls", [ToolCall("lookup", '{"city": "Rome"}')])
    assert not check_answer(s, req, ok).escalate
    for call in (ToolCall("lookup", '{"city": '), ToolCall("lookup", "{}"), ToolCall("x", "{}")):
        d = check_answer(s, req, AnswerResult("", "tool_calls", [call]))
        assert d.escalate and d.check == "tool_arguments"


def test_finish_length_empty_refusal_and_logprob_checks() -> None:
    s = spec("finish_length", "empty_refusal", {"name": "logprob", "threshold": -1.0})
    req = RequestInfo(CONV)
    assert check_answer(s, req, AnswerResult("Rome is", "length")).check == "finish_length"
    assert check_answer(s, req, AnswerResult("  ", "stop")).check == "empty_refusal"
    refusal = AnswerResult("I'm sorry, I can't help with that.", "stop")
    assert check_answer(s, req, refusal).check == "empty_refusal"
    unsure = AnswerResult("Rome", "stop", token_logprobs=[-2.0, -1.5])
    assert check_answer(s, req, unsure).check == "logprob"
    sure = AnswerResult("Rome", "stop", token_logprobs=[-0.1, -0.2])
    assert not check_answer(s, req, sure).escalate
    # No logprobs from the upstream: the check cannot fire (never fails the request).
    assert not check_answer(s, req, AnswerResult("Rome", "stop")).escalate


def test_verifier_check_uses_the_routers_verifier() -> None:
    router = load_router()
    assert router.scorer.verifier is not None
    req = RequestInfo(CONV, task="math_level5")
    answer = AnswerResult('{"reasoning": "…", "answer": "Rome"}', "stop")
    always = router.check_answer(spec({"name": "verifier", "threshold": 0.0}), req, answer)
    never = router.check_answer(spec({"name": "verifier", "threshold": 1.0}), req, answer)
    assert always.escalate and always.check == "verifier"
    assert always.prob is not None and 0.0 <= always.prob <= 1.0
    assert not never.escalate and never.prob == always.prob
    # Without a verifier the check does not fire.
    assert not check_answer(spec({"name": "verifier", "threshold": 0.0}), req, answer).escalate


def test_logprob_threshold_is_calibrated_between_good_and_bad_answers() -> None:
    values = [-0.1, -0.2, -0.3, -1.5, -2.0, -2.5]
    good = [True, True, True, False, False, False]
    threshold = calibrate_logprob_threshold(values, good)
    assert -1.5 < threshold < -0.3
    with pytest.raises(ConfigError):
        calibrate_logprob_threshold(values, [True] * 6)


def test_a_profile_carries_its_cascade_and_bad_tiers_are_refused(tmp_path: Path) -> None:
    shutil.copytree(default_router_dir(), tmp_path / "r")
    path = tmp_path / "r" / "profiles" / "cascade.json"
    body = json.loads((tmp_path / "r" / "profiles" / "default.json").read_text())
    body["cascade"] = {"from": "simple", "to": "frontier", "checks": ["finish_length"]}
    path.write_text(json.dumps(body))
    router = load_router(tmp_path / "r")
    decision = router.route([{"role": "user", "content": "hi"}], "cascade")
    assert decision.cascade is not None and decision.cascade.to_tier == "frontier"
    assert router.route([{"role": "user", "content": "hi"}]).cascade is None
    body["cascade"]["to"] = "galaxy"
    path.write_text(json.dumps(body))
    with pytest.raises(ConfigError, match="unknown tier"):
        load_router(tmp_path / "r")


def test_request_and_answer_from_openai_fields() -> None:
    req = RequestInfo.from_openai(
        [{"role": "user", "content": "Capital of Italy?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": SCHEMA}},
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": SCHEMA}},
               {"type": "function"}, "junk"],
        task="geo",
    )  # fmt: skip
    assert req.response_schema == SCHEMA and not req.json_object
    assert dict(req.tools) == {"lookup": SCHEMA} and req.task == "geo"
    assert RequestInfo.from_openai([], response_format={"type": "json_object"}).json_object
    choice = {
        "finish_reason": "tool_calls",
        "message": {"content": None, "tool_calls": [
            {"id": "1", "type": "function",
             "function": {"name": "lookup", "arguments": '{"city": 1}'}}]},
        "logprobs": {"content": [{"token": "a", "logprob": -0.5}, {"token": "b"}]},
    }  # fmt: skip
    answer = AnswerResult.from_openai_choice(choice)
    assert answer.text == "" and answer.finish_reason == "tool_calls"
    assert answer.tool_calls == (ToolCall("lookup", '{"city": 1}'),)
    assert answer.token_logprobs == [-0.5]
    decision = check_answer(spec("tool_arguments"), req, answer)
    assert decision.escalate and decision.check == "tool_arguments"


def test_json_schema_check_never_fetches_and_ignores_a_broken_schema() -> None:
    s = spec("json_schema")
    remote = {"$ref": "https://example.invalid/schema.json"}
    broken = {"type": "object", "properties": {"x": {"type": 12}}}
    for schema in (remote, broken):
        decision = check_answer(s, RequestInfo(CONV, response_schema=schema), AnswerResult("{}"))
        assert not decision.escalate
    patterned = {"type": "string", "pattern": "^(a+)+$"}  # catastrophic for a backtracker
    start = time.perf_counter()
    bad = check_answer(s, RequestInfo(CONV, response_schema=patterned),
                       AnswerResult(json.dumps("a" * 5000 + "!")))  # fmt: skip
    assert bad.escalate and time.perf_counter() - start < 1.0
