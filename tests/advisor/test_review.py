"""Findings of a review against the five source articles: each test is a workload a user
would write from an article, with the article's sentence it checks."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from laneway.advisor import advice_to_json, advise, workload_from_dict
from laneway.errors import InvalidRequest


def _realtime(p95: int, ops: str = "full") -> dict[str, Any]:
    # novaaiops.com, Aug 2026: "Self-hosting in your VPC eliminates the round-trip; latency
    # drops by 50-200ms. For latency-sensitive applications (real-time UX), the difference
    # is meaningful."
    return {
        "name": "realtime",
        "ops_capacity": ops,
        "latency_slo_ms": 800,
        "api_latency_p95_ms": p95,
        "tasks": [
            {
                "name": "autocomplete",
                "tier": "simple",
                "requests_per_day": 20000,
                "input_tokens": 500,
                "output_tokens": 50,
            }
        ],
        "evals": [{"model": "llama-3.1-8b-instruct", "score": 0.9, "required_score": 0.85}],
    }


def test_latency_case_self_hosts_when_the_vpc_saving_closes_the_gap() -> None:
    advice = advise(workload_from_dict(_realtime(950)))
    assert [t.path for t in advice.choice.tiers] == ["self_hosted"]


def test_an_api_that_misses_the_slo_by_more_than_the_vpc_saving_is_flagged() -> None:
    # 1,200 ms against 800 ms: 400 ms, more than the 200 ms self-hosting saves, so the API
    # stays the recommendation, but the user must be told it misses the SLO.
    advice = advise(workload_from_dict(_realtime(1200)))
    assert [t.path for t in advice.choice.tiers] == ["serverless_open"]
    text = " ".join(advice.warnings)
    assert "misses the 800 ms SLO by 400 ms" in text, advice.warnings
    assert "no path is known to meet it" in text


def test_an_api_that_misses_the_slo_while_a_gate_blocks_self_hosting_is_flagged() -> None:
    advice = advise(workload_from_dict(_realtime(950, ops="partial")))
    assert [t.path for t in advice.choice.tiers] == ["serverless_open"]
    text = " ".join(advice.warnings)
    assert "misses the 800 ms SLO by 150 ms" in text, advice.warnings
    assert "could close it" in text


def test_a_small_bill_is_never_written_as_zero_dollars() -> None:
    # RTSN, Jun 2026: "Between 5 million and 30 million tokens per month: evaluate managed
    # open-weight hosting": 15M tokens/month costs cents a month on a serverless 8B model.
    data = advice_to_json(
        advise(
            workload_from_dict(
                {
                    "name": "mid",
                    "ops_capacity": "full",
                    "tasks": [
                        {
                            "name": "extract",
                            "tier": "simple",
                            "requests_per_day": 500,
                            "input_tokens": 800,
                            "output_tokens": 200,
                        }
                    ],
                }
            )
        )
    )
    monthly = data["recommendation"]["monthly_usd"]
    assert monthly is not None and float(monthly) < 1
    assert data["recommendation"]["summary"].endswith(f"${float(monthly):.2f}/month")
    volume = next(g for g in data["gates"] if g["name"] == "volume")
    assert "vs $0/month" not in volume["reason"], volume["reason"]


def test_an_empty_ledger_says_which_window_was_empty(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from laneway.advisor import workload_from_ledger
    from laneway.ledger import open_database

    engine = open_database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(InvalidRequest) as info:
            workload_from_ledger(engine, since=datetime(2026, 11, 7, tzinfo=UTC))
        assert "since 2026-11-07 00:00 UTC" in info.value.message
        assert "--since" in info.value.message
        with pytest.raises(InvalidRequest) as info:
            workload_from_ledger(engine, since=None)
        assert "no API requests" in info.value.message
    finally:
        engine.dispose()


def _volume_task(**volume: Any) -> dict[str, Any]:
    task = {"name": "bulk", "tier": "standard", "input_tokens": 1500, "output_tokens": 500}
    return {"name": "units", "tasks": [{**task, **volume}]}


def test_a_volume_can_be_given_in_tokens_per_day_or_per_month() -> None:
    # sabaoon.dev, Jun 2026: "a team processing 10 billion tokens per month"; RTSN, Jun 2026:
    # "1 million tokens per day (roughly 30 million tokens per month)".
    month = workload_from_dict(_volume_task(tokens_per_month=30_000_000))
    day = workload_from_dict(_volume_task(tokens_per_day=1_000_000))
    requests = workload_from_dict(_volume_task(requests_per_day=500))
    assert month.tokens_per_day == day.tokens_per_day == requests.tokens_per_day == 1_000_000
    assert month.tasks[0].requests_per_day == 500
    ten_b = advise(workload_from_dict(_volume_task(tokens_per_month=10**10)))
    assert abs(ten_b.workload.tokens_per_day * 30 - 10**10) < 1


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({}, "tokens_per_day or tokens_per_month"),
        ({"tokens_per_day": 1, "requests_per_day": 1}, "give one volume"),
        ({"tokens_per_month": -1}, "tokens_per_month: must be a finite number >= 0"),
        ({"tokens_per_day": "1B"}, "is not a number"),
    ],
)
def test_a_volume_that_is_missing_twice_or_wrong_is_refused(
    volume: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        workload_from_dict(_volume_task(**volume))
    assert message in info.value.message


def test_a_token_volume_needs_the_request_size() -> None:
    data = {"name": "x", "tasks": [{"name": "a", "tier": "simple", "tokens_per_day": 10**6}]}
    with pytest.raises(InvalidRequest) as info:
        workload_from_dict(data)
    assert "with tokens_per_day, give input_tokens and output_tokens" in info.value.message


def test_seed_check_verdicts_follow_the_recomputed_figures() -> None:
    # The verdicts are computed from each article's own inputs, so other inputs flip them:
    # Digital Applied, Apr 2026: M2.7 "roughly 50x less per million output tokens" than Opus
    # 4.6 ($25 vs $1.20: 20.8x); at a $60 Opus output price it would be 50x.
    from laneway.advisor._seedcheck import (
        _check_358x,
        _check_crossover,
        _check_m27,
        _check_opus,
    )

    assert _check_m27().verdict == "does not hold"
    assert _check_m27(opus_out=Decimal(60)).verdict == "holds"
    # sabaoon.dev, Jun 2026: "$1.2M/month for Claude Opus versus $24,000/month for DeepSeek
    # V4": only at $120/M output (GPT-5 Pro's price), not Opus 4.8's $100.
    assert _check_opus().verdict == "does not hold"
    assert _check_opus(opus_out=Decimal(120)).verdict == "holds"
    # RTSN, Jun 2026: "$0.12 per day ... $43 per day ... a 358-fold difference".
    assert _check_358x().verdict == "holds"
    assert _check_358x(rig_day=Decimal(20)).verdict == "does not hold"
    # RTSN: "around 500 million tokens per day ... roughly 5x savings" needs the API at
    # >= $0.43/M against the $43/day rig.
    assert _check_crossover().verdict == "does not hold"
    assert _check_crossover(api_rate=Decimal("0.45")).verdict == "holds"


def test_a_fleet_below_half_utilisation_is_flagged() -> None:
    # RTSN, Jun 2026: "only if GPU utilisation stays above 50%. Below that floor, per-token
    # costs increase tenfold". On-prem data at 500k tokens/day is self-hosted whatever the
    # price, on GPUs that sit nearly idle: the user must see that.
    advice = advise(
        workload_from_dict(
            {
                "name": "hospital",
                "data_sensitivity": "on_prem",
                "ops_capacity": "full",
                "tasks": [
                    {
                        "name": "notes",
                        "tier": "standard",
                        "requests_per_day": 200,
                        "input_tokens": 2000,
                        "output_tokens": 500,
                    }
                ],
            }
        )
    )
    assert advice.choice.fleet is not None
    text = " ".join(advice.warnings)
    assert "under 1% average utilisation, below the 50%" in text, advice.warnings
    assert "keeping the data inside" in text


def test_residency_question_names_both_readings_of_the_articles() -> None:
    # Digital Applied, Apr 2026, question 6: "EU data residency ... forces self-hosting";
    # RTSN, Jun 2026: regional endpoints "for teams ... who prefer not to self-host".
    data = _volume_task(requests_per_day=5000)
    advice = advise(workload_from_dict({**data, "residency": ["EU"]}))
    q6 = next(q for q in advice.questions if q.number == 6)
    assert "in-region providers only" in q6.effect
    assert "data_sensitivity: on_prem" in q6.effect


def test_a_tier_nothing_can_serve_says_which_constraints_emptied_it() -> None:
    # Digital Applied, Apr 2026, question 4: non-Chinese-origin clients; here every US model
    # is denied too, while the task needs frontier reasoning (question 1: closed, US labs).
    data = _volume_task(requests_per_day=1000)
    data["tasks"][0]["needs"] = ["frontier_reasoning"]
    data["constraints"] = {"denied_origins": ["US"]}
    with pytest.raises(InvalidRequest) as info:
        advise(workload_from_dict(data))
    assert "origin US is denied" in info.value.message, info.value.message
    assert "not named by the source articles for frontier_reasoning" in info.value.message


def test_on_prem_data_with_only_closed_licences_says_why() -> None:
    data = _volume_task(requests_per_day=1000)
    data["data_sensitivity"] = "on_prem"
    data["constraints"] = {"allowed_licenses": ["closed"]}
    with pytest.raises(InvalidRequest) as info:
        advise(workload_from_dict(data))
    assert "data cannot leave our infrastructure" in info.value.message
    assert "licence not allowed" in info.value.message, info.value.message
