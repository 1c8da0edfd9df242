"""Per-request lane choice: learned per-tier quality, per task, decides the tier.

``load_router()`` loads the active router (promoted into the user's state directory)
or the one shipped in the package; ``Router.route(messages, profile, task=None)``
returns a ``RouteDecision``: the tier (the cheapest whose expected quality loss
against the strongest tier is within the profile's ``max_loss``), the score (the
expected gain of escalating, P(strongest ok) − P(cheapest ok)), the difficulty,
per-tier estimates and a reason. A profile may carry a cascade:
``Router.check_answer(spec, RequestInfo, AnswerResult)`` runs its checks on the
cheap answer. Scoring is numpy-only, CPU-only and does no I/O.
"""

from __future__ import annotations

from laneway.router._calibration_set import (
    calibrate_router,
    calibration_rows,
    default_calibration_path,
)
from laneway.router._cascade import (
    CHECK_NAMES,
    AnswerResult,
    CascadeSpec,
    CheckSpec,
    EscalationDecision,
    RequestInfo,
    ToolCall,
    calibrate_logprob_threshold,
    check_answer,
    parse_cascade,
)
from laneway.router._cascade_check import cascade_check
from laneway.router._conversation import (
    Conversation,
    conversation_from_messages,
    conversation_from_prompt,
)
from laneway.router._evaluate import EvalReport, evaluate_pair, plot_curves
from laneway.router._fit import length_prior_weights, train_scorer
from laneway.router._from_config import (
    config_tier_models,
    ledger_prompt_rows,
    ledger_tokens_per_request,
    tier_costs,
)
from laneway.router._holdout import (
    OutcomeSplit,
    coverage_problem,
    rows_not_trained_on,
    save_trained_prompts,
    split_outcomes,
)
from laneway.router._io import TASK_NAME, conversation_of, iter_jsonl, outcome_row, read_outcomes
from laneway.router._metrics import PairMetrics, bootstrap, pair_metrics, pgr_curve
from laneway.router._profiles import Goal, Profile, check_profile_name
from laneway.router._promote import (
    DEFAULT_HOLDOUT_MODULUS,
    HeldOutCheck,
    gain_scores,
    held_out,
    held_out_check,
)
from laneway.router._report import (
    BaselinePrice,
    SavingsReport,
    TierSpend,
    baseline_price,
    savings_report,
)
from laneway.router._router import DEFAULT_PROFILE, RouteDecision, Router, load_router
from laneway.router._scorer import Scorer, default_router_dir, load_embedder
from laneway.router._state import (
    active_router_dir,
    ensure_active_router,
    install_router,
    resolve_router_dir,
    state_dir,
)
from laneway.router._task_report import (
    ProfileSummary,
    TaskSummary,
    profile_summaries,
    task_summaries,
)
from laneway.router._training import (
    ANSWERS_TIER_MODELS,
    DEFAULT_TIER_MODELS,
    DEFAULT_TIERS,
    MMLU_PRO_TIER_MODELS,
)
from laneway.router._verifier import Verdict, Verifier

__all__ = [
    "ANSWERS_TIER_MODELS",
    "CHECK_NAMES",
    "DEFAULT_HOLDOUT_MODULUS",
    "DEFAULT_PROFILE",
    "DEFAULT_TIERS",
    "DEFAULT_TIER_MODELS",
    "MMLU_PRO_TIER_MODELS",
    "TASK_NAME",
    "AnswerResult",
    "BaselinePrice",
    "CascadeSpec",
    "CheckSpec",
    "Conversation",
    "EscalationDecision",
    "EvalReport",
    "Goal",
    "HeldOutCheck",
    "OutcomeSplit",
    "PairMetrics",
    "Profile",
    "ProfileSummary",
    "RequestInfo",
    "RouteDecision",
    "Router",
    "SavingsReport",
    "Scorer",
    "TaskSummary",
    "TierSpend",
    "ToolCall",
    "Verdict",
    "Verifier",
    "active_router_dir",
    "baseline_price",
    "bootstrap",
    "calibrate_logprob_threshold",
    "calibrate_router",
    "calibration_rows",
    "cascade_check",
    "check_answer",
    "check_profile_name",
    "config_tier_models",
    "conversation_from_messages",
    "conversation_from_prompt",
    "conversation_of",
    "coverage_problem",
    "default_calibration_path",
    "default_router_dir",
    "ensure_active_router",
    "evaluate_pair",
    "gain_scores",
    "held_out",
    "held_out_check",
    "install_router",
    "iter_jsonl",
    "ledger_prompt_rows",
    "ledger_tokens_per_request",
    "length_prior_weights",
    "load_embedder",
    "load_router",
    "outcome_row",
    "pair_metrics",
    "parse_cascade",
    "pgr_curve",
    "plot_curves",
    "profile_summaries",
    "read_outcomes",
    "resolve_router_dir",
    "rows_not_trained_on",
    "save_trained_prompts",
    "savings_report",
    "split_outcomes",
    "state_dir",
    "task_summaries",
    "tier_costs",
    "train_scorer",
]
