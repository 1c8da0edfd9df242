"""The learning loop on a team's own outcome files, shaped as teams write them: their own
model and task names, a half kept aside, prompts repeated under several ids, tiers that
barely differ, rows no tier mapping covers, odd weights and odd characters. Every step
works with honest figures or stops with one ``error:`` line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from laneway.cli._router import register
from laneway.errors import InvalidRequest
from laneway.router import active_router_dir, conversation_from_prompt, train_scorer

TIERS = "cheap=acme-mini;premium=acme-large"


def invoke(*args: str) -> Any:
    application = typer.Typer()
    register(application)
    return CliRunner().invoke(application, list(args))


def team_rows(n: int, start: int = 0, *, weak_right: float | None = None) -> list[dict[str, Any]]:
    """Outcome rows: long arithmetic prompts the weak model fails, short chat it answers
    (``weak_right``: the share of rows the weak model gets right, the strong one then
    wrong on a third of them)."""
    rng = np.random.default_rng(start)
    rows = []
    for i in range(start, start + n):
        hard = i % 2 == 0
        prompt = (f"Compute step by step {i} * {i + 7} - {i // 3} and explain each step "
                  f"with units {'and a proof ' * (i % 5)}." if hard
                  else f"hello there, how is your day {i}?")  # fmt: skip
        weak, strong = (0, 1) if hard else (1, 1)
        if weak_right is not None:
            weak = int(rng.random() < weak_right)
            strong = int(rng.random() < 0.67)
        rows.append({"id": f"t{i}", "prompt": prompt, "task": "billing" if hard else "chat",
                     "outcomes": {"acme-mini": weak, "acme-large": strong}})  # fmt: skip
    return rows


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def train(tmp_path: Path, data: Path, *extra: str) -> tuple[Path, Any]:
    out = tmp_path / "cand"
    result = invoke("router", "train", "--data", str(data), "--tiers", TIERS, "--out",
                    str(out), *extra)  # fmt: skip
    return out, result


def held_rows(output: str) -> int:
    found = re.search(r"held-out rows: (\d+)", output)
    assert found, output
    return int(found.group(1))


def test_promote_checks_on_the_whole_half_the_team_kept_aside(tmp_path: Path) -> None:
    """Train on one half, promote with the other: every row of the other half counts
    (it was checked on the one row in ten the id hash picks: 20-odd rows of 200)."""
    a = write(tmp_path / "a.jsonl", team_rows(300))
    b = write(tmp_path / "b.jsonl", team_rows(200, start=1000))
    cand, trained = train(tmp_path, a)
    assert trained.exit_code == 0, trained.output
    result = invoke("router", "promote", str(cand), "--data", str(b))
    assert "Traceback" not in result.output
    assert held_rows(result.output) == 200
    both = invoke("router", "promote", str(cand), "--data", str(a), "--data", str(b))
    left_out = int(re.search(r"left out (\d+) row", both.output).group(1))  # type: ignore[union-attr]
    assert 250 < left_out < 300  # a's training rows; a's held-out rows and b are checked on
    assert held_rows(both.output) == 500 - left_out


def test_a_prompt_repeated_under_several_ids_is_never_on_both_sides(tmp_path: Path) -> None:
    """A shadow export writes one row per request: the same prompt under new ids. Held
    out by id, copies were trained on and checked on at once."""
    from laneway.router import read_outcomes, split_outcomes

    rows = [{**r, "id": f"{r['id']}-{k}"} for r in team_rows(200) for k in range(3)]
    data = write(tmp_path / "dups.jsonl", rows)
    split = split_outcomes(read_outcomes(data), {"c": ("acme-mini",), "p": ("acme-large",)}, 10)
    trained = {r["conversation"].last_user for r in split.train}
    assert split.held and not any(r["conversation"].last_user in trained for r in split.held)
    assert split.repeated == 600
    cand, result = train(tmp_path, data)
    assert result.exit_code == 0, result.output
    assert "repeat a prompt under another id" in result.output
    # The candidate's own file: only the prompts it held out are checked on.
    again = invoke("router", "promote", str(cand), "--data", str(data))
    assert held_rows(again.output) == len(split.held)


def test_promote_refuses_when_the_strong_tier_is_not_better(tmp_path: Path) -> None:
    """The weak model right 97% of the time, the strong one 67%: APGR divides by a
    negative gap and ranks routers backwards (this candidate was promoted)."""
    data = write(tmp_path / "o.jsonl", team_rows(400, weak_right=0.97))
    cand, trained = train(tmp_path, data)
    assert trained.exit_code == 0, trained.output
    assert "held-out check not made" in trained.output and "is not better than" in trained.output
    result = invoke("router", "promote", str(cand), "--data", str(data))
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "is not better than" in result.output
    assert result.output.count("\n") == 1
    assert not (active_router_dir() / "router.json").exists()


def test_promote_needs_rows_where_the_tiers_differ(tmp_path: Path) -> None:
    """Rows where both tiers agree but for a handful: APGR is decided by those few rows
    (any 10 rows with both outcomes were enough to promote)."""
    cand, trained = train(tmp_path, write(tmp_path / "a.jsonl", team_rows(300)))
    assert trained.exit_code == 0, trained.output
    agree = [{**r, "outcomes": {"acme-mini": 1, "acme-large": 1}}
             for r in team_rows(200, start=3000)]  # fmt: skip
    differ = team_rows(10, start=4000)  # 5 hard rows: weak 0, strong 1
    few = write(tmp_path / "few.jsonl", agree + differ)
    result = invoke("router", "promote", str(cand), "--data", str(few))
    assert result.exit_code == 1 and result.output.startswith("error: ")
    assert "205 held-out row(s)" not in result.output
    assert "5 where they differ: need at least 10" in result.output
    assert not (active_router_dir() / "router.json").exists()
    enough = write(tmp_path / "enough.jsonl", agree + team_rows(20, start=4000))
    result = invoke("router", "promote", str(cand), "--data", str(enough))
    assert "(10 where the tiers' outcomes differ)" in result.output, result.output


def test_promote_on_outcomes_of_other_models_is_one_error_line(tmp_path: Path) -> None:
    """Rows naming models the candidate does not map: a ValueError traceback before."""
    cand, trained = train(tmp_path, write(tmp_path / "a.jsonl", team_rows(300)))
    assert trained.exit_code == 0, trained.output
    other = [{**r, "outcomes": {"tiny": 0, "huge": 1}} for r in team_rows(100, start=500)]
    result = invoke("router", "promote", str(cand), "--data",
                    str(write(tmp_path / "o.jsonl", other)))  # fmt: skip
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert "cheap=acme-mini" in result.output


def test_rows_no_tier_maps_are_left_out_and_counted(tmp_path: Path) -> None:
    """Rows whose outcomes name only unmapped models said nothing to any head but were
    counted as trained on; with fewer than 10 usable rows a router was still written."""
    rows = team_rows(300) + [
        {**r, "outcomes": {"someone-else": 1}} for r in team_rows(200, start=2000)
    ]
    _, result = train(tmp_path, write(tmp_path / "mixed.jsonl", rows))
    assert result.exit_code == 0, result.output
    assert "left out 200 row(s) with no outcome of a model in the tier mapping" in result.output
    trained = int(re.search(r"trained on (\d+) row", result.output).group(1))  # type: ignore[union-attr]
    assert trained + held_rows(result.output) == 300

    few = [
        {"conversation": conversation_from_prompt(f"q {i}"),
         "outcomes": {"a": 1, "b": 0} if i < 5 else {"z": 1}}
        for i in range(50)
    ]  # fmt: skip
    mapping = {"simple": ("a",), "frontier": ("b",)}
    with pytest.raises(InvalidRequest, match="only 5 of 50 rows have an outcome"):
        train_scorer(few, ("simple", "frontier"), mapping, None, use_embedding=False)


def test_infinite_or_all_zero_weights_are_one_error_line(tmp_path: Path) -> None:
    """weight: Infinity trained a model of NaN means silently; all weights 0 was a
    ZeroDivisionError traceback."""
    rows = team_rows(200)
    inf = tmp_path / "inf.jsonl"
    inf.write_text(
        "".join(json.dumps(r) + "\n" for r in rows[:5])
        + '{"id": "w", "prompt": "x", "weight": Infinity, "outcomes": {"acme-mini": 1}}\n'
        + "".join(json.dumps(r) + "\n" for r in rows[5:])
    )
    _, result = train(tmp_path, inf)
    assert result.exit_code == 1 and result.output.startswith("error: ")
    assert "inf.jsonl:6: 'weight' must be a finite" in result.output
    zero = write(tmp_path / "zero.jsonl", [{**r, "weight": 0} for r in rows])
    _, result = train(tmp_path, zero)
    assert result.exit_code == 1, result.output
    assert result.output == "error: row weights must be finite, non-negative and not all zero\n"


def test_lone_surrogates_in_prompts_and_ids_train_and_score(tmp_path: Path) -> None:
    """A "\\ud83d" cut from an emoji (JSON allows it): UnicodeEncodeError tracebacks in the
    hold-out hash and in the score output before."""
    lines = [json.dumps(r) for r in team_rows(200)]
    lines.append('{"id": "s\\ud800", "prompt": "broken \\ud83d emoji", '
                 '"outcomes": {"acme-mini": 0, "acme-large": 1}}')  # fmt: skip
    data = tmp_path / "sur.jsonl"
    data.write_text("\n".join(lines) + "\n")
    cand, result = train(tmp_path, data)
    assert result.exit_code == 0, result.output
    scored = tmp_path / "scored.jsonl"
    result = invoke("router", "score", "--router", str(cand), "--input", str(data),
                    "--output", str(scored))  # fmt: skip
    assert result.exit_code == 0, result.output
    last = json.loads(scored.read_text(encoding="utf-8").splitlines()[-1])
    assert last["id"] == "s\ud800" and "tier" in last


def test_score_says_when_answers_go_unjudged(tmp_path: Path) -> None:
    """Rows with the cheap model's answer against a router with no verifier got
    "escalation": null and no word about it."""
    cand, trained = train(tmp_path, write(tmp_path / "a.jsonl", team_rows(300)))
    assert trained.exit_code == 0 and "verifier: no (no row carries answers)" in trained.output
    src = write(tmp_path / "in.jsonl", [{"id": 1, "prompt": "2+2?", "answer": "4"}])
    result = invoke("router", "score", "--router", str(cand), "--input", str(src),
                    "--output", str(tmp_path / "o.jsonl"))  # fmt: skip
    assert result.exit_code == 0
    assert "note: 1 answer(s) not judged" in result.output


def test_calibrate_says_when_the_outcomes_name_no_mapped_model(tmp_path: Path) -> None:
    """A team's outcomes under model names the router does not map: the profile was
    calibrated on the router's own estimates with only a field in the JSON saying so."""
    cand, trained = train(tmp_path, write(tmp_path / "a.jsonl", team_rows(300)))
    assert trained.exit_code == 0, trained.output
    other = [{**r, "outcomes": {"tiny": 0, "huge": 1}} for r in team_rows(100, start=500)]
    result = invoke("router", "calibrate", "--router", str(cand), "--profile", "team",
                    "--quality-floor", "0.95", "--data",
                    str(write(tmp_path / "o.jsonl", other)))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "note: the rows' outcomes name no model of the router's tier mapping" in result.output


