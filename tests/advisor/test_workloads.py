"""The acceptance table: workloads written from the seeds' rules, each with the expected
decision and the seed sentence it rests on (``tests/advisor/workloads/*.yaml``; the
``heldout/`` ones were written first and run only at the end).

Each file has ``seed`` (the seed file), ``rests_on`` (the sentence, quoted or paraphrased),
``workload`` (the profile) and ``expect``:

- ``error``: the workload is refused with a message containing this text;
- ``paths``: {tier: path} recommended; ``models``: {tier: [allowed model ids]};
- ``not_models`` / ``never_paths``: recommended nowhere;
- ``model_origins_not`` / ``api_origins_not``: no recommended model (on an API path) from
  these origins; ``api_providers_in``: every recommended API path uses one of these;
- ``gates``: {gate: passed}; ``warnings``: substrings of some warning;
- ``fine_tune``: {task: winner}; ``recommended_includes_fine_tune``: a task whose
  fine-tune cost is inside the recommended tier's monthly figure.
"""

from __future__ import annotations

import pathlib
from decimal import Decimal
from typing import Any

import pytest
import yaml

from laneway.advisor import Advice, advise, workload_from_dict
from laneway.catalog import default_catalog
from laneway.errors import InvalidRequest

HERE = pathlib.Path(__file__).parent / "workloads"
TABLE = sorted(HERE.glob("*.yaml"))
HELDOUT = sorted((HERE / "heldout").glob("*.yaml"))
_KEYS = {"seed", "rests_on", "expect", "workload"}


def _case(path: pathlib.Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text("utf-8"))
    assert set(data) == _KEYS, path.name
    assert data["seed"].startswith("seeds/0"), path.name
    assert len(data["rests_on"]) > 40, path.name
    return data


def _check(path: pathlib.Path) -> None:
    case = _case(path)
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(InvalidRequest) as info:
            advise(workload_from_dict(case["workload"]))
        assert expect["error"] in info.value.message, info.value.message
        return
    advice = advise(workload_from_dict(case["workload"]))
    _check_advice(advice, expect)


def _check_advice(advice: Advice, expect: dict[str, Any]) -> None:
    catalog = default_catalog()
    tiers = {t.tier: t for t in advice.choice.tiers}
    chosen = [t for t in advice.choice.tiers if t.cost and t.cost.model]
    for tier, path in expect.get("paths", {}).items():
        assert tiers[tier].path == path, (tier, tiers[tier].reason, advice.summary)
    for tier, allowed in expect.get("models", {}).items():
        cost = tiers[tier].cost
        assert cost is not None and cost.model is not None, tier
        assert cost.model.id in allowed, (tier, cost.model.id)
    for model in expect.get("not_models", []):
        assert all(t.cost.model.id != model for t in chosen if t.cost and t.cost.model), model
    for path in expect.get("never_paths", []):
        assert all(t.path != path for t in advice.choice.tiers), (path, advice.summary)
    for origin in expect.get("model_origins_not", []):
        for t in chosen:
            assert t.cost and t.cost.model and t.cost.model.origin != origin, t.cost
    for origin in expect.get("api_origins_not", []):
        for t in chosen:
            if t.path in ("closed_api", "serverless_open"):
                assert t.cost and t.cost.model and t.cost.model.origin != origin, t.tier
    providers = expect.get("api_providers_in")
    if providers:
        for t in chosen:
            if t.path in ("closed_api", "serverless_open"):
                assert t.cost and t.cost.price and t.cost.price.provider in providers, t.tier
    gates = {g.name: g.passed for g in advice.gates}
    for name, passed in expect.get("gates", {}).items():
        assert gates[name] is passed, (name, next(g.reason for g in advice.gates if g.name == name))
    for text in expect.get("warnings", []):
        assert any(text in w for w in advice.warnings), (text, advice.warnings)
    for task, winner in expect.get("fine_tune", {}).items():
        assert any(f.task == task and f.winner == winner for f in advice.fine_tune), (
            advice.fine_tune
        )
    task = expect.get("recommended_includes_fine_tune")
    if task:
        tier = next(t for t in advice.workload.tasks if t.name == task).tier
        choice = tiers[tier]
        assert choice.fine_tune_usd is not None and choice.fine_tune_usd > 0
        assert choice.cost is not None and choice.cost.monthly_usd is not None
        assert choice.monthly_usd == choice.cost.monthly_usd + choice.fine_tune_usd
    assert catalog is not None


def test_table_has_twenty_workloads_with_seeds() -> None:
    assert len(TABLE) >= 20
    assert len(HELDOUT) == 5
    seeds = {_case(p)["seed"][:9] for p in TABLE}
    assert seeds == {f"seeds/00{i}" for i in range(5)}


@pytest.mark.parametrize("path", TABLE, ids=lambda p: p.stem)
def test_workload_decision(path: pathlib.Path) -> None:
    _check(path)


@pytest.mark.parametrize("path", HELDOUT, ids=lambda p: p.stem)
def test_heldout_workload_decision(path: pathlib.Path) -> None:
    _check(path)


def test_branches_are_covered() -> None:
    """Every question's and gate's branches appear in the table's expectations."""
    text = "\n".join(p.read_text("utf-8") for p in TABLE)
    for branch in (
        "frontier_reasoning",
        "video",
        "computer_use",
        "category: coding",
        "denied_origins",
        "on_prem",
        "regulated",
        "residency",
        "volume: false",
        "volume: true",
        "task_tolerance: false",
        "task_tolerance: true",
        "operations_capacity: false",
        "operations_capacity: true",
        "data_and_compliance: false",
        "latency_slo_ms",
        "narrow: true",
    ):
        assert branch in text, branch


def test_decimal_totals_are_sums() -> None:
    advice = advise(workload_from_dict(_case(HERE / "w24_hybrid_routing.yaml")["workload"]))
    parts = [t.monthly_usd for t in advice.choice.tiers]
    assert all(p is not None for p in parts)
    assert advice.total("recommended") == sum((p for p in parts if p), Decimal(0))
