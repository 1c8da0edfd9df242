"""Suite files are read with a bound: a YAML suite of at most 4 MiB, a JSONL cases file of
at most 256 MiB and 16 MiB a line, at most 100,000 cases. Past a limit, one ``error:`` line
(exit 1) names the file and the limit; a 2 GB file costs one bounded read, not 2 GB of
memory (the whole file was read before)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import orjson
import pytest

from laneway.errors import ConfigError
from laneway.evals import _suite, load_suite
from tests.evals.test_cli_hostile import _error, _invoke, _runs, home

__all__ = ["home"]  # the fixture, used by name

HEAD = "name: s\ncases:\n  - {id: a, prompt: hi}\n"


def _message(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    return info.value.message


def _sparse(path: Path, head: bytes, size: int) -> Path:
    """A file of ``size`` bytes: ``head``, then zeros that take no disk space."""
    with path.open("wb") as f:
        f.write(head)
        f.truncate(size)
    return path


def test_a_yaml_suite_over_4_mib_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(HEAD + "#" * _suite.MAX_SUITE_BYTES, "utf-8")  # a valid suite, too big
    assert _message(path) == f"{path}: the suite file is larger than its limit of 4 MiB"
    path.write_text(HEAD + "#" * (_suite.MAX_SUITE_BYTES - len(HEAD)), "utf-8")
    assert len(load_suite(path).cases) == 1  # exactly at the limit: read


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("suite.yaml", HEAD.encode(), "the suite file is larger than its limit of 4 MiB"),
        ("suite.jsonl", b'{"id": "a", "prompt": "hi"}\n', ":2: a line longer than its limit"),
    ],
)
def test_a_2_gb_file_costs_one_bounded_read(
    tmp_path: Path, name: str, head: bytes, expected: str
) -> None:
    path = _sparse(tmp_path / name, head, 2 << 30)
    tracemalloc.start()
    try:
        message = _message(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert expected in message
    assert peak < 40 << 20  # at most the limit plus one byte is read (here 4 or 16 MiB)


def _jsonl(path: Path, n: int, prompt: str = "hi") -> Path:
    rows = (orjson.dumps({"id": f"c{i}", "prompt": prompt}) for i in range(n))
    path.write_bytes(b"\n".join(rows) + b"\n")
    return path


def test_a_cases_file_or_line_over_its_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_suite, "MAX_CASES_BYTES", 1000)
    monkeypatch.setattr(_suite, "MAX_CASE_LINE_BYTES", 100)
    path = _jsonl(tmp_path / "cases.jsonl", 100)
    assert _message(path) == f"{path}: the suite file is larger than its limit of 1000 bytes"
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: s\ncases_file: cases.jsonl\n", "utf-8")
    assert _message(suite) == f"{path}: the cases file is larger than its limit of 1000 bytes"
    long = orjson.dumps({"id": "b", "prompt": "x" * 99})
    path.write_bytes(b'{"id": "a", "prompt": "hi"}\n' + long)
    assert _message(path) == f"{path}:2: a line longer than its limit of 100 bytes"


def test_more_cases_than_the_limit_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_suite, "MAX_CASES", 3)
    alone = _jsonl(tmp_path / "alone.jsonl", 4)
    assert _message(alone) == f"{alone}: the suite has more than 3 cases, its limit"
    inline = tmp_path / "inline.yaml"
    inline.write_text(HEAD + "".join(f"  - {{id: c{i}, prompt: x}}\n" for i in range(3)), "utf-8")
    assert _message(inline) == f"{inline}: the suite has more than 3 cases, its limit"
    extra = _jsonl(tmp_path / "extra.jsonl", 3)
    both = tmp_path / "both.yaml"
    both.write_text(HEAD + "cases_file: extra.jsonl\n", "utf-8")
    assert _message(both) == f"{extra}: the suite has more than 3 cases, its limit"
    _jsonl(extra, 2)
    assert len(load_suite(both).cases) == 3  # exactly the limit


def test_jsonl_lines_end_at_newlines_only(tmp_path: Path) -> None:
    """A JSON string may hold U+2028 unescaped (orjson writes it so); the file was split
    with ``str.splitlines``, which cut such a case in two ("not valid JSON")."""
    path = _jsonl(tmp_path / "cases.jsonl", 2, prompt="one\u2028two\x85three")
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    suite = load_suite(path)
    assert [c.prompt for c in suite.cases] == ["one\u2028two\x85three"] * 2


def test_a_jsonl_line_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_bytes(b'{"id": "a", "prompt": "hi"}\n{"id": "b", "prompt": "\xff"}\n')
    assert _message(path) == (
        f"{path}:2: not UTF-8 text (byte 0xff at offset 51); save it as UTF-8"
    )


def test_eval_run_on_a_2_gb_suite_is_one_error_line(home: Path) -> None:
    _sparse(home / "big.yaml", HEAD.encode(), 2 << 30)
    _error(
        _invoke("run", "big.yaml", "--models", "cand"),
        "big.yaml",
        "larger than its limit of 4 MiB",
    )
    assert _runs(home) == [("r1", "created")]
