"""The router the gateway calls: messages (+ task) → tier, gain score, difficulty, reason.

The gateway calls ``Router.route(messages, profile, task=...)`` once per ``auto``
request and, for a profile with a cascade, ``Router.check_answer(spec, request,
result)`` on the cheap tier's buffered answer. Both are pure CPU work (numpy), no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laneway.errors import ConfigError, ModelNotFound
from laneway.router._cascade import (
    AnswerResult,
    CascadeSpec,
    EscalationDecision,
    RequestInfo,
    check_answer,
    parse_cascade,
)
from laneway.router._conversation import Conversation, conversation_from_messages
from laneway.router._profiles import Profile, load_profiles
from laneway.router._scorer import Scorer
from laneway.router._state import resolve_router_dir

__all__ = ["DEFAULT_PROFILE", "RouteDecision", "Router", "load_router"]

DEFAULT_PROFILE = "default"


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """One routing decision.

    ``score`` is the expected gain of escalating: P(strongest tier answers well) −
    P(cheapest tier answers well) (the ``x-laneway-route-score`` header; it may be
    negative). ``difficulty`` is 1 − the mean of the tier estimates. ``task_known``
    says whether per-task effects for ``task`` were learned (else the text alone
    decided). ``cascade`` is the profile's cascade, when it has one: the gateway
    calls ``cascade.from_tier`` first and ``Router.check_answer`` on its answer.
    """

    tier: str
    score: float
    difficulty: float
    estimates: Mapping[str, float]
    reason: str
    profile: str
    task: str | None = None
    task_known: bool = False
    cascade: CascadeSpec | None = None

    @property
    def gain(self) -> float:
        return self.score


class Router:
    """Scores a conversation and picks the cheapest tier meeting the profile's target.

    ``tiers`` are the tiers this router may answer with, cheapest first. When the
    gateway's configuration lacks a tier the model knows (``with_tiers``), a choice
    of that tier moves to the nearest configured tier *upward* (never to a cheaper
    one), or, with none upward, to the strongest configured tier below it.
    """

    __slots__ = ("_profiles", "_scorer", "_target", "tiers")

    def __init__(
        self,
        scorer: Scorer,
        profiles: Mapping[str, Profile],
        available: Sequence[str] | None = None,
    ) -> None:
        if DEFAULT_PROFILE not in profiles:
            raise ConfigError("a router needs a calibrated 'default' profile")
        for p in profiles.values():
            if p.cascade is not None:  # tier names and order, now that the tiers are known
                parse_cascade(p.cascade.to_dict(), scorer.tiers)
        self._scorer = scorer
        self._profiles = dict(profiles)
        known = [t for t in scorer.tiers if available is None or t in available]
        if not known:
            raise ConfigError("none of the configured tiers is known to the router")
        self.tiers: tuple[str, ...] = tuple(known)
        self._target = {t: _nearest(t, scorer.tiers, self.tiers) for t in scorer.tiers}

    @property
    def scorer(self) -> Scorer:
        return self._scorer

    def profiles(self) -> tuple[str, ...]:
        return tuple(sorted(self._profiles))

    def profile(self, name: str | None) -> Profile:
        key = DEFAULT_PROFILE if name is None or name == "" else name
        found = self._profiles.get(key)
        if found is None:
            raise ModelNotFound(
                f"unknown routing profile 'auto:{key}'; known: "
                + ", ".join(f"auto:{p}" for p in self.profiles()),
                param="model",
            )
        return found

    def with_tiers(self, available: Sequence[str]) -> Router:
        """The same router restricted to the configured tiers (mapped by name)."""
        return Router(self._scorer, self._profiles, available)

    def route(
        self,
        messages: Sequence[Mapping[str, Any]],
        profile: str | None = None,
        task: str | None = None,
    ) -> RouteDecision:
        """Route an OpenAI-format conversation; ``task`` selects per-task effects."""
        return self.route_conversation(conversation_from_messages(messages), profile, task)

    def route_conversation(
        self, conv: Conversation, profile: str | None = None, task: str | None = None
    ) -> RouteDecision:
        chosen_profile = self.profile(profile)
        estimates = self._scorer.predict(conv, task)
        tiers = self._scorer.tiers
        top = estimates[tiers[-1]]
        gain = top - estimates[tiers[0]]
        difficulty = 1.0 - sum(estimates.values()) / len(estimates)
        limit = chosen_profile.max_loss
        chosen = tiers[-1]
        skipped: list[str] = []
        for tier in tiers[:-1]:
            loss = top - estimates[tier]
            if loss <= limit:
                chosen = tier
                break
            skipped.append(f"{tier} loss {loss:.2f}")
        known = task is not None and self._scorer.tasks.get(task) is not None
        reason = f"{chosen} gain={gain:.2f}"
        if chosen != tiers[-1]:
            reason += f" loss={top - estimates[chosen]:.2f}<={limit:.2f}"
        else:
            reason += f" (strongest; loss limit {limit:.2f})"
        if skipped:
            reason += "; " + ", ".join(skipped)
        if task is not None:
            reason += f"; task {task}" + ("" if known else " (unseen: text only)")
        served = self._target[chosen]
        if served != chosen:
            reason += f"; {chosen} not configured, using {served}"
        cascade = chosen_profile.cascade
        return RouteDecision(
            served, gain, difficulty, estimates, reason, chosen_profile.name, task, known, cascade
        )

    def check_answer(
        self, spec: CascadeSpec, request: RequestInfo, result: AnswerResult
    ) -> EscalationDecision:
        """Run the cascade's checks on the cheap answer (with this router's verifier)."""
        return check_answer(spec, request, result, self._scorer.verifier)


def _nearest(tier: str, order: Sequence[str], available: Sequence[str]) -> str:
    i = order.index(tier)
    for candidate in order[i:]:
        if candidate in available:
            return candidate
    for candidate in reversed(order[:i]):
        if candidate in available:
            return candidate
    return available[-1]


def load_router(
    path: Path | None = None,
    tiers: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Router:
    """Load a router directory (``None``: the active router in the user's state
    directory when one was promoted, else the one shipped in the package).

    Profiles are read from ``profiles/*.json`` beside ``router.json``; ``tiers``
    restricts the answer to the configured tiers (see ``Router``).
    """
    directory = resolve_router_dir(path, environ)
    scorer = Scorer.load(directory)
    profiles = load_profiles(directory / "profiles")
    return Router(scorer, profiles, tiers)
