"""Laneway's advisor: the source articles' decision framework and total-cost-of-ownership model.

A ``Workload`` (YAML via ``load_workload``, or the ledger via ``workload_from_ledger``) goes
through ``advise`` with the catalog and named, sourced ``Assumptions``. A decision is a chain:
constraints (data sensitivity and residency, origin, licence, capabilities, latency SLO),
then quality evidence per model (eval results attached to the model they measured), then
cost per path with one fleet for every self-hosted tier, then the articles' gates.
``advice_to_json`` is the stable ``--json`` schema; ``seed_checks`` recomputes the
articles' worked figures from each article's own inputs; ``SOURCES`` and ``cite`` name the
articles (publisher, month, URL). The HTML report (``render_html``) imports
jinja2 and matplotlib only when asked for.
"""

from __future__ import annotations

from laneway.advisor._advise import SCHEMA, Advice, Crossover, Total, advise
from laneway.advisor._assumptions import (
    Assumption,
    Assumptions,
    GpuSpec,
    GpuTable,
    default_assumptions,
    gpu_table,
)
from laneway.advisor._decision import Choice, Gate, Question, TierChoice
from laneway.advisor._evidence import Verdict
from laneway.advisor._finetune import FineTune
from laneway.advisor._fleet import Deployment, Fleet, fleet_for
from laneway.advisor._format import human_tokens, usd
from laneway.advisor._json import advice_to_json
from laneway.advisor._ledger import workload_from_ledger
from laneway.advisor._plan import PATHS, PathCost, PathName, TierPlan, model_size
from laneway.advisor._seedcheck import SeedCheck, seed_checks
from laneway.advisor._sources import SOURCES, Source, cite
from laneway.advisor._tco import (
    Load,
    ModelSize,
    SelfHostedCost,
    Sizing,
    api_cost_per_day,
    crossover_tokens_per_day,
    ownership_cost,
    self_hosted_at_utilisation,
    self_hosted_monthly,
    size_gpus,
)
from laneway.advisor._workload import (
    MAX_TOKENS_PER_DAY,
    Constraints,
    Evidence,
    Quality,
    Task,
    Traffic,
    Workload,
    load_workload,
    workload_from_dict,
)

__all__ = [
    "MAX_TOKENS_PER_DAY",
    "PATHS",
    "SCHEMA",
    "SOURCES",
    "Advice",
    "Assumption",
    "Assumptions",
    "Choice",
    "Constraints",
    "Crossover",
    "Deployment",
    "Evidence",
    "FineTune",
    "Fleet",
    "Gate",
    "GpuSpec",
    "GpuTable",
    "Load",
    "ModelSize",
    "PathCost",
    "PathName",
    "Quality",
    "Question",
    "SeedCheck",
    "SelfHostedCost",
    "Sizing",
    "Source",
    "Task",
    "TierChoice",
    "TierPlan",
    "Total",
    "Traffic",
    "Verdict",
    "Workload",
    "advice_to_json",
    "advise",
    "api_cost_per_day",
    "cite",
    "crossover_tokens_per_day",
    "default_assumptions",
    "fleet_for",
    "gpu_table",
    "human_tokens",
    "load_workload",
    "model_size",
    "ownership_cost",
    "render_html",
    "seed_checks",
    "self_hosted_at_utilisation",
    "self_hosted_monthly",
    "size_gpus",
    "usd",
    "workload_from_dict",
    "workload_from_ledger",
]


def render_html(advice: Advice) -> str:
    """The HTML decision document for ``advice`` (imports jinja2 and matplotlib)."""
    from laneway.advisor._html import render_html as render

    return render(advice)