def test_router_eval_refuses_a_pair_whose_strong_model_is_not_better(tmp_path: Path) -> None:
    """The weak model right more often than the strong one: eval printed the oracle's
    APGR near 0 and every router ranked backwards, exit 0."""
    data = write(tmp_path / "o.jsonl", team_rows(200, weak_right=0.97))
    result = invoke("router", "eval", "--data", str(data), "--strong", "acme-large",
                    "--weak", "acme-mini", "--rounds", "20")  # fmt: skip
    assert result.exit_code == 1 and result.output.startswith("error: ")
    assert "acme-large is not better than acme-mini" in result.output
    assert result.output.count("\n") == 1


def with_answers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cheap model's answer: empty where it failed, a short reply where it did not."""
    return [{**r, "answers": {"acme-mini": "Sure: 42." if r["outcomes"]["acme-mini"] else ""}}
            for r in rows]  # fmt: skip


def test_train_and_promote_print_the_cascade_check_of_the_verifier(tmp_path: Path) -> None:
    """A verifier was trained on the team's answers with no figure of what it does on
    answers it never saw; now the verifier, the gain score and length are compared on
    the held-out cheap answers (train) and on the untrained rows (promote)."""
    a = write(tmp_path / "a.jsonl", with_answers(team_rows(300)))
    cand, trained = train(tmp_path, a)
    assert trained.exit_code == 0, trained.output
    assert "cascade, held-out answers:" in trained.output
    assert "verifier - gain" in trained.output and "verifier - length" in trained.output
    b = write(tmp_path / "b.jsonl", with_answers(team_rows(100, start=1000)))
    result = invoke("router", "promote", str(cand), "--data", str(b))
    assert result.exit_code == 0, result.output
    assert "cascade, held-out answers: 100 (50 where" in result.output
    # An empty answer is what failed here: the verifier ranks it first.
    verifier = re.search(r"verifier +APGR (\d\.\d+)", result.output)
    assert verifier and float(verifier.group(1)) > 0.6
    plain = write(tmp_path / "plain.jsonl", team_rows(100, start=2000))
    result = invoke("router", "promote", str(cand), "--data", str(plain))
    assert "cascade check not made: no held-out row carries an answer of a cheap model" in (
        result.output
    )


