"""Hostile and out-of-range inputs to ``laneway advise`` / ``laneway tco``: one-line errors
(exit 1, or 2 for a wrong command line; ``error: ...`` on stderr, no traceback), and
``--set`` winning over the file."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner, Result

from laneway.advisor import Workload, advise, default_assumptions, load_workload
from laneway.advisor._workload import Task, Traffic
from laneway.cli._advise import register
from laneway.cli._app import build_app
from laneway.errors import InvalidRequest

EXAMPLE = Path(__file__).parents[2] / "examples" / "workload.yaml"
MODEL = "llama-3.3-70b-instruct"


def _app() -> typer.Typer:
    app = build_app()
    if not any(c.name == "advise" for c in app.registered_commands):
        register(app)
    return app


def _run(*args: str) -> Result:
    return CliRunner().invoke(_app(), list(args))


def _usage_error(result: Result, *words: str) -> str:
    """A wrong command line: exit 2, one ``error:`` line naming ``words``, no traceback."""
    return _error_line(result, 2, *words)


def _input_error(result: Result, *words: str) -> str:
    """A file that cannot be used (README, "Exit codes"): exit 1, one ``error:`` line."""
    return _error_line(result, 1, *words)


def _error_line(result: Result, code: int, *words: str) -> str:
    """Exit ``code``, one ``error:`` line on stderr naming ``words``, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in result.output
    for word in words:
        assert word in err, (word, err)
    return err


def _profile(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "t",
        "tasks": [
            {
                "name": "bulk",
                "tier": "simple",
                "requests_per_day": 200_000,
                "input_tokens": 600,
                "output_tokens": 100,
            }
        ],
        "traffic": {"peak_to_mean": 1.5},
        "assumptions": {"gpu_hourly_usd": 2.5},
    }
    base.update(overrides)
    return base


def _file(tmp_path: Path, data: dict[str, Any] | str, name: str = "w.yaml") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return str(path)


def _task(**fields: Any) -> dict[str, Any]:
    task: dict[str, Any] = _profile()["tasks"][0]
    return {**task, **fields}


def _self_hosted(data: dict[str, Any]) -> Decimal:
    (path,) = [p for p in data["paths"] if p["name"] == "self_hosted"]
    return Decimal(path["monthly_usd"])


def _assumption(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in data["assumptions"] if a["name"] == name)


# --- 1. precedence: defaults < workload file < --set ------------------------------------------


def test_set_overrides_the_workload_file(tmp_path: Path) -> None:
    path = _file(tmp_path, _profile())
    runs = {}
    for hourly in ("1", "100"):
        result = _run("advise", path, "--set", f"gpu_hourly_usd={hourly}", "--json")
        assert result.exit_code == 0, result.output
        runs[hourly] = json.loads(result.stdout)
        row = _assumption(runs[hourly], "gpu_hourly_usd")
        assert (row["value"], row["source"]) == (hourly, "command line")
    assert _self_hosted(runs["100"]) > _self_hosted(runs["1"]) * 10
    plain = json.loads(_run("advise", path, "--json").stdout)
    row = _assumption(plain, "gpu_hourly_usd")
    assert (row["value"], row["source"]) == ("2.5", "workload file")
    assert _self_hosted(runs["1"]) < _self_hosted(plain) < _self_hosted(runs["100"])


def test_example_file_honours_set() -> None:
    results = [
        json.loads(_run("advise", str(EXAMPLE), "--set", f"gpu_hourly_usd={v}", "--json").stdout)
        for v in ("1", "100")
    ]
    low, high = (
        [p["monthly_usd"] for p in r["paths"] if p["name"] == "self_hosted"] for r in results
    )
    assert low != high


def test_library_precedence(tmp_path: Path) -> None:
    workload = load_workload(Path(_file(tmp_path, _profile())))
    base = default_assumptions().override({"days_per_month": 28}, source="caller")
    a = advise(workload, assumptions=base, overrides={"gpu_hourly_usd": "7"}).assumptions
    assert a.number("gpu_hourly_usd") == Decimal(7)
    assert a.get("gpu_hourly_usd").source == "command line"
    assert a.get("days_per_month").source == "caller"
    only_file = advise(workload, assumptions=base).assumptions
    assert only_file.get("gpu_hourly_usd").source == "workload file"


