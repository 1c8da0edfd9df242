"""License, origin and open-weights policy for deployments (pure functions over the
catalog entry), evaluated once per policy and cached; and deprecation status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from laneway.catalog import LICENSE_CLASSES, ModelInfo
from laneway.settings import KeyPolicy, PolicySettings

__all__ = [
    "Check",
    "EffectivePolicy",
    "PolicyVerdict",
    "deprecation_status",
    "effective_policy",
    "evaluate",
    "validate_license_entries",
]


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    """The license / origin / open-weights rules in force for one request (global
    settings, overridden field by field by the key's policy)."""

    allowed_licenses: tuple[str, ...]
    denied_origins: tuple[str, ...]
    require_open_weights: bool

    @property
    def empty(self) -> bool:
        return not (self.allowed_licenses or self.denied_origins or self.require_open_weights)


def effective_policy(policies: PolicySettings, key: KeyPolicy | None) -> EffectivePolicy:
    allowed = policies.allowed_licenses
    denied = policies.denied_origins
    open_weights = policies.require_open_weights
    if key is not None:
        if key.allowed_licenses is not None:
            allowed = key.allowed_licenses
        if key.denied_origins is not None:
            denied = tuple(c.upper() for c in key.denied_origins)
        if key.require_open_weights is not None:
            open_weights = key.require_open_weights
    return EffectivePolicy(
        tuple(a.lower() for a in allowed), tuple(d.upper() for d in denied), open_weights
    )


@dataclass(frozen=True, slots=True)
class Check:
    rule: str  # "license" | "origin" | "open_weights"
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class PolicyVerdict:
    deployment: str
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def reason(self) -> str:
        failed = [c.detail for c in self.checks if not c.passed]
        return "; ".join(failed) if failed else "passes every policy"


def evaluate(deployment: str, info: ModelInfo | None, policy: EffectivePolicy) -> PolicyVerdict:
    """Check one deployment's model against the policy. A model missing from the catalog
    fails every rule that is set (unknown license or origin is not allowed: fail closed)."""
    checks: list[Check] = []
    if policy.allowed_licenses:
        if info is None:
            checks.append(Check("license", False, "license unknown (model not in the catalog)"))
        else:
            ok = (
                info.license_id.lower() in policy.allowed_licenses
                or info.license_class in policy.allowed_licenses
            )
            allowed = ", ".join(policy.allowed_licenses)
            detail = f"license {info.license_id} ({info.license_class}) " + (
                "is allowed" if ok else f"is not in the allowed list [{allowed}]"
            )
            checks.append(Check("license", ok, detail))
    if policy.denied_origins:
        if info is None or info.origin is None:
            checks.append(Check("origin", False, "model origin unknown"))
        else:
            ok = info.origin.upper() not in policy.denied_origins
            detail = f"maker {info.maker} is from {info.origin}" + (
                "" if ok else " (a denied origin)"
            )
            checks.append(Check("origin", ok, detail))
    if policy.require_open_weights:
        ok = info is not None and info.open_weights
        detail = "open weights" if ok else "weights are not open" if info else "weights unknown"
        checks.append(Check("open_weights", ok, detail))
    return PolicyVerdict(deployment, tuple(checks))


def deprecation_status(
    info: ModelInfo | None, today: date, warn_days: int
) -> tuple[str, date] | None:
    """``("deprecated", day)`` past the catalog's deprecation date, ``("deprecating", day)``
    within ``warn_days`` of it, else ``None``."""
    if info is None or info.deprecation_date is None:
        return None
    day = info.deprecation_date
    if today >= day:
        return "deprecated", day
    if today + timedelta(days=warn_days) >= day:
        return "deprecating", day
    return None


def validate_license_entries(entries: Sequence[str], known_ids: set[str]) -> list[str]:
    """Entries that are neither a licence class nor a license id seen in the catalog (a typo there
    silently denies every deployment, so ``policy check`` points it out)."""
    classes = {c.lower() for c in LICENSE_CLASSES}
    known = {i.lower() for i in known_ids}
    return [e for e in entries if e.lower() not in classes and e.lower() not in known]
