"""The HTML decision document in a real browser (Debian's Chromium, headless) at 1,400 px."""

from __future__ import annotations

import os
import pathlib
import re
import shutil

import pytest
import yaml

from laneway.advisor import advise, load_workload, render_html, workload_from_dict

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]
ROOT = pathlib.Path(__file__).parents[2]
WORKLOADS = pathlib.Path(__file__).parent / "workloads"


def _pages() -> dict[str, str]:
    fleet = yaml.safe_load((WORKLOADS / "w09_regulated_selfhost_volume.yaml").read_text())
    return {
        "example": render_html(advise(load_workload(ROOT / "examples" / "workload.yaml"))),
        "fleet": render_html(advise(workload_from_dict(fleet["workload"]))),
    }


def test_report_text_is_clean() -> None:
    for name, html in _pages().items():
        text = re.sub(r"<[^>]+>", " ", re.sub(r'src="data:image/png;base64,[^"]+"', "", html))
        for bad in ("None", "False", "True", "laneway[", "provider None", "None/None"):
            assert bad not in text, (name, bad)
        # tokens/day human-readable, money with separators: no long bare digit runs
        assert not re.search(r"(?<![\w.,$])\d{7,}(?![\w])", text), (
            name,
            re.findall(r"\d{7,}", text)[:3],
        )
        for section in (
            "Warnings",
            "whole workload",
            "four gates",
            "Seed check",
            "Sensitivity",
            "Cost vs volume",
            "Utilisation",
            "crossover claims",
        ):
            assert section.lower() in text.lower(), (name, section)


@pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="Debian's chromium is not installed (/usr/bin/chromium): apt-get install chromium",
)
def test_report_reads_at_1400px(tmp_path: pathlib.Path) -> None:
    from playwright.sync_api import sync_playwright

    shots = pathlib.Path(os.environ.get("LANEWAY_SCREENSHOTS", tmp_path))
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            for name, html in _pages().items():
                path = tmp_path / f"{name}.html"
                path.write_text(html, "utf-8")
                page = context.new_page()
                page.goto(path.as_uri())
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 1400, (name, width)  # nothing cut off sideways
                decision = page.locator(".decision .summary").bounding_box()
                table = page.locator(".decision table").first.bounding_box()
                assert decision is not None and table is not None
                assert decision["y"] < 300 and table["y"] + table["height"] < 900, name
                images = page.eval_on_selector_all(
                    "img", "els => els.map(e => [e.naturalWidth, e.getBoundingClientRect().width])"
                )
                assert len(images) == 2 and all(n > 0 and 0 < w <= 1400 for n, w in images)
                page.screenshot(path=str(shots / f"advice-{name}.png"), full_page=True)
                page.close()
        finally:
            context.close()