def test_a_line_past_the_limit_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line was read whole however long (one endless line took the memory); past
    MAX_LINE_CHARS (32 Mi characters, set lower here) it is an error naming the line."""
    monkeypatch.setattr("laneway.router._io.MAX_LINE_CHARS", 1000)
    rows = team_rows(200)
    rows[7]["prompt"] = "word " * 400
    _, result = train(tmp_path, write(tmp_path / "long.jsonl", rows))
    assert result.exit_code == 1
    assert (
        result.output == f"error: {tmp_path / 'long.jsonl'}:8: line longer than 1,000 characters\n"
    )
    rows[7]["prompt"] = "word " * 150  # 750 characters and the rest of the row: under the limit
    _, result = train(tmp_path, write(tmp_path / "ok.jsonl", rows))
    assert result.exit_code == 0, result.output


def test_outcomes_no_tier_maps_name_the_models_the_rows_do_name(tmp_path: Path) -> None:
    """A team's own model names under the shipped mapping, or a typo in --tiers: "outcomes
    cover fewer than two tiers" said neither which tier nor which names the rows use."""
    data = write(tmp_path / "a.jsonl", team_rows(300))
    result = invoke("router", "train", "--data", str(data), "--out", str(tmp_path / "r"))
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "tier(s) simple, standard, complex, frontier; the rows name acme-mini, acme-large" in (
        result.output
    )
    result = invoke("router", "train", "--data", str(data), "--out", str(tmp_path / "r"),
                    "--tiers", "cheap=acme-mini;premium=acme-larg")  # fmt: skip
    assert result.exit_code == 1
    assert "no row has an outcome of a model of tier(s) premium;" in result.output


