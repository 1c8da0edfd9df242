"""The router the gateway calls: messages → tier, score, estimates and a reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laneway.errors import ConfigError, ModelNotFound
from laneway.router._conversation import Conversation, conversation_from_messages
from laneway.router._profiles import Profile, load_profiles
from laneway.router._scorer import Scorer, default_router_dir

__all__ = ["DEFAULT_PROFILE", "RouteDecision", "Router", "load_router"]

DEFAULT_PROFILE = "default"


@dataclass(frozen=True, slots=True)
class RouteDecision:
    tier: str
    score: float
    estimates: Mapping[str, float]
    reason: str
    profile: str


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
        self, messages: Sequence[Mapping[str, Any]], profile: str | None = None
    ) -> RouteDecision:
        return self.route_conversation(conversation_from_messages(messages), profile)

    def route_conversation(self, conv: Conversation, profile: str | None = None) -> RouteDecision:
        chosen_profile = self.profile(profile)
        estimates, score = self._scorer.predict(conv)
        tiers = self._scorer.tiers
        chosen = tiers[-1]
        skipped: list[str] = []
        for tier in tiers[:-1]:
            threshold = chosen_profile.thresholds.get(tier)
            if threshold is not None and estimates[tier] >= threshold:
                chosen = tier
                break
            if threshold is not None:
                skipped.append(f"{tier} {estimates[tier]:.2f}<{threshold:.2f}")
        reason = f"{chosen} p={estimates[chosen]:.2f}"
        if chosen == tiers[-1]:
            reason += " (strongest)"
        elif chosen_profile.thresholds.get(chosen) is not None:
            reason += f">={chosen_profile.thresholds[chosen]:.2f}"
        if skipped:
            reason += "; " + ", ".join(skipped)
        served = self._target[chosen]
        if served != chosen:
            reason += f"; {chosen} not configured, using {served}"
        return RouteDecision(served, score, estimates, reason, chosen_profile.name)


def _nearest(tier: str, order: Sequence[str], available: Sequence[str]) -> str:
    i = order.index(tier)
    for candidate in order[i:]:
        if candidate in available:
            return candidate
    for candidate in reversed(order[:i]):
        if candidate in available:
            return candidate
    return available[-1]


def load_router(path: Path | None = None, tiers: Sequence[str] | None = None) -> Router:
    """Load a router directory (``None``: the one shipped in the package).

    Profiles are read from ``profiles/*.json`` beside ``router.json``; ``tiers``
    restricts the answer to the configured tiers (see ``Router``).
    """
    directory = default_router_dir() if path is None else path
    scorer = Scorer.load(directory)
    profiles = load_profiles(directory / "profiles")
    return Router(scorer, profiles, tiers)
