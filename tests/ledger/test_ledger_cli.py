from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from laneway.cli import build_app
from laneway.ledger import LedgerRow

from .conftest import row

D = Decimal


@pytest.fixture
def seeded(engine: sa.Engine, db_url: str, write_rows: Callable[[list[LedgerRow]], None]) -> str:
    now = datetime.now(UTC).replace(microsecond=0)
    old = now - timedelta(days=3)
    write_rows(
        [
            row("n1", 0, ts=now, deployment="gpt-mini", tier="simple", latency_ms=120.0),
            row("n1", 1, ts=now, deployment="gpt-mini", prompt_tokens=1200, completion_tokens=300,
                cost_usd=D("0.000000123")),
            row("n2", 0, ts=now, deployment="mystery", tier="simple", latency_ms=80.0,
                status=502, error_kind="upstream_error"),
            row("n2", 1, ts=now, deployment="mystery", prompt_tokens=10, completion_tokens=0),
            row("e1", 0, ts=now, source="eval", deployment="gpt-mini"),
            row("o1", 0, ts=old, deployment="gpt-old", cost_usd=D("1")),
        ]
    )  # fmt: skip
    return db_url


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), ["usage", *args], env=env)
    return result.exit_code, result.stdout, result.stderr


def test_json_output_has_decimal_strings_nulls_and_utc_times(seeded: str) -> None:
    code, out, _ = _invoke("--database", seeded, "--json")
    assert code == 0
    groups = {g["key"]: g for g in json.loads(out)}
    assert set(groups) == {"gpt-mini", "mystery"}  # default: last 24h, api traffic only
    mini, mystery = groups["gpt-mini"], groups["mystery"]
    assert mini["cost_usd"] == "0.000000123"
    assert (mini["requests"], mini["prompt_tokens"], mini["completion_tokens"]) == (1, 1200, 300)
    assert mini["latency_p50_ms"] == 120.0
    assert mystery["cost_usd"] is None
    assert (mystery["cost_known_usd"], mystery["cost_unknown_requests"]) == ("0", 1)
    assert (mystery["errors"], mystery["error_rate"]) == (1, 1.0)
    assert mini["first_at"].endswith("Z")
    assert datetime.fromisoformat(mini["first_at"]).tzinfo is not None


def test_json_since_all_source_all_and_group_by_tier(seeded: str) -> None:
    code, out, _ = _invoke(
        "--database", seeded, "--json", "--since", "all", "--source", "all", "--by", "tier"
    )
    assert code == 0
    groups = {g["key"]: g for g in json.loads(out)}
    assert groups["simple"]["requests"] == 2
    assert groups[None]["requests"] == 2  # the eval row and the old row have no tier
    # the eval request has no price: the group's cost is unknown, the known part is shown
    assert groups[None]["cost_usd"] is None
    assert (groups[None]["cost_known_usd"], groups[None]["cost_unknown_requests"]) == ("1", 1)