def test_a_copied_profile_file_reports_its_own_name(tmp_path: Path) -> None:
    """A team copies default.json to casc.json and adds a cascade: `auto:casc` used it but
    every decision (and so the ledger and `router report`) said profile "default"."""
    import shutil

    from laneway.router import load_router

    cand, trained = train(tmp_path, write(tmp_path / "a.jsonl", with_answers(team_rows(300))))
    assert trained.exit_code == 0, trained.output
    body = json.loads((cand / "profiles" / "default.json").read_text())
    body["cascade"] = {"from": "cheap", "to": "premium", "checks": ["verifier"]}
    (cand / "profiles" / "casc.json").write_text(json.dumps(body))
    shutil.copy(cand / "profiles" / "economy.json", cand / "profiles" / "thrifty.json")
    router = load_router(cand)
    decision = router.route([{"role": "user", "content": "hello there"}], "casc", task="chat")
    assert decision.profile == "casc" and decision.cascade is not None
    assert router.profile("thrifty").name == "thrifty"
    result = invoke("route", "hello there", "--router", str(cand), "--profile", "casc", "--json")
    assert json.loads(result.output)["profile"] == "casc"


def test_report_says_what_each_profile_was_calibrated_on(tmp_path: Path) -> None:
    """A profile calibrated on 20-odd held-out rows, or on prompts without outcomes (the
    router's own estimates), showed its quality as if measured on many."""
    cand, trained = train(tmp_path, write(tmp_path / "a.jsonl", team_rows(300)))
    assert trained.exit_code == 0, trained.output
    held = json.loads((cand / "profiles" / "default.json").read_text())["calibration"]["rows"]
    prompts = write(tmp_path / "p.jsonl", [{"prompt": f"hi {i}"} for i in range(60)])
    calibrated = invoke("router", "calibrate", "--router", str(cand), "--profile", "guess",
                        "--quality-floor", "0.9", "--data", str(prompts))  # fmt: skip
    assert calibrated.exit_code == 0, calibrated.output
    from laneway.ledger import open_database

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    open_database(url).dispose()
    config = tmp_path / "laneway.yaml"
    config.write_text("deployments: []\n")
    args = ["router", "report", "--router", str(cand), "--config", str(config),
            "--database", url]  # fmt: skip
    text = invoke(*args)
    assert f"({held} rows)" in text.output and "(60 rows, estimated)" in text.output
    body = json.loads(invoke(*args, "--json").output)
    guess = next(p for p in body["profiles"] if p["name"] == "guess")
    assert guess["calibration_rows"] == 60 and guess["quality_source"] == "router estimates"


