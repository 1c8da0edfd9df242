"""The HTML report: no negative cost axis when every answer cost 0, one label for models
on the same point, pass^k in one cell that does not wrap, a note on few-sample p95, and
(in a real browser, where Debian's chromium is installed) no wider than 1,400 px."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from laneway.evals import compute_metrics
from laneway.evals._report import cost_axis, point_labels, render_report
from tests.evals._runs import make_run, planted

MODELS = ("local-llama-3.2-1b-instruct-q4", "local-qwen2.5-0.5b-instruct", "tier-simple")


def _html(models: tuple[str, ...] = MODELS, repeats: int = 3) -> str:
    run = make_run("r", {m: planted(12, {0, 1}, repeats) for m in models})
    results = tuple(
        type(r)(**{**{f: getattr(r, f) for f in r.__slots__}, "cost_usd": Decimal(0)})
        for r in run.results
    )
    run = type(run)(run.info, results, run.pairs)
    return render_report(run, compute_metrics(run.results, run.info.suite, run.info.models))


def test_cost_axis_starts_at_zero() -> None:
    assert cost_axis([0.0, 0.0]) == (0.0, 1.0)
    assert cost_axis([]) == (0.0, 1.0)
    assert cost_axis([0.002, 0.01]) == pytest.approx((0.0, 0.0115))


def test_models_on_one_point_share_a_label() -> None:
    labels = point_labels([("a", 0.0, 0.8), ("b", 0.0, 0.8), ("c", 0.0, 0.5)])
    assert labels == [("a, b", 0.0, 0.8), ("c", 0.0, 0.5)]


def test_report_plots_and_tables() -> None:
    html = _html()
    plot = html.split('id="plot-quality_cost"', 1)[1].split("</svg>", 1)[0]
    # Tick labels are text: none negative (matplotlib writes a minus sign as U+2212).
    ticks = re.findall(r">([^<>]*\d[^<>]*)</text>", plot)
    assert ticks and not [t for t in ticks if t.strip().startswith(("\u2212", "-"))]
    assert "every answer cost 0" in plot
    # The three models have the same pass rate and cost: one label naming all three.
    assert (
        plot.count(">local-llama-3.2-1b-instruct-q4, local-qwen2.5-0.5b-instruct, tier-simple<")
        == 1
    )
    # pass^k: the largest k only, in a cell that does not wrap.
    assert "k=3: 83.3%" in html and "k=1:" not in html
    assert "td { white-space: nowrap; }" in html
    assert "p95 over fewer than 20 calls" not in html  # 36 calls per model
    assert "p95 over fewer than 20 calls" in _html(repeats=1)  # 12


@pytest.mark.skipif(
    shutil.which("/usr/bin/chromium") is None,
    reason="Debian's chromium is not installed (/usr/bin/chromium): apt-get install chromium",
)
def test_report_fits_1400_px(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    path = tmp_path / "report.html"
    path.write_text(_html(), "utf-8")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(path.as_uri())
            width = page.evaluate("document.documentElement.scrollWidth")
            cell_heights = page.evaluate(
                "[...document.querySelectorAll('td:nth-child(9)')].map(td => td.clientHeight)"
            )
        finally:
            browser.close()
    assert width <= 1400
    assert max(cell_heights) <= min(cell_heights) * 1.2  # pass^k never wraps to two lines
