"""Kill switches: take a deployment, model, provider or tier out of service at once.

The active switches live in ``gov_kills`` (one row per ``(kind, name)``); every kill and
every effective unkill is appended to ``gov_kill_history``. The request path never reads the
database: :class:`KillSwitchCache` keeps a snapshot that a background thread refreshes every
``interval`` seconds, so a kill reaches every worker within about that long.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

import sqlalchemy as sa

from laneway.errors import InvalidRequest
from laneway.ledger import UtcDateTime

__all__ = [
    "KILLS",
    "KILL_HISTORY",
    "KILL_KINDS",
    "KillEvent",
    "KillKind",
    "KillRecord",
    "KillSwitchCache",
    "check_kill_target",
    "check_kind",
    "event_from_row",
    "kill_from_row",
    "kill_targets",
]

KillKind = Literal["deployment", "model", "provider", "tier"]
KILL_KINDS: tuple[KillKind, ...] = get_args(KillKind)

_log = logging.getLogger("laneway.governance")


def _tables() -> tuple[sa.Table, sa.Table]:
    meta = sa.MetaData()
    kills = sa.Table(
        "gov_kills",
        meta,
        sa.Column("kind", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("killed_at", UtcDateTime(), nullable=False),
    )
    history = sa.Table(
        "gov_kill_history",
        meta,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("ts", UtcDateTime(), nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
    )
    return kills, history


KILLS, KILL_HISTORY = _tables()


@dataclass(frozen=True, slots=True)
class KillRecord:
    kind: KillKind
    name: str
    reason: str | None
    actor: str
    killed_at: datetime


@dataclass(frozen=True, slots=True)
class KillEvent:
    """One line of the kill-switch history."""

    ts: datetime
    action: Literal["kill", "unkill"]
    kind: KillKind
    name: str
    reason: str | None
    actor: str


def check_kind(kind: str) -> KillKind:
    if kind not in KILL_KINDS:
        raise InvalidRequest(
            f"kill switch kind must be one of {', '.join(KILL_KINDS)}, not {kind!r}"
        )
    return kind


def kill_from_row(row: sa.RowMapping) -> KillRecord:
    return KillRecord(
        kind=check_kind(row["kind"]),
        name=row["name"],
        reason=row["reason"],
        actor=row["actor"],
        killed_at=row["killed_at"],
    )


def event_from_row(row: sa.RowMapping) -> KillEvent:
    return KillEvent(
        ts=row["ts"],
        action=row["action"],
        kind=check_kind(row["kind"]),
        name=row["name"],
        reason=row["reason"],
        actor=row["actor"],
    )


class KillSwitchCache:
    """The active kill switches for the request path: ``is_killed`` is a dictionary lookup.

    ``load`` (normally ``GovernanceStore.active_kills``) runs once in the constructor and then
    every ``interval`` seconds in a daemon thread. If a refresh fails the last snapshot stays
    in force (and the error is logged), so a database hiccup never revives a killed target.
    """

    def __init__(
        self,
        load: Callable[[], list[KillRecord]],
        *,
        interval: float = 0.5,
        background: bool = True,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._load = load
        self._interval = interval
        self._stop = threading.Event()
        self._snapshot: dict[tuple[str, str], KillRecord] = {}
        self.refreshed_at = 0.0  # time.monotonic() of the last successful refresh
        self.refresh()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(
                target=self._run, name="laneway-kill-switches", daemon=True
            )
            self._thread.start()

    def refresh(self) -> None:
        """Reload the snapshot now (raises what ``load`` raises)."""
        records = self._load()
        self._snapshot = {(r.kind, r.name): r for r in records}  # one atomic swap
        self.refreshed_at = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.refresh()
            except Exception:
                _log.exception("refreshing the kill switches failed; keeping the last snapshot")

    def is_killed(self, kind: str, name: str) -> KillRecord | None:
        return self._snapshot.get((kind, name))

    def active(self) -> list[KillRecord]:
        snapshot = self._snapshot
        if not snapshot:
            return []
        return sorted(snapshot.values(), key=lambda r: (r.kind, r.name))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def kill_targets(settings: Any) -> dict[str, set[str]]:
    """Per kind, the names a kill switch can match for this config: deployment names,
    catalog model ids, providers and vendors, tiers (as the gateway matches them)."""
    from laneway.providers import vendor_for

    deployments = settings.deployments
    providers = {d.provider for d in deployments}
    providers |= {v.id for v in (vendor_for(d) for d in deployments) if v is not None}
    return {
        "deployment": {d.name for d in deployments},
        "model": {d.model for d in deployments},
        "provider": providers,
        "tier": set(settings.tiers),
    }


def check_kill_target(kind: str, name: str, settings: Any) -> None:
    """``InvalidRequest`` for a name the config does not have: during an incident a typo
    must not report success while nothing is switched off."""
    known = kill_targets(settings).get(kind, set())
    if name not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise InvalidRequest(
            f"the config has no {kind} {name!r} (known: {listed}); force it to kill anyway",
            param="name",
        )