def test_calibrate_on_outcomes_with_one_bad_row_is_an_error_not_estimates(
    tmp_path: Path,
) -> None:
    """One outcome row out of range made the whole file read as bare prompts: the profile
    was calibrated on the router's estimates, all 300 rows' outcomes unused, exit 0."""
    cand, trained = train(tmp_path, write(tmp_path / "a.jsonl", team_rows(300)))
    assert trained.exit_code == 0, trained.output
    rows = team_rows(300, start=5000)
    rows[3]["outcomes"] = {"acme-mini": 0.5, "acme-large": 2}
    args = ["router", "calibrate", "--router", str(cand), "--profile", "team",
            "--quality-floor", "0.95", "--data"]  # fmt: skip
    bad = write(tmp_path / "bad.jsonl", rows)
    result = invoke(*args, str(bad))
    assert result.exit_code == 1
    assert result.output == f"error: {bad}:4: outcome scores must lie in [0, 1]\n"
    rows[3]["outcomes"] = {"acme-mini": 0.5, "acme-large": 1}
    mixed = write(tmp_path / "mixed.jsonl", [*rows, {"prompt": "a prompt without outcomes"}])
    result = invoke(*args, str(mixed))
    assert result.exit_code == 0, result.output
    assert '"quality_source": "observed outcomes"' in result.output


def _versus(output: str) -> list[str]:
    return [line for line in output.splitlines() if " - " in line and "bootstrap" in line]