def test_source_shadow_counts_only_the_copies_shadow_rules_sent(
    engine: sa.Engine, db_url: str, write_rows: Callable[[list[LedgerRow]], None]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    write_rows(
        [
            row("c1", 0, ts=now, deployment="prod", tier="simple"),
            row("s1", 0, ts=now, source="shadow", deployment="cand"),
            row("s1", 1, ts=now, source="shadow", deployment="cand", cost_usd=D("0.5")),
        ]
    )  # fmt: skip
    code, out, err = _invoke("--database", db_url, "--json", "--source", "shadow")
    assert code == 0, err
    groups = {g["key"]: g for g in json.loads(out)}
    assert set(groups) == {"cand"} and groups["cand"]["cost_usd"] == "0.5"
    code, out, _ = _invoke("--database", db_url, "--json")
    assert {g["key"] for g in json.loads(out)} == {"prod"}


def test_table_output(seeded: str) -> None:
    code, out, _ = _invoke("--database", seeded, "--by", "deployment")
    assert code == 0
    assert "gpt-mini" in out
    assert "mystery" in out
    assert "unknown" in out
    assert "1,200" in out
    assert "gpt-old" not in out


def test_database_url_from_the_environment(seeded: str) -> None:
    code, out, _ = _invoke("--json", "--by", "day", env={"LANEWAY_DATABASE_URL": seeded})
    assert code == 0
    (day,) = json.loads(out)
    assert day["requests"] == 2
    assert day["key"] == day["first_at"][:10]


def test_empty_window_says_so(seeded: str) -> None:
    code, out, _ = _invoke("--database", seeded, "--since", "2099-01-01")
    assert code == 0
    assert "No requests" in out


def test_missing_database_is_a_one_line_error_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "laneway.db"
    code, _, err = _invoke("--database", f"sqlite:///{path}")
    assert code == 1
    assert "no ledger database" in err
    assert len(err.strip().splitlines()) == 1
    assert not path.exists()
    assert not path.parent.exists()


def test_unmigrated_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bare.db"
    sa.create_engine(f"sqlite:///{path}").connect().close()
    path.touch()
    code, _, err = _invoke("--database", f"sqlite:///{path}")
    assert code == 1
    assert "not migrated" in err


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    code, _, err = _invoke("--database", f"sqlite:///{path}")
    assert code == 1
    assert err.startswith("error: cannot read the ledger")


@pytest.mark.parametrize("since", ["yesterday", "24", "2026-02-30"])
def test_bad_since_gives_a_clear_message(seeded: str, since: str) -> None:
    code, _, err = _invoke("--database", seeded, "--since", since)
    assert code == 2
    assert "--since" in err
    assert "24h, 30d" in err


def test_bad_grouping_is_refused(seeded: str) -> None:
    code, _, err = _invoke("--database", seeded, "--by", "colour")
    assert code == 2
    assert "colour" in err


@pytest.mark.parametrize("url", ["notaurl", "postgresql+nosuchdriver://u:secret@h/db"])
def test_a_url_that_cannot_be_opened_is_one_line_and_hides_the_password(url: str) -> None:
    code, _, err = _invoke("--database", url)
    assert code in (1, 2)
    assert err.startswith("error:") and "Traceback" not in err
    assert "secret" not in err


def test_a_span_beyond_the_calendar_means_all_time(seeded: str) -> None:
    code, out, _ = _invoke("--database", seeded, "--since", "99999999d", "--json")
    assert code == 0
    assert {g["key"] for g in json.loads(out)} == {"gpt-mini", "mystery", "gpt-old"}


def test_the_config_names_the_database_as_for_serve(
    seeded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "laneway.yaml").write_text(f"database:\n  url: {seeded}\n")
    code, out, err = _invoke("--json", env={"LANEWAY_DATABASE_URL": "", "LANEWAY_CONFIG": ""})
    assert code == 0, err
    assert {g["key"] for g in json.loads(out)} == {"gpt-mini", "mystery"}


def test_audit_reads_without_creating_and_accepts_all(seeded: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(build_app(), ["audit", "--database", seeded, "--since", "all",
                                              "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    # the summary rows (attempt 0) of every source, the 3-day-old one included
    assert {r["request_id"] for r in json.loads(result.stdout)} == {"n1", "n2", "e1", "o1"}
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not sqlite at all" * 300)
    before = garbage.read_bytes()
    bad = CliRunner().invoke(build_app(), ["audit", "--database", f"sqlite:///{garbage}"])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: cannot")
    assert "file is not a database" in bad.stderr
    assert garbage.read_bytes() == before
    missing = tmp_path / "nope" / "ledger.db"
    gone = CliRunner().invoke(build_app(), ["audit", "--database", f"sqlite:///{missing}"])
    assert gone.exit_code == 1 and not missing.parent.exists()


RID = "chatcmpl-5f0c3a9e1b2d4c6f00000001"  # a random per-process prefix and a counter


@pytest.fixture
def routed(engine: sa.Engine, db_url: str, write_rows: Callable[[list[LedgerRow]], None]) -> str:
    now = datetime.now(UTC).replace(microsecond=0)
    write_rows(
        [
            row(RID, 0, ts=now, deployment="local", tier="standard", route_score=0.4234,
                route_reason="router: standard", cost_usd=D(0)),
            row("chatcmpl-77aa00000001", 0, ts=now, requested_model="local", deployment="local",
                cost_usd=D(0)),
        ]
    )  # fmt: skip
    return db_url


def _audit(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), ["audit", *args], env={"COLUMNS": "250"})
    return result.exit_code, result.stdout, result.stderr


def test_audit_shows_the_whole_request_id_its_tier_and_score(routed: str) -> None:
    code, out, _ = _audit("--database", routed)
    assert code == 0
    header = out.splitlines()[0]
    assert "tier" in header and "score" in header
    (line,) = [ln for ln in out.splitlines() if RID in ln]  # the whole id, not its counter
    assert " standard " in line and " 0.42 " in line
    (direct,) = [ln for ln in out.splitlines() if "chatcmpl-77aa00000001" in ln]
    assert "None" not in direct and " - " in direct  # no tier, no score


def test_audit_one_request_and_an_unknown_one(routed: str) -> None:
    code, out, _ = _audit("--database", routed, "--request", RID, "--json")
    assert code == 0
    (only,) = json.loads(out)
    assert (only["tier"], only["route_score"]) == ("standard", 0.4234)
    code, out, err = _audit("--database", routed, "--request", "00000001")
    assert (code, out) == (1, "")
    assert err == "error: no request '00000001' in the ledger\n"


def _no_provider_keys() -> dict[str, str | None]:
    from laneway.settings import vendors

    env: dict[str, str | None] = {"LANEWAY_CONFIG": None, "LANEWAY_DATABASE_URL": None}
    env.update({v.key_env: None for v in vendors().values() if v.key_env})
    return env


def test_usage_by_tier_prices_savings_on_the_built_in_defaults(
    routed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no laneway.yaml here: the built-in defaults
    result = CliRunner().invoke(
        build_app(),
        ["usage", "--by", "tier", "--database", routed],
        env={**_no_provider_keys(), "COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    # the embedded model (hourly cost 0) is the strongest tier of the defaults: $0 a token
    assert "saved $0.0000" in result.stdout
    assert "cost saved:" not in result.stdout
    as_json = CliRunner().invoke(
        build_app(), ["usage", "--by", "tier", "--json", "--database", routed],
        env=_no_provider_keys(),
    )  # fmt: skip
    rows = {r["key"]: r for r in json.loads(as_json.stdout)}
    assert rows["standard"]["baseline_tier"] == "simple"
    assert rows["standard"]["baseline_cost_usd"] == "0"


def test_usage_savings_line_separates_thousands(
    engine: sa.Engine, db_url: str, write_rows: Callable[[list[LedgerRow]], None], tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    write_rows([row("big", 0, ts=now, deployment="local", tier="simple", cost_usd=D(0),
                    prompt_tokens=20_000_000, completion_tokens=0)])  # fmt: skip
    config = tmp_path / "laneway.yaml"
    config.write_text(
        "deployments:\n"
        "  - {name: local, model: smollm2-135m-instruct, provider: local, hourly_cost_usd: 0}\n"
        "  - {name: big, model: gpt-4o, provider: openai_compatible, "
        "api_base: 'http://127.0.0.1:9/v1', price: {input_per_mtok: 1000, output_per_mtok: 1}}\n"
        "tiers: {simple: [local], frontier: [big]}\n"
    )
    result = CliRunner().invoke(
        build_app(),
        ["usage", "--by", "tier", "--database", db_url, "--config", str(config)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "against $20,000.0000 for all 1 request(s) on tier frontier (big)" in result.stdout
    assert "saved $20,000.0000 (100.0%)" in result.stdout
