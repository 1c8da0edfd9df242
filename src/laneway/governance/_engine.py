"""Governance on the request path: authentication, sensitive-data routing (fail closed),
license / origin policy, key scope, kill switches, budgets and the audit record."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from laneway.catalog import ModelInfo
from laneway.errors import (
    AuthenticationFailed,
    DeploymentDisabled,
    InjectionBlocked,
    NoPrivateRoute,
    PolicyDenied,
    SensitiveDataBlocked,
)
from laneway.governance._policy import (
    EffectivePolicy,
    PolicyVerdict,
    deprecation_status,
    effective_policy,
    evaluate,
)
from laneway.providers import ChatRequest, prompt_upper_bound
from laneway.settings import KeyPolicy, SensitiveAction, Settings

if TYPE_CHECKING:
    from laneway.governance._keys import KeyRecord
    from laneway.governance._kill import KillSwitchCache
    from laneway.governance._redact import Redaction
    from laneway.governance._scan import Scanner
    from laneway.governance._store import GovernanceStore, KeyCache

__all__ = ["PRIVATE_HOSTING", "Admission", "DeploymentView", "Governance"]

log = logging.getLogger("laneway.governance")

PRIVATE_HOSTING = frozenset({"self_hosted", "embedded"})
_DEFAULT_OUTPUT_CAP = 4096


class PriceView(Protocol):
    """A deployment's token prices (USD per million tokens; ``None`` = unknown)."""

    @property
    def input_per_mtok(self) -> Decimal | None: ...
    @property
    def output_per_mtok(self) -> Decimal | None: ...


class DeploymentView(Protocol):
    """What governance needs to know about a deployment."""

    @property
    def name(self) -> str: ...
    @property
    def model_id(self) -> str: ...
    @property
    def hosting(self) -> str: ...
    @property
    def info(self) -> ModelInfo | None: ...
    @property
    def prices(self) -> PriceView | None: ...
    @property
    def hourly_cost(self) -> Decimal | None: ...
    @property
    def provider_names(self) -> tuple[str, ...]: ...
    @property
    def disabled_reason(self) -> str | None: ...


class KeyLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def budget_usd(self) -> Decimal | None: ...
    @property
    def models(self) -> tuple[str, ...] | None: ...
    @property
    def tiers(self) -> tuple[str, ...] | None: ...
    @property
    def allow_unknown_price(self) -> bool: ...
    @property
    def policy(self) -> KeyPolicy: ...


@dataclass(slots=True)
class Admission:
    """Governance's view of one request before routing; ``audit`` goes to the ledger."""

    key: KeyRecord | None = None
    sensitive: bool = False
    action: SensitiveAction = "allow"
    redacted: ChatRequest | None = None
    redaction: Redaction | None = None
    audit: dict[str, Any] = field(default_factory=dict)