def test_a_prompt_checked_several_times_counts_once_in_the_intervals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of one prompt (repeated under new ids, or several cheap models' answers to it)
    were resampled one by one: three copies of each row drew intervals ~1/sqrt(3) as wide.
    Resampled by prompt, three copies give exactly the intervals of one."""
    rows = with_answers(team_rows(300))
    cand, trained = train(tmp_path, write(tmp_path / "a.jsonl", rows))
    assert trained.exit_code == 0, trained.output
    once = team_rows(120, start=7000)
    for i, row in enumerate(once):  # a noisy half so that the intervals are not all zero
        if i % 4 == 1:
            row["outcomes"] = {"acme-mini": 0, "acme-large": 1}
    once = with_answers(once)
    thrice = [{**r, "id": f"{r['id']}-{k}"} for r in once for k in range(3)]
    args = ["router", "promote", str(cand), "--data"]
    single = invoke(*args, str(write(tmp_path / "once.jsonl", once)))
    tripled = invoke(*args, str(write(tmp_path / "thrice.jsonl", thrice)))
    assert "held-out rows: 360" in tripled.output
    assert _versus(single.output) and _versus(tripled.output) == _versus(single.output)
    # Resampled row by row (the old way), the copies narrow every interval.
    monkeypatch.setattr("laneway.router._promote.prompt_groups", lambda rows: np.arange(len(rows)))
    narrow = invoke(*args, str(tmp_path / "thrice.jsonl"))
    assert _versus(narrow.output) != _versus(single.output)


def test_a_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """An export saved by a Windows tool starts with a UTF-8 BOM: line 1 was an error
    ("Unexpected UTF-8 BOM")."""
    data = tmp_path / "bom.jsonl"
    text = "".join(json.dumps(r) + "\n" for r in team_rows(300))
    data.write_bytes(b"\xef\xbb\xbf" + text.encode())
    _, result = train(tmp_path, data)
    assert result.exit_code == 0, result.output


def test_promote_leaves_out_rows_the_active_router_was_trained_on(tmp_path: Path) -> None:
    """v1, trained on b, is active; v2, trained on a, is promoted with --data b: v1 was
    scored on its own training rows, which flatters it against the candidate."""
    a = write(tmp_path / "a.jsonl", team_rows(300))
    b = write(tmp_path / "b.jsonl", team_rows(300, start=1000))
    v1 = tmp_path / "v1"
    trained = invoke("router", "train", "--data", str(b), "--tiers", TIERS, "--out", str(v1))
    assert trained.exit_code == 0, trained.output
    first = invoke("router", "promote", str(v1), "--data", str(a))
    assert first.exit_code == 0, first.output
    v2, trained = train(tmp_path, a)
    assert trained.exit_code == 0, trained.output
    result = invoke("router", "promote", str(v2), "--data", str(b))
    used = held_rows(result.output)
    left = re.search(r"left out (\d+) row\(s\) whose prompt the active router", result.output)
    assert left, result.output
    assert used + int(left.group(1)) == 300 and used < 60  # v1's held-out rows of b only


def test_retraining_into_a_router_with_its_own_profiles_is_refused(tmp_path: Path) -> None:
    """Training into the directory of a router that has a calibrated profile of its own
    kept that profile for the new model: a loss target calibrated for another model
    (auto:team then sent nearly everything to one tier) with nothing said."""
    a = write(tmp_path / "a.jsonl", team_rows(300))
    cand, trained = train(tmp_path, a)
    assert trained.exit_code == 0, trained.output
    _, retrained = train(tmp_path, a)  # only the three profiles train writes: replaced
    assert retrained.exit_code == 0, retrained.output
    calibrated = invoke("router", "calibrate", "--router", str(cand), "--profile", "team",
                        "--target-strong-share", "0.3", "--data", str(a))  # fmt: skip
    assert calibrated.exit_code == 0, calibrated.output
    before = (cand / "model.npz").read_bytes()
    _, result = train(tmp_path, write(tmp_path / "b.jsonl", team_rows(300, start=900)))
    assert result.exit_code == 1 and result.output.startswith("error: ")
    assert "profile(s) team were calibrated for it" in result.output
    assert (cand / "model.npz").read_bytes() == before


def test_answers_of_the_strong_model_only_name_the_models_and_the_way_out(
    tmp_path: Path,
) -> None:
    """An answers map without the cheap model: no verifier can be trained; the error said
    only "need at least 10 answers of models below the strongest tier"."""
    rows = [{**r, "answers": {"acme-large": "Sure."}} for r in team_rows(300)]
    _, result = train(tmp_path, write(tmp_path / "a.jsonl", rows))
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "found 0 (answers given by: acme-large; below the strongest tier: acme-mini" in (
        result.output
    )
    assert "--no-verifier" in result.output
    _, result = train(tmp_path, write(tmp_path / "b.jsonl", rows), "--no-verifier")
    assert result.exit_code == 0 and "verifier: no" in result.output


def test_a_task_name_no_request_can_carry_is_an_error(tmp_path: Path) -> None:
    """Rows with task "Customer Support": the router learned offsets under a name the
    gateway refuses in x-laneway-task / metadata.laneway_task (400), so they could never
    be used, and nothing said so."""
    rows = team_rows(300)
    rows[4]["task"] = "Customer Support"
    data = write(tmp_path / "a.jsonl", rows)
    _, result = train(tmp_path, data)
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert f"{data}:5: 'task' 'Customer Support' must be 1-64 letters" in result.output
    rows[4]["task"] = "support/eu-west:v2.1"
    _, result = train(tmp_path, write(tmp_path / "b.jsonl", rows))
    assert result.exit_code == 0, result.output
