"""The blind review page in a real headless Chromium (Debian's), driven by Playwright:
model names never reach the page, keyboard shortcuts pick A / B / tie, and the choices
are saved with the run, mapped back through the shuffled sides."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from laneway.evals import ResultRow, RunOptions, load_suite
from laneway.evals._review import ReviewServer, can_open_browser, review_items
from laneway.evals._runner import new_run

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
MODELS = ("model-alpha", "model-beta")


def _record(tmp_path: Path, engine: sa.Engine) -> object:
    lines = ["name: review", "cases:"] + [
        f'  - {{id: c{i}, prompt: "Question {i}?"}}' for i in range(4)
    ]
    path = tmp_path / "review.yaml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    suite = load_suite(path)
    record = new_run(engine, suite, RunOptions(models=MODELS), run_id="rev")
    record.write_results(
        [
            ResultRow(
                f"c{i}",
                model,
                0,
                f"{'first' if model == MODELS[0] else 'second'} answer {i}",
                None,
                None,
            )
            for i in range(4)
            for model in MODELS
        ]
    )
    return record


def test_can_open_browser_respects_ci_and_display() -> None:
    assert not can_open_browser({"CI": "true", "DISPLAY": ":0"})
    if not __import__("sys").platform.startswith(("darwin", "win")):
        assert not can_open_browser({})
        assert can_open_browser({"DISPLAY": ":0"})


@pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="Debian's chromium is not installed (/usr/bin/chromium): apt-get install chromium",
)
def test_review_page_keyboard_choices_are_saved(tmp_path: Path, engine: sa.Engine) -> None:
    from playwright.sync_api import sync_playwright

    record = _record(tmp_path, engine)
    items = review_items(record, seed=3)  # type: ignore[arg-type]
    assert len(items) == 4
    assert {i.swapped for i in items} == {True, False}  # both sides get shuffled
    keys = ["a", "ArrowRight", "t", "2"]
    expected: dict[str, str] = {}
    with ReviewServer(record, items) as server, sync_playwright() as pw:  # type: ignore[arg-type]
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.goto(server.url)
            for key in keys:
                page.wait_for_selector("body[data-state=ready]")
                html = page.content()
                assert all(m not in html for m in MODELS)
                prompt = page.inner_text("#prompt")
                shown_a = page.inner_text("#answer-a")
                case = "c" + prompt.split("Question ")[1][0]
                a_is_alpha = shown_a.startswith("first")
                choice = {"a": "a", "ArrowRight": "b", "t": "tie", "2": "b"}[key]
                if choice == "tie":
                    expected[case] = "tie"
                else:
                    alpha_won = (choice == "a") == a_is_alpha
                    expected[case] = "a" if alpha_won else "b"
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
    assert server.saved == 4
    saved = {p.case_id: p.winner for p in record.pairs("human")}  # type: ignore[attr-defined]
    assert saved == expected
    assert {(p.model_a, p.model_b) for p in record.pairs("human")} == {MODELS}  # type: ignore[attr-defined]
    assert review_items(record) == []  # type: ignore[arg-type]


def test_the_cli_serves_the_done_page_after_the_last_verdict(
    tmp_path: Path, engine: sa.Engine
) -> None:
    """``eval review`` keeps its server up after the last choice until the page has
    fetched "all pairs reviewed" (it used to stop at once, so the page never got there);
    identical answers are never shown."""
    import subprocess
    import sys
    import time
    import urllib.request

    import orjson

    record = _record(tmp_path, engine)
    record.write_results(  # type: ignore[attr-defined]
        [ResultRow("c0", model, 0, "The same answer.", None, None) for model in MODELS]
    )
    command = [
        sys.executable,
        "-c",
        "from laneway.cli import main; main()",
        "eval",
        "review",
        "rev",
        "--no-browser",
        "--db",
        f"sqlite:///{tmp_path / 'laneway.db'}",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("review 3 pairs at http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split(" at ", 1)[1].split()[0]

        def call(path: str, body: dict[str, str] | None = None) -> dict[str, object]:
            data = None if body is None else orjson.dumps(body)
            request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1)
                url + path, data=data, method="POST" if body else "GET"
            )
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return orjson.loads(response.read())  # type: ignore[no-any-return]

        for _ in range(3):
            item = call("api/next")
            assert item["done"] is False
            assert call("api/choice", {"token": str(item["token"]), "choice": "tie"})["ok"]
        time.sleep(1.5)  # a person reads the last answer; the old server had stopped by now
        assert call("api/next") == {"done": True, "saved": 3, "total": 3}
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "saved 3 of 3 verdicts" in out


def test_a_run_of_one_model_cannot_be_reviewed(tmp_path: Path, engine: sa.Engine) -> None:
    """It said "nothing to review" and exited 0, as if every pair had a verdict."""
    from typer.testing import CliRunner

    from tests.evals._cli import eval_cli

    path = tmp_path / "one.yaml"
    path.write_text("name: one\ncases:\n  - {id: c0, prompt: Why}\n", "utf-8")
    new_run(engine, load_suite(path), RunOptions(models=("solo",)), run_id="one")
    db = f"sqlite:///{tmp_path / 'laneway.db'}"
    result = CliRunner().invoke(eval_cli(), ["eval", "review", "one", "--no-browser", "--db", db])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: run one has one model (solo): a blind review compares two; run the suite "
        "with --models A,B"
    ]