class Governance:
    def __init__(
        self,
        settings: Settings,
        deployments: Mapping[str, DeploymentView],
        tiers: Mapping[str, Sequence[str]],
        *,
        scanner: Scanner,
        store: GovernanceStore | None = None,
        kills: KillSwitchCache | None = None,
        keys: KeyCache | None = None,
        master_key: str | None = None,
    ) -> None:
        self.settings = settings
        self.policies = settings.policies
        self._deployments = deployments
        self._tier_members = {t: frozenset(m) for t, m in tiers.items()}
        self.scanner = scanner
        self.store = store
        self.kills = kills
        self.keys = keys
        self._master = master_key.encode() if master_key else None
        self._verdicts: dict[EffectivePolicy, dict[str, PolicyVerdict]] = {}
        self._warned: dict[str, datetime] = {}
        self._clean: frozenset[str] | None = None
        self._clean_day = -1

    # -- authentication -----------------------------------------------------
    @property
    def auth_required(self) -> bool:
        return self._master is not None

    def is_master(self, presented: str | None) -> bool:
        if self._master is None or presented is None:
            return False
        return hmac.compare_digest(presented.encode(), self._master)

    def authenticate(self, authorization: str | None) -> KeyRecord | None:
        """The key record for a request (``None`` when no master key is configured).
        Unknown, malformed and revoked keys get the same 401."""
        if self._master is None:
            return None
        presented = _bearer(authorization)
        if self.is_master(presented):
            return None
        record = self.keys.authenticate(presented) if self.keys is not None else None
        if record is None:
            raise AuthenticationFailed("invalid API key")
        return record

    # -- before routing -----------------------------------------------------
    def admit(self, request: ChatRequest, key: KeyRecord | None) -> Admission:
        admission = Admission(key=key)
        audit = admission.audit
        if key is not None:
            audit["key"] = key.id
        result = self.scanner.scan_request(request)
        counts = dict(result.counts)
        admission.sensitive = bool(result.sensitive)
        if counts:
            audit["detectors"] = counts
            audit["positions"] = dict(result.positions)  # where: user, tools, params …
        if result.errors:
            audit["detector_errors"] = list(result.errors)
        if result.capped:  # counts of these detectors are lower bounds
            audit["detectors_capped"] = list(result.capped)
        action = self._action(key)
        audit["sensitive"] = admission.sensitive
        if admission.sensitive:
            admission.action = action
            audit["action"] = action
            if action == "block":
                raise SensitiveDataBlocked(
                    "the request contains sensitive data ("
                    + ", ".join(sorted(counts) or ["detector error"])
                    + ") and the policy blocks it"
                )
            if action == "redact":
                from laneway.governance._redact import redact_request

                redacted, redaction = redact_request(request, self.scanner)
                if redaction.errors:  # redaction may be incomplete: fail closed
                    admission.action = "self_hosted_only"
                    audit["action"] = "self_hosted_only (redaction failed)"
                else:
                    admission.redacted, admission.redaction = redacted, redaction
        self._check_injection(request, audit)
        return admission

    def _action(self, key: KeyRecord | None) -> SensitiveAction:
        if key is not None and key.policy.sensitive_action is not None:
            action: SensitiveAction = key.policy.sensitive_action
            return action
        return self.policies.sensitive.action

    def _check_injection(self, request: ChatRequest, audit: dict[str, Any]) -> None:
        if not self.policies.injection.flag and not self.policies.injection.block:
            return
        if not _has_untrusted(request):  # only system prompts and plain user turns
            return
        from laneway.governance._injection import injection_score

        finding = injection_score(request)
        if finding is None:
            return
        audit["injection"] = {
            "score": finding.score,
            "rules": dict(finding.rules),
            "positions": dict(finding.positions),
        }
        if self.policies.injection.block:
            raise InjectionBlocked("the request looks like a prompt injection and policy blocks it")

    # -- filtering the route -------------------------------------------------
    def filter(
        self, names: Sequence[str], tier: str | None, requested: str, admission: Admission
    ) -> list[str]:
        """Remove deployments that policy, key scope, kill switches or the sensitive-data
        rule exclude, recording why in the audit; raise when nothing is left."""
        key = admission.key
        if key is None and not admission.sensitive and self._plain(names):
            return list(names)
        removed: list[dict[str, str]] = []
        keep = list(names)
        keep = self._apply(
            keep, removed, "key_scope", lambda d: self._scope(d, tier, requested, key)
        )
        policy = effective_policy(self.policies, key.policy if key is not None else None)
        verdicts = self._verdicts_for(policy)
        keep = self._apply(keep, removed, "policy", lambda d: _fail(verdicts[d.name]))
        if not keep:
            raise PolicyDenied(_summary("no deployment passes the policy", removed))
        keep = self._apply(keep, removed, "disabled", lambda d: d.disabled_reason)
        keep = self._apply(keep, removed, "killed", self._killed)
        if not keep:
            raise DeploymentDisabled(
                _summary("every deployment that could serve this is disabled", removed)
            )
        if admission.sensitive and admission.action == "self_hosted_only":
            allowed = set(key.policy.sensitive_deployments) if key is not None else set()
            keep = self._apply(keep, removed, "sensitive", lambda d: _private(d, allowed))
            if not keep:
                raise NoPrivateRoute(
                    "the request contains sensitive data and no self-hosted or embedded "
                    "deployment can serve it"
                )
        if key is not None and key.budget_usd is not None and not key.allow_unknown_price:
            keep = self._apply(keep, removed, "price_unknown", _unknown_price)
            if not keep:
                raise PolicyDenied(
                    _summary("this key has a budget, so unknown prices are excluded", removed)
                )
        if removed:
            admission.audit.setdefault("removed", []).extend(removed)
        self._warn_deprecated(keep, admission)
        return keep

    def _plain(self, names: Sequence[str]) -> bool:
        """True when nothing can remove any of ``names`` for a keyless, non-sensitive
        request: every deployment passes the global policy, none is disabled, no kill
        switch is active and none is near deprecation (the request path's fast lane)."""
        if self.kills is not None and self.kills.active():
            return False
        clean = self._clean
        day = int(time.time() // 86400)  # recompute deprecation status once a UTC day
        if clean is None or day != self._clean_day:
            self._clean_day = day
            today = datetime.now(UTC).date()
            verdicts = self._verdicts_for(effective_policy(self.policies, None))
            warn = self.policies.deprecation_warning_days
            clean = self._clean = frozenset(
                name
                for name, d in self._deployments.items()
                if verdicts[name].passed
                and d.disabled_reason is None
                and deprecation_status(d.info, today, warn) is None
            )
        return all(name in clean for name in names)

    def invalidate(self) -> None:
        """Forget the cached fast-lane set (after a deployment is disabled)."""
        self._clean = None

    def _apply(
        self, names: list[str], removed: list[dict[str, str]], rule: str, why: Any
    ) -> list[str]:
        kept = []
        for name in names:
            reason = why(self._deployments[name])
            if reason:
                removed.append({"deployment": name, "rule": rule, "reason": reason})
            else:
                kept.append(name)
        return kept

    def _scope(
        self, d: DeploymentView, tier: str | None, requested: str, key: KeyRecord | None
    ) -> str | None:
        if key is None:
            return None
        if key.models is not None and not {requested, d.name, d.model_id} & set(key.models):
            return "this key may not use this model"
        if key.tiers is not None:
            tiers = {t for t, members in self._tier_members.items() if d.name in members}
            if tier is not None:
                tiers.add(tier)
            if not tiers & set(key.tiers):
                return "this key may not use this tier"
        return None

    def _verdicts_for(self, policy: EffectivePolicy) -> dict[str, PolicyVerdict]:
        cached = self._verdicts.get(policy)
        if cached is None:
            cached = {n: evaluate(n, d.info, policy) for n, d in self._deployments.items()}
            self._verdicts[policy] = cached
        return cached

    def verdicts(self, key_policy: KeyPolicy | None = None) -> dict[str, PolicyVerdict]:
        return self._verdicts_for(effective_policy(self.policies, key_policy))

    def killed_reason(self, d: DeploymentView) -> str | None:
        """Why a kill switch disables ``d`` (``None`` when none does)."""
        return self._killed(d)

    def _killed(self, d: DeploymentView) -> str | None:
        if self.kills is None:
            return None
        candidates = [("deployment", d.name), ("model", d.model_id)]
        candidates += [("provider", p) for p in d.provider_names]
        candidates += [("tier", t) for t, m in self._tier_members.items() if d.name in m]
        for kind, name in candidates:
            record = self.kills.is_killed(kind, name)
            if record is not None:
                reason = getattr(record, "reason", None)
                return f"{kind} {name} is killed" + (f": {reason}" if reason else "")
        return None

    def _warn_deprecated(self, names: Sequence[str], admission: Admission) -> None:
        today = datetime.now(UTC).date()
        for name in names:
            status = deprecation_status(
                self._deployments[name].info, today, self.policies.deprecation_warning_days
            )
            if status is None:
                continue
            admission.audit.setdefault("deprecation", {})[name] = f"{status[0]} {status[1]}"
            last = self._warned.get(name)
            now = datetime.now(UTC)
            if last is None or (now - last).total_seconds() > 3600:
                self._warned[name] = now
                log.warning("deployment %s serves a model %s on %s", name, status[0], status[1])

    # -- money -------------------------------------------------------------------
    def max_cost(self, request: ChatRequest, names: Sequence[str]) -> Decimal:
        """The most this request can cost on any of ``names`` (for budget reservation):
        an upper bound of the prompt (every image at the most a provider charges for
        one) plus the output cap, at the dearest of them."""
        prompt = prompt_upper_bound(request)
        worst = Decimal(0)
        for name in names:
            d = self._deployments[name]
            prices = d.prices
            if prices is None:
                continue
            cap = request.max_tokens or _output_cap(d)
            cost = Decimal(prompt) * (prices.input_per_mtok or Decimal(0)) + Decimal(cap) * (
                prices.output_per_mtok or Decimal(0)
            )
            worst = max(worst, cost / Decimal(1_000_000))
        return worst


def _has_untrusted(request: ChatRequest) -> bool:
    """Whether any text could carry an injection: tool results, assistant history, or
    documents passed as extra parts of a user turn."""
    for message in request.messages:
        role = message.get("role")
        if role in ("tool", "function", "assistant"):
            return True
        content = message.get("content")
        if role == "user" and isinstance(content, list) and len(content) > 1:
            return True
    return False


def _output_cap(d: DeploymentView) -> int:
    caps = getattr(d.info, "capabilities", None)
    value = getattr(caps, "max_output_tokens", None)
    return int(value) if value else _DEFAULT_OUTPUT_CAP


def _fail(verdict: PolicyVerdict) -> str | None:
    return None if verdict.passed else verdict.reason


def _private(d: DeploymentView, allowed: set[str]) -> str | None:
    if d.hosting in PRIVATE_HOSTING or d.name in allowed:
        return None
    return f"{d.hosting} deployment may not receive sensitive data"


def _unknown_price(d: DeploymentView) -> str | None:
    prices = d.prices
    if (
        prices is not None
        and prices.input_per_mtok is not None
        and (prices.output_per_mtok is not None)
    ):
        return None
    if prices is None and d.hosting in PRIVATE_HOSTING:
        return None if d.hourly_cost == 0 else "price unknown (amortised hourly cost)"
    return "price unknown"


def _summary(prefix: str, removed: list[dict[str, str]]) -> str:
    details = "; ".join(f"{r['deployment']}: {r['reason']}" for r in removed)
    return f"{prefix}: {details}" if details else prefix


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
