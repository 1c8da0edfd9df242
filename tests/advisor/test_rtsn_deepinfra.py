"""RTSN's worked example (Jun 2026) is priced on the API it names: DeepInfra's Llama 3.3 70B
(catalog data, not a rule), and its figure is reproduced from that price."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import yaml

from laneway.advisor import Load, advise, api_cost_per_day, workload_from_dict

W27 = Path(__file__).parent / "workloads" / "w27_rtsn_1m_tokens_day.yaml"


def test_rtsn_one_million_tokens_a_day_is_priced_on_deepinfra() -> None:
    # RTSN, Jun 2026: "At 1 million tokens per day ..., using the DeepInfra API for Llama 3.3
    # 70B costs approximately $0.12 per day. Self-hosting the same model on Lambda Labs
    # hardware costs approximately $43 per day — a 358-fold difference". It was priced on
    # Groq ($0.59/$0.79: $0.63/day, $18.90/month) for want of a DeepInfra price.
    case = yaml.safe_load(W27.read_text("utf-8"))
    advice = advise(workload_from_dict(case["workload"]))
    (tier,) = advice.choice.tiers
    assert tier.path == "serverless_open" and tier.cost is not None
    price = tier.cost.price
    assert price is not None and price.provider == "deepinfra"
    # 800 input + 200 output tokens a request: 0.8 x $0.12 + 0.2 x $0.30 = $0.156/day
    assert tier.cost.monthly_usd == Decimal("4.68")
    # the article's $0.12/day is DeepInfra's input rate on all 1M tokens
    all_input = Load(
        Decimal(1000), Decimal(1_000_000), Decimal(0), Decimal(0), Decimal(1), Decimal(30)
    )
    assert api_cost_per_day(all_input, price) == Decimal("0.12")
    assert not any(g.passed for g in advice.gates if g.name == "volume")