# --- 2. tracebacks -> one-line errors ---------------------------------------------------------


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    _input_error(_run("advise", str(path)), "bin.yaml", "not UTF-8", "0xff")


_TEMPLATE = """name: t
tasks:
  - name: bulk
    tier: simple
    requests_per_day: {requests_per_day}
    input_tokens: {input_tokens}
    output_tokens: 100
    cached_fraction: {cached_fraction}
"""


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("requests_per_day", ".nan"),
        ("requests_per_day", ".inf"),
        ("requests_per_day", "1e30"),
        ("input_tokens", "1e12"),
        ("cached_fraction", ".nan"),
    ],
)
def test_task_numbers_must_be_finite_and_bounded(tmp_path: Path, field: str, value: str) -> None:
    fields = {"requests_per_day": "1000", "input_tokens": "600", "cached_fraction": "0"}
    path = _file(tmp_path, _TEMPLATE.format(**{**fields, field: value}))
    line = 3 + list(fields).index(field) + (1 if field == "cached_fraction" else 0) + 2
    words = ("finite",) if "n" in value else ("at most",)
    _input_error(_run("advise", path), f"w.yaml:{line}: tasks[0].{field}", *words)


def test_volume_over_the_limit(tmp_path: Path) -> None:
    task = _task(requests_per_day=10**12, input_tokens=10**8)
    _input_error(_run("advise", _file(tmp_path, _profile(tasks=[task]))), "tasks[0]", "limit")


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("gpu_hourly_usd=nan", ("gpu_hourly_usd", "finite")),
        ("gpu_hourly_usd=inf", ("gpu_hourly_usd", "finite")),
        ("gpu_hourly_usd=1e400", ("gpu_hourly_usd", "at most")),
        ("gpu_hourly_usd=-1", ("gpu_hourly_usd",)),
        ("max_gpu_utilisation=0", ("max_gpu_utilisation", "above 0")),
        ("max_gpu_utilisation=5", ("max_gpu_utilisation", "at most 1")),
        ("gpu_memory_usable_fraction=0", ("gpu_memory_usable_fraction", "above 0")),
        ("days_per_month=0", ("days_per_month", "above 0")),
        ("gpu_memory_gb=0", ("gpu_memory_gb",)),
        ("throughput_tps_per_gpu=0", ("throughput_tps_per_gpu", "above 0")),
        ("infra_overhead_multiplier=0.5", ("infra_overhead_multiplier", "at least 1")),
        ("gpu_memory_usable_fraction=0.01", ("usable per GPU",)),
        ("gpu=zz9", ("gpu", "h100")),
        ("colour=1", ("colour", "unknown assumption")),
    ],
)
def test_set_rejects_out_of_range(tmp_path: Path, setting: str, words: tuple[str, ...]) -> None:
    path = _file(tmp_path, _profile())
    _usage_error(_run("advise", path, "--set", setting), "--set", *words)


def test_set_accepts_the_ends_of_a_range(tmp_path: Path) -> None:
    path = _file(tmp_path, _profile())
    for setting in ("max_gpu_utilisation=1", "days_per_month=31", "ops_fte_share=0"):
        result = _run("advise", path, "--set", setting, "--json")
        assert result.exit_code == 0, (setting, result.output)


