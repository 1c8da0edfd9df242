"""Per-request lane choice: a learned score decides the tier of each request.

``load_router()`` loads the router shipped in the package (or a trained one);
``Router.route(messages, profile)`` returns a ``RouteDecision`` with the tier, the
score (the estimated difficulty: 1 − the mean of the per-tier estimates, higher =
harder; it ranks held-out prompts better than a learned P(cheapest tier worse than the
strongest) did, see the model card), per-tier estimates and a reason. Scoring is
numpy-only, CPU-only and does no I/O.
"""

from __future__ import annotations

from laneway.router._calibration_set import calibrate_router, calibration_rows
from laneway.router._conversation import (
    Conversation,
    conversation_from_messages,
    conversation_from_prompt,
)
from laneway.router._fit import train_scorer
from laneway.router._metrics import PairMetrics, bootstrap, pair_metrics, pgr_curve
from laneway.router._profiles import Goal, Profile
from laneway.router._router import DEFAULT_PROFILE, RouteDecision, Router, load_router
from laneway.router._scorer import Scorer, default_router_dir
from laneway.router._training import DEFAULT_TIER_MODELS, DEFAULT_TIERS

__all__ = [
    "DEFAULT_PROFILE",
    "DEFAULT_TIERS",
    "DEFAULT_TIER_MODELS",
    "Conversation",
    "Goal",
    "PairMetrics",
    "Profile",
    "RouteDecision",
    "Router",
    "Scorer",
    "bootstrap",
    "calibrate_router",
    "calibration_rows",
    "conversation_from_messages",
    "conversation_from_prompt",
    "default_router_dir",
    "load_router",
    "pair_metrics",
    "pgr_curve",
    "train_scorer",
]
