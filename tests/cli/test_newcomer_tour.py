"""``scripts/newcomer_tour.py`` reads its commands from the README's tour and checks each
command's output against the lines the README shows after it (the tour itself runs the
embedded model for minutes and is run by hand or by the lead, not here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "newcomer_tour.py"


@pytest.fixture(scope="module")
def tour() -> ModuleType:
    spec = importlib.util.spec_from_file_location("newcomer_tour", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["newcomer_tour"] = module
    spec.loader.exec_module(module)
    return module


def test_the_readme_tour_is_what_the_script_runs(tour: ModuleType) -> None:
    commands = tour.tour_commands(tour.README.read_text("utf-8"))
    shown = [c.shown for c in commands]
    assert commands[0].is_install and commands[1].is_activate
    assert sum(c.is_serve for c in commands) == 3
    # the steps the issue asks for, in the README's order
    for needle in (
        "laneway serve",
        '"model": "local"',
        '"model": "auto"',
        "laneway usage --by tier",
        "ada@example.com",
        "laneway serve --config examples/laneway.yaml",
        "laneway eval run basics",
        "laneway advise examples/workload.yaml",
        "laneway keys create",
    ):
        assert any(needle in c for c in shown), needle
    refused = next(c for c in commands if "examples/laneway.yaml" in c.text)
    assert refused.code == 1 and not refused.is_serve
    assert refused.expected[0].startswith("error: environment variables not set: ")
    continued = next(c for c in commands if "What is 2+2?" in c.text)
    assert "\\" not in continued.text and "-d '{" in continued.text
    # every command but the install, an activate or an export shows what it printed
    quiet = [c for c in commands if not c.expected]
    assert all(c.is_install or c.text.startswith(("export", ". ")) for c in quiet), quiet


def test_output_lines_must_appear_in_order_with_ellipses(tour: ModuleType) -> None:
    output = "Laneway usage\ntier  requests  cost\ncomplex     1   $0.0000\nsimple  2  $0.1\n"
    assert tour.unmatched(["tier requests …", "complex 1 $0.0000", "…"], output) is None
    assert tour.unmatched(["simple … $0.1", "…"], output) is None
    assert tour.unmatched(["simple …", "complex …"], output) == "complex …"  # order
    assert tour.unmatched(["complex 2 …"], output) == "complex 2 …"
    assert tour.unmatched(["plex 1 $0.0000"], output) == "plex 1 $0.0000"  # whole lines
    assert tour.unmatched(["─" * 90, "simple …"], output) is None  # rules: any width


def test_a_tour_without_markers_is_refused(tour: ModuleType) -> None:
    with pytest.raises(tour.TourFailure, match="tour:start"):
        tour.tour_commands("# README\n```console\n$ laneway --help\n```\n")


def test_exit_codes_and_ports_are_read_from_the_readme(tour: ModuleType) -> None:
    text = (
        "<!-- tour:start -->\n```console\n"
        "$ laneway keys create --name a   # exits 1\nerror: …\n"
        "$ curl -s localhost:4000/v1/models \\\n    -H 'x: y'\n{…}\n"
        "```\n<!-- tour:end -->\n"
    )
    first, second = tour.tour_commands(text)
    assert (first.text, first.code, first.expected) == (
        "laneway keys create --name a",
        1,
        ["error: …"],
    )
    assert second.text == "curl -s localhost:4000/v1/models -H 'x: y'" and second.code == 0
    assert second.budget == 30 and first.budget == 8
