"""Malformed suites fail with the file, the line and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from laneway.errors import ConfigError
from laneway.evals import load_suite, packaged_suites

GOOD = """name: s
cases:
  - id: a
    prompt: hi
    expected: hello
"""


def _write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    return info.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD + "  - id: b\n    prompt: x\n    regex: '(unclosed'\n",
            ":8: cases[1].regex: not a valid regular expression",
        ),
        (
            GOOD + "  - id: b\n    prompt: x\n    expectd: y\n",
            ":8: cases[1].expectd: unknown field",
        ),
        (
            GOOD + "  - id: b\n    expected: y\n",
            ":6: cases[1]: a case needs 'prompt' or 'messages'",
        ),
        (GOOD + "  - id: a\n    prompt: again\n", ":6: cases[1].id: duplicate id"),
        (
            GOOD + "  - id: b\n    prompt: x\n    json_schema: {type: nope}\n",
            ":8: cases[1].json_schema: not a valid JSON Schema",
        ),
        (
            GOOD + "  - id: b\n    prompt: x\n    instructions: {max_words: -1}\n",
            ":8: cases[1].instructions.max_words:",
        ),
        ("name: s\ncases:\n  - id: a\n    prompt: [unclosed\n", ":5: not valid YAML"),
        (
            "name: s\ndefaults:\n  shoe: 1\ncases:\n  - {id: a, prompt: b}\n",
            ":3: defaults.shoe: not a default",
        ),
        ("cases:\n  - {id: a, prompt: b}\n", ":1: name: Field required"),
        ("name: s\ncases: []\n", ": the suite has no cases"),
    ],
)
def test_malformed_suite_names_file_line_and_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, text)
    message = _error(path)
    assert message.startswith(str(path)), message
    assert expected in message, message


def test_jsonl_cases_report_their_own_line(tmp_path: Path) -> None:
    _write(tmp_path, '{"id": "x", "prompt": "p"}\n\n{"id": "y", "prompt": 3}\n', "more.jsonl")
    path = _write(tmp_path, GOOD + "cases_file: more.jsonl\n")
    message = _error(path)
    assert message.startswith(f"{tmp_path / 'more.jsonl'}:3: prompt:"), message
    _write(tmp_path, '{"id": "x", "prompt": "p"}\n{"id": \n', "more.jsonl")
    assert "more.jsonl:2: not valid JSON" in _error(path)


def test_defaults_and_jsonl_merge(tmp_path: Path) -> None:
    _write(tmp_path, '{"id": "j1", "prompt": "p", "tags": ["own"]}\n', "more.jsonl")
    text = (
        "name: s\ndefaults: {max_tokens: 9, tags: [d]}\ncases_file: more.jsonl\n"
        "cases:\n  - {id: a, prompt: b}\n"
    )
    suite = load_suite(_write(tmp_path, text))
    assert [c.id for c in suite.cases] == ["a", "j1"]
    assert suite.cases[0].max_tokens == 9
    assert suite.cases[0].tags == ("d",)
    assert suite.cases[1].tags == ("own",)
    assert len(suite.digest) == 16


def test_packaged_suites_are_small_and_valid() -> None:
    suites = packaged_suites()
    assert set(suites) == {"basics", "formats"}
    for path in suites.values():
        suite = load_suite(path)
        assert 8 <= len(suite.cases) <= 12


def test_a_jsonl_suite_with_no_case_is_refused(tmp_path: Path) -> None:
    # It used to run 0 cases and exit 0 ("status complete"), where an empty YAML suite
    # is refused.
    for text in ("", "\n  \n"):
        path = _write(tmp_path, text, "empty.jsonl")
        assert _error(path) == f"{path}: the suite has no cases"


def test_duplicate_ids_in_jsonl_are_named_where_they_are(tmp_path: Path) -> None:
    # A JSONL suite with a repeated id used to be accepted: every call was made, then
    # storing the results failed on the database's unique key, losing the run's work.
    path = _write(
        tmp_path,
        '{"id": "a", "prompt": "p"}\n{"id": "b", "prompt": "q"}\n{"id": "a", "prompt": "r"}\n',
        "dup.jsonl",
    )
    assert _error(path) == f"{path}:3: id: duplicate id 'a'"
    # A YAML case repeated in its cases_file: the JSONL line is named, not a YAML line.
    more = _write(tmp_path, '{"id": "b", "prompt": "p"}\n{"id": "a", "prompt": "q"}\n', "m.jsonl")
    path = _write(tmp_path, GOOD + "cases_file: m.jsonl\n")
    assert _error(path) == f"{more}:2: id: duplicate id 'a'"