@pytest.mark.parametrize(
    "assumptions",
    [{"gpu_memory_gb": 0}, {"days_per_month": ".nan"}, {"max_gpu_utilisation": 0}],
)
def test_file_assumptions_are_checked_with_a_line(
    tmp_path: Path, assumptions: dict[str, Any]
) -> None:
    text = yaml.safe_dump(_profile(assumptions=assumptions), sort_keys=False)
    text = text.replace("'.nan'", ".nan")
    path = _file(tmp_path, text)
    (name,) = assumptions
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip().startswith(name))
    _input_error(_run("advise", path), f"w.yaml:{line}: assumptions.{name}")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--tokens-per-day", "1e6", "--gpu-hourly", "nan"), ("--gpu-hourly", "finite")),
        (("--tokens-per-day", "1e6", "--gpu-hourly", "1e400"), ("--gpu-hourly", "finite")),
        (("--tokens-per-day", "inf", "--gpu-hourly", "2"), ("--tokens-per-day", "finite")),
        (("--tokens-per-day", "1e30", "--gpu-hourly", "2"), ("--tokens-per-day", "at most")),
        (("--tokens-per-day", "1e6", "--gpu-hourly", "2", "--throughput", "0"), ("--throughput",)),
        (("--tokens-per-day", "1e6", "--set", "days_per_month=0"), ("days_per_month",)),
    ],
)
def test_tco_rejects_bad_numbers(args: tuple[str, ...], words: tuple[str, ...]) -> None:
    _usage_error(_run("tco", "--model", MODEL, *args), *words)


def test_out_must_be_a_file_in_an_existing_directory(tmp_path: Path) -> None:
    path = _file(tmp_path, _profile())
    missing = tmp_path / "nope" / "deeper" / "r.html"
    _input_error(_run("advise", path, "--out", str(missing)), "--out", "does not exist")
    assert not missing.parent.exists()
    _input_error(_run("advise", path, "--out", str(tmp_path)), "--out", "is a directory")


# --- 3. low: n/a, tiers, zero volume ----------------------------------------------------------


def test_tco_zero_volume_prints_na() -> None:
    result = _run("tco", "--tokens-per-day", "0", "--model", MODEL, "--gpu-hourly", "2")
    assert result.exit_code == 0, result.output
    assert "None" not in result.stdout and "n/a" in result.stdout
    data = _run("tco", "--tokens-per-day", "0", "--model", MODEL, "--gpu-hourly", "2", "--json")
    assert json.loads(data.stdout)["usd_per_million_tokens"] is None


def test_unknown_tier_is_rejected(tmp_path: Path) -> None:
    path = _file(tmp_path, _profile(tasks=[_task(tier="bogus")]))
    _input_error(_run("advise", path), "tasks[0].tier", "'bogus'", "simple, standard")


def test_zero_volume_is_not_advised_on(tmp_path: Path) -> None:
    path = _file(tmp_path, _profile(tasks=[_task(requests_per_day=0)]))
    _input_error(_run("advise", path), "0 tokens/day", "nothing to advise on")
    empty = Workload(
        name="empty",
        tasks=(Task("a", "simple", Decimal(0), Decimal(10), Decimal(10)),),
        traffic=Traffic(Decimal(1)),
    )
    with pytest.raises(InvalidRequest, match="no volume"):
        advise(empty)


# --- 4. YAML errors keep their line -----------------------------------------------------------


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "name: x\ntasks: [a, b\nname: y\n", "bad.yaml")
    _input_error(_run("advise", path), "bad.yaml:3:", "not valid YAML")


def test_validation_errors_name_the_line(tmp_path: Path) -> None:
    text = yaml.safe_dump(_profile(traffic={"peak_to_mean": 0.5}), sort_keys=False)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "peak_to_mean" in t)
    _input_error(_run("advise", _file(tmp_path, text)), f"w.yaml:{line}: traffic.peak_to_mean")


def test_a_task_named_twice_is_rejected(tmp_path: Path) -> None:
    # A task pasted twice was advised on at twice its volume, without a word.
    path = _file(tmp_path, _profile(tasks=[_task(name="chat"), _task(name="chat")]))
    _input_error(_run("advise", path), "tasks[1].name", "'chat' names an earlier task")


def test_a_deeply_nested_or_huge_workload_is_one_error(tmp_path: Path) -> None:
    from laneway.errors import InvalidRequest

    nested = tmp_path / "nested.yaml"
    nested.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(InvalidRequest, match="nested too deeply"):
        load_workload(nested)
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as handle:
        handle.truncate(5 * 1024 * 1024)
    with pytest.raises(InvalidRequest, match="larger than its limit of 4 MiB"):
        load_workload(huge)
