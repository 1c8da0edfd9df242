from __future__ import annotations

import json

from typer.testing import CliRunner

from laneway.catalog import default_catalog
from laneway.cli import build_app

runner = CliRunner()


def test_list_shows_every_model() -> None:
    result = runner.invoke(build_app(), ["catalog", "list"])
    assert result.exit_code == 0, result.output
    assert f"{len(default_catalog().models)} models" in result.stdout
    assert "mistral-7b-instruct-v0.2" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "mistral-large-3" in line)
    assert "256K" in row  # 256,000 tokens, written the vendor's way
    row = next(line for line in result.stdout.splitlines() if "llama-3.1-8b-instruct" in line)
    assert "128K" in row  # 131,072 tokens
    # a $0/$0 free tier is not a price to plan on: the cheapest paid price is shown
    assert "$0.10/$0.30 (stepfun)" in result.stdout
    assert "$0/$0" not in result.stdout


def test_list_filters_and_json() -> None:
    result = runner.invoke(build_app(), ["catalog", "list", "--closed", "--origin", "cn", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {r["id"] for r in rows} == {"qwen3.6-plus", "qwen3.5-omni"}
    assert all(r["open_weights"] is False and r["origin"] == "CN" for r in rows)

    result = runner.invoke(
        build_app(), ["catalog", "list", "--open-weights", "--license", "MIT", "--json"]
    )
    rows = json.loads(result.stdout)
    assert rows
    assert all(r["license_id"] == "MIT" and r["open_weights"] for r in rows)


def test_list_json_money_is_decimal_strings_and_unknown_null() -> None:
    result = runner.invoke(build_app(), ["catalog", "list", "--json"])
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    gpt = rows["gpt-5.4"]
    assert gpt["prices"][0]["input_per_mtok"] == "2.50"
    assert gpt["prices"][0]["cached_input_per_mtok"] is None
    assert gpt["prices"][1]["cached_input_per_mtok"] == "0.25"
    assert gpt["cheapest"]["provider"] == "openai"
    assert rows["gpt-4o-2024-05-13"]["cheapest"]["input_per_mtok"] == "5.00"
    assert rows["gemma-4-31b"]["cheapest"] is None  # no sourced price: unknown, not 0
    assert rows["gpt-4o-2024-05-13"]["params_total_b"] is None


def test_show_text_has_every_price_with_date_and_source() -> None:
    result = runner.invoke(build_app(), ["catalog", "show", "Claude-Opus-4.8"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Claude Opus 4.8 (claude-opus-4-8)" in out
    assert "sabaoon.dev" in out
    assert "rtsnstudios.com" in out
    assert "2026-06-30" in out
    assert "100" in out
    assert "SWE-bench Verified" in out
    assert "88.6%" in out


def test_show_json() -> None:
    result = runner.invoke(build_app(), ["catalog", "show", "gemini-1.5-pro", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["id"] == "gemini-1.5-pro-002"
    assert data["deprecation_date"] == "2025-09-24"
    assert data["capabilities"]["context_window"] == 2097152
    assert data["benchmarks"][0]["value"] == 71.8
    assert data["prices"] == []


def test_show_unknown_model_fails_with_one_line_on_stderr() -> None:
    result = runner.invoke(build_app(), ["catalog", "show", "gpt-4-o"])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "gpt-4-o" in lines[0]
    assert "gpt-4o-2024-05-13" in lines[0]


def test_help_texts() -> None:
    result = runner.invoke(build_app(), ["catalog", "--help"])
    assert result.exit_code == 0
    assert "list" in result.stdout
    assert "show" in result.stdout
    result = runner.invoke(build_app(), ["catalog", "list", "--help"])
    assert "--open-weights" in result.stdout
    assert "permissive" in result.stdout
