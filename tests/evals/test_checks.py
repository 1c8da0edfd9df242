"""The scorers: answers, JSON format, instruction constraints, custom scorers."""

from __future__ import annotations

from typing import Any

import pytest

from laneway.errors import ConfigError
from laneway.evals import Case, score_answer, verdict
from laneway.evals._checks import load_scorer


def _case(**fields: Any) -> Case:
    return Case.model_validate({"id": "c", "prompt": "p", **fields})


def _passed(case: Case, text: str) -> bool | None:
    return verdict(score_answer(case, text))[0]


def test_expected_answer_modes() -> None:
    assert _passed(_case(expected="Paris"), ' "paris." ')
    assert not _passed(_case(expected="Paris"), "It is Paris")
    assert _passed(_case(expected="Paris", match="contains"), "It is Paris.")
    assert not _passed(_case(expected="Par", match="contains"), "It is Paris.")
    assert _passed(_case(expected="yes", match="startswith"), "Yes, because")


def test_numeric_regex_contains() -> None:
    assert _passed(_case(numeric=42), "The answer is 42.")
    assert _passed(_case(numeric={"value": 1000, "tolerance": 0}), "1,000")
    assert not _passed(_case(numeric=42), "41")
    assert _passed(_case(numeric={"value": 3.14, "tolerance": 0.01}), "about 3.141")
    assert not _passed(_case(numeric=5), "no number")
    assert _passed(_case(regex=r"^\d{4}-\d{2}-\d{2}$"), "2024-03-01")
    assert _passed(_case(contains=["a"], not_contains=["z"]), "A b")
    assert not _passed(_case(contains=["a"], not_contains=["z"]), "a z")


def test_json_format_and_schema() -> None:
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    case = _case(json_schema=schema)
    assert case.wants_json()
    assert _passed(case, '{"n": 1}')
    assert _passed(case, '```json\n{"n": 1}\n```')
    checks = score_answer(case, '{"n": "one"}')
    assert [(c.name, c.passed) for c in checks] == [("json", True), ("json_schema", False)]
    checks = score_answer(case, "n = 1")
    assert [(c.name, c.kind, c.passed) for c in checks] == [("json", "format", False)]
    assert _passed(_case(response_format="json"), "[1, 2]")


@pytest.mark.parametrize(
    ("rules", "good", "bad"),
    [
        ({"max_words": 3}, "one two three", "one two three four"),
        ({"min_words": 2}, "one two", "one"),
        ({"max_chars": 5}, "abcde", "abcdef"),
        ({"max_lines": 1}, "a b", "a\nb"),
        ({"required_words": ["cat"]}, "the cat sat", "the category"),
        ({"forbidden_words": ["water"]}, "the sea", "salt Water"),
        ({"language": "fr"}, "le chat est dans la maison", "the cat is in the house"),
        ({"format": "bullets"}, "- a\n- b", "a\n- b"),
        ({"format": "numbered"}, "1. a\n2) b", "- a"),
        ({"format": "one_line"}, "just this", "two\nlines"),
        ({"format": "no_markdown"}, "plain text", "**bold**"),
        ({"format": "json"}, '{"a": 1}', "{a: 1}"),
        ({"starts_with": "yes"}, "Yes indeed", "No"),
        ({"ends_with": "done."}, "all done.", "done. not"),
        ({"case": "upper"}, "OK!", "Ok"),
        ({"case": "lower"}, "ok 1", "OK"),
    ],
)
def test_instruction_rules(rules: dict[str, Any], good: str, bad: str) -> None:
    case = _case(instructions=rules)
    good_checks = score_answer(case, good)
    assert good_checks and all(c.kind == "instruction" for c in good_checks)
    assert _passed(case, good) is True
    assert _passed(case, bad) is False


def test_unscored_case_and_mean_score() -> None:
    assert verdict(score_answer(_case(), "anything")) == (None, None)
    passed, score = verdict(score_answer(_case(contains=["a", "b"]), "a"))
    assert passed is False
    assert score == 0.5


def half_scorer(answer: str, case: Case) -> float:
    return 0.5 if "half" in answer else 0.1


def test_python_scorer_by_dotted_path() -> None:
    case = _case(scorer="tests.evals.test_checks:half_scorer")
    checks = score_answer(case, "half")
    assert (checks[0].passed, checks[0].score) == (True, 0.5)
    assert _passed(case, "none") is False
    assert load_scorer("tests.evals.test_checks.half_scorer") is half_scorer
    with pytest.raises(ConfigError, match="cannot be imported"):
        load_scorer("tests.evals.nope:missing")
