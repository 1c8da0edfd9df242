"""``laneway shadow review`` end to end in a real headless Chromium (Debian's), driven by
Playwright: a sample of shadow pairs is shown blind (sides shuffled, model names never
reach the page), identical answers and failed calls are never shown, each choice is
stored on its pair, and ``shadow report`` counts the person's verdicts beside the judge's
(with how often the two agreed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from laneway.cli import build_app
from laneway.gateway import SHADOW_PAIRS
from laneway.ledger import open_database

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET_NAMES = ("gpt-secret-candidate", "gpt-secret-primary", "cand-deploy", "prim-deploy")


def _row(i: int, candidate: str | None, primary: str, **extra: Any) -> dict[str, Any]:
    return {
        "request_id": f"req-{i}",
        "ts": datetime.now(UTC),
        "rule": "trial",
        "prompt": [{"role": "user", "content": f"Question {i}?"}],
        "primary_deployment": "prim-deploy",
        "primary_model": "gpt-secret-primary",
        "primary_output": primary,
        "primary_latency_ms": 100.0,
        "candidate": "cand-deploy",
        "candidate_model": "gpt-secret-candidate",
        "candidate_output": candidate,
        "candidate_latency_ms": 90.0,
        "candidate_error": None,
        "verdict": None,
        "judge": None,
        **extra,
    }


def _pairs(db: Path) -> str:
    url = f"sqlite:///{db}"
    engine = open_database(url)
    rows = [
        # the judge's verdict ("a" = the candidate won) is there on the first three
        _row(i, f"cand says {i}", f"prim says {i}", verdict=v, judge="j")
        for i, v in zip(range(4), ("a", "a", "tie", None), strict=True)
    ]
    rows.append(_row(4, "The same answer.", "the same answer"))  # identical: never shown
    rows.append(_row(5, None, "prim says 5", candidate_error="upstream_timeout"))  # failed
    with engine.begin() as conn:
        conn.execute(SHADOW_PAIRS.insert(), rows)
    engine.dispose()
    return url


@pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="Debian's chromium is not installed (/usr/bin/chromium): apt-get install chromium",
)
def test_a_blind_sample_is_reviewed_stored_and_counted(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url = _pairs(tmp_path / "ledger.db")
    command = [sys.executable, "-c", "from laneway.cli import main; main()", "shadow", "review",
               "--no-browser", "--seed", "4", "--database", url]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    shown_first: dict[int, bool] = {}  # question -> the candidate's answer was shown as A
    expected: dict[int, str] = {}
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("review 4 pairs at http://127.0.0.1:"), line + proc.stderr.read()
        page_url = line.split(" at ", 1)[1].split()[0]
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                page.goto(page_url)
                for _ in range(4):
                    page.wait_for_selector("body[data-state=ready]")
                    html = page.content()
                    assert not any(name in html for name in SECRET_NAMES)
                    assert "same answer" not in html.lower() and "prim says 5" not in html
                    prompt = page.inner_text("#prompt")
                    question = int(prompt.split("Question ")[1][0])
                    a_is_candidate = page.inner_text("#answer-a").startswith("cand")
                    shown_first[question] = a_is_candidate
                    # the person prefers the candidate on 0 and 3, the primary on 1, a tie on 2
                    if question == 2:
                        key, expected[question] = "t", "tie"
                    else:
                        wants_candidate = question in (0, 3)
                        key = "a" if wants_candidate == a_is_candidate else "b"
                        expected[question] = "a" if wants_candidate else "b"
                    page.keyboard.press(key)
                    page.wait_for_function(
                        "(p) => document.getElementById('prompt').textContent !== p"
                        " || document.body.dataset.state === 'done'",
                        arg=prompt,
                    )
                page.wait_for_selector("body[data-state=done]")
                assert "All pairs reviewed" in page.inner_text("#done")
            finally:
                context.close()
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "saved 4 of 4 verdicts" in out
    assert set(shown_first) == {0, 1, 2, 3}
    assert set(shown_first.values()) == {True, False}  # the order is shuffled

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = {
            int(r.request_id.split("-")[1]): (r.human_verdict, r.human_shown_as)
            for r in conn.execute(sa.select(SHADOW_PAIRS))
        }
    engine.dispose()
    for question, verdict in expected.items():
        assert stored[question] == (verdict, "a" if shown_first[question] else "b")
    assert stored[4] == (None, None) and stored[5] == (None, None)

    runner = CliRunner()
    result = runner.invoke(build_app(), ["shadow", "report", "--database", url, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)["cand-deploy"]
    assert report["human"]["wins"] == 2 and report["human"]["losses"] == 1
    assert report["human"]["ties"] == 1
    assert report["judge_human_agreement"] == [2, 3]  # the judge differed on 1
    text = runner.invoke(build_app(), ["shadow", "report", "--database", url])
    assert "human (blind sample): candidate wins 2, ties 1, loses 1" in text.output
    again = runner.invoke(build_app(), ["shadow", "review", "--no-browser", "--database", url])
    assert again.exit_code == 0 and "nothing to review" in again.output
