"""Laneway's advisor: the seeds' decision framework and total-cost-of-ownership model.

A ``Workload`` (YAML via ``load_workload``, or the ledger via ``workload_from_ledger``) goes
through ``advise`` with the catalog and named, sourced ``Assumptions``: cost per deployment
path and tier, crossover volumes, the six questions and four gates, a recommendation.
``advice_to_json`` is the stable ``--json`` schema; ``seed_checks`` recomputes the seeds'
worked figures from each seed's own inputs. The HTML report (``laneway.advisor._html``)
imports matplotlib only when asked for.
"""

from __future__ import annotations

from laneway.advisor._advise import SCHEMA, Advice, advice_to_json, advise
from laneway.advisor._assumptions import (
    Assumption,
    Assumptions,
    GpuSpec,
    GpuTable,
    default_assumptions,
    gpu_table,
)
from laneway.advisor._decision import FineTune, Gate, Question, TierChoice
from laneway.advisor._ledger import workload_from_ledger
from laneway.advisor._plan import PATHS, PathCost, PathName, TierPlan
from laneway.advisor._seedcheck import SeedCheck, seed_checks
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
    Constraints,
    Quality,
    Task,
    Traffic,
    Workload,
    load_workload,
    workload_from_dict,
)

__all__ = [
    "PATHS",
    "SCHEMA",
    "Advice",
    "Assumption",
    "Assumptions",
    "Constraints",
    "FineTune",
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
    "Task",
    "TierChoice",
    "TierPlan",
    "Traffic",
    "Workload",
    "advice_to_json",
    "advise",
    "api_cost_per_day",
    "crossover_tokens_per_day",
    "default_assumptions",
    "gpu_table",
    "load_workload",
    "ownership_cost",
    "seed_checks",
    "self_hosted_at_utilisation",
    "self_hosted_monthly",
    "size_gpus",
    "workload_from_dict",
    "workload_from_ledger",
]
