"""Cost per case when a call failed: the gateway reports no cost for a failed call, and
one such call made the cost of the whole model "unknown" (every run with a time-out lost
its cost column). Failed calls are left out of the cost and the table says so; an
answered call of unknown price still makes the cost unknown."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from rich.console import Console

from laneway.cli._eval_output import metrics_table
from laneway.evals import ResultRow, compute_metrics
from tests.evals._runs import answer_check, row

SUITE = {"name": "s", "cases": [{"id": f"c{i}", "prompt": "p"} for i in range(4)]}


def _priced(case_id: str) -> ResultRow:
    return replace(row(case_id, "m", 0, [answer_check(True)]), cost_usd=Decimal("0.002"))


def test_a_failed_call_leaves_the_cost_known() -> None:
    rows = [_priced(f"c{i}") for i in range(3)] + [row("c3", "m", 0, error="upstream_error")]
    m = compute_metrics(rows, SUITE, ("m",))[0]
    assert m.cost_per_case_usd == Decimal("0.002")  # it was None ("unknown")
    assert m.cost_failed_unknown == 1
    console = Console(width=200, record=True)
    console.print(metrics_table([m], "run"))
    text = console.export_text()
    assert "0.002000+" in text
    assert "+ $/case over the calls with a known cost: failed calls have none" in text


def test_an_answer_of_unknown_price_makes_the_cost_unknown() -> None:
    rows = [_priced("c0"), row("c1", "m", 0, [answer_check(True)])]  # no price known
    m = compute_metrics(rows, SUITE, ("m",))[0]
    assert m.cost_per_case_usd is None
    assert m.cost_failed_unknown == 0
