"""The governance store: keys, budgets, rate limits and kill switches in the shared database.

All workers (threads and processes) share state through the database, so a revocation, a
kill or the last cent of a budget is seen by every one of them. Writes take the database's
write lock first (SQLite ``BEGIN IMMEDIATE``) and are short; reads are plain queries. Every
method is synchronous and thread-safe (one pooled connection per call); the gateway calls
them from worker threads. :class:`KeyCache` and :class:`~laneway.governance._kill.KillSwitchCache`
keep the request path off the database for authentication and kill checks.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

import sqlalchemy as sa

from laneway.errors import GovernanceUnavailable, InvalidRequest, KeyNameTaken
from laneway.governance import _budget
from laneway.governance._budget import BudgetStatus, Reservation
from laneway.governance._keys import (
    KEYS,
    KeyRecord,
    hash_key,
    key_values,
    new_key,
    normalise_limits,
    record_from_row,
)
from laneway.governance._kill import (
    KILL_HISTORY,
    KILLS,
    KillEvent,
    KillRecord,
    check_kind,
    event_from_row,
    kill_from_row,
)
from laneway.settings import KeyPolicy

__all__ = ["GovernanceStore", "KeyCache", "utcnow"]

_DUMMY_HASH = "0" * 64
_MAX_KILL_NAME = 200


log = logging.getLogger("laneway.governance")


def utcnow() -> datetime:
    return datetime.now(UTC)


class GovernanceStore:
    """Keys, budgets, rate limits and kill switches over one SQLAlchemy engine.

    ``clock`` gives the current UTC time (budget periods, rate windows, timestamps);
    ``reservation_ttl`` is how long an unsettled reservation (a crashed worker's) holds
    budget before the next refused reservation for that key releases it.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        reservation_ttl: timedelta = timedelta(minutes=15),
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._ttl = reservation_ttl
        self._unavailable_logged = -60.0  # monotonic time of the last "unavailable" line

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """One write transaction; a database that will not take it (full, read-only, locked
        past the busy timeout, gone) is ``GovernanceUnavailable``, logged once a minute."""
        try:
            with (
                self._engine.connect().execution_options(laneway_begin="IMMEDIATE") as conn,
                conn.begin(),
            ):
                yield conn
        except sa.exc.OperationalError as exc:
            now = time.monotonic()
            if now - self._unavailable_logged >= 60:
                self._unavailable_logged = now
                log.error(
                    "governance database unavailable (%s): requests that need a budget or "
                    "rate-limit write are refused with 503 governance_unavailable",
                    str(exc.orig).splitlines()[0] if exc.orig is not None else "error",
                )
            raise GovernanceUnavailable(
                "the gateway cannot record this key's budget or rate limit right now"
            ) from exc

    # -- keys ---------------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        *,
        budget_usd: Decimal | None = None,
        period: Literal["day", "month"] | None = None,
        models: Iterable[str] | None = None,
        tiers: Iterable[str] | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        allow_unknown_price: bool = False,
        log_prompts: bool = False,
        policy: KeyPolicy | None = None,
    ) -> tuple[str, KeyRecord]:
        """A new key: the plaintext (shown once, never stored) and its record.

        A budget without a period is monthly. Names are unique among active keys."""
        name, budget, checked_period = normalise_limits(name, budget_usd, period, rpm, tpm)
        values = key_values(
            budget_usd=budget,
            period=checked_period,
            models=models,
            tiers=tiers,
            rpm=rpm,
            tpm=tpm,
            allow_unknown_price=allow_unknown_price,
            log_prompts=log_prompts,
            policy=policy,
        )
        plaintext = new_key()
        key_id = "key_" + secrets.token_hex(8)
        with self._write() as conn:
            if self._active_by_name(conn, name) is not None:
                raise KeyNameTaken(f"an active key named {name!r} exists already", param="name")
            conn.execute(
                KEYS.insert().values(
                    id=key_id,
                    name=name,
                    prefix=plaintext[:8],
                    key_hash=hash_key(plaintext),
                    created_at=self._clock(),
                    **values,
                )
            )
            row = conn.execute(sa.select(KEYS).where(KEYS.c.id == key_id)).mappings().one()
        return plaintext, record_from_row(row)

    def authenticate(self, presented: str | None) -> KeyRecord | None:
        """The active key for ``presented``; ``None`` for a missing, malformed, unknown or
        revoked key. Each of those takes the same path: hash, one indexed query, a
        constant-time comparison."""
        return self.authenticate_digest(hash_key(presented))

    def authenticate_digest(self, digest: str) -> KeyRecord | None:
        """:meth:`authenticate` for an already hashed key (see ``hash_key``)."""
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(KEYS).where(KEYS.c.key_hash == digest)).mappings().first()
        stored = _DUMMY_HASH if row is None else str(row["key_hash"])
        matched = hmac.compare_digest(stored.encode(), digest.encode())
        if row is None or not matched or row["revoked_at"] is not None:
            return None
        return record_from_row(row)

    def get_key(self, key_id_or_name: str) -> KeyRecord:
        """The key with this id, else the active key with this name; ``InvalidRequest``."""
        with self._engine.connect() as conn:
            return record_from_row(self._resolve(conn, key_id_or_name))

    def list_keys(self) -> list[KeyRecord]:
        """Every key, active and revoked, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(KEYS).order_by(KEYS.c.created_at, KEYS.c.id)).mappings()
            return [record_from_row(row) for row in rows]

    def revoke(self, key_id_or_name: str) -> KeyRecord:
        """Revoke a key (idempotent for an id); its spend rows stay for the record."""
        with self._write() as conn:
            row = self._resolve(conn, key_id_or_name)
            if row["revoked_at"] is None:
                conn.execute(
                    KEYS.update().where(KEYS.c.id == row["id"]).values(revoked_at=self._clock())
                )
            fresh = conn.execute(sa.select(KEYS).where(KEYS.c.id == row["id"])).mappings().one()
        return record_from_row(fresh)

    def rotate(self, key_id_or_name: str) -> tuple[str, KeyRecord]:
        """A new secret for an active key: same id, limits and spend; the old one stops."""
        plaintext = new_key()
        with self._write() as conn:
            row = self._resolve(conn, key_id_or_name)
            if row["revoked_at"] is not None:
                raise InvalidRequest(f"key {row['name']!r} ({row['id']}) is revoked", param="key")
            conn.execute(
                KEYS.update()
                .where(KEYS.c.id == row["id"])
                .values(
                    key_hash=hash_key(plaintext), prefix=plaintext[:8], rotated_at=self._clock()
                )
            )
            fresh = conn.execute(sa.select(KEYS).where(KEYS.c.id == row["id"])).mappings().one()
        return plaintext, record_from_row(fresh)

    @staticmethod
    def _active_by_name(conn: sa.Connection, name: str) -> sa.RowMapping | None:
        query = sa.select(KEYS).where(KEYS.c.name == name, KEYS.c.revoked_at.is_(None))
        return conn.execute(query).mappings().first()

    def _resolve(self, conn: sa.Connection, key_id_or_name: str) -> sa.RowMapping:
        row = conn.execute(sa.select(KEYS).where(KEYS.c.id == key_id_or_name)).mappings().first()
        row = row or self._active_by_name(conn, key_id_or_name)
        if row is None:
            raise InvalidRequest(f"no key with id or active name {key_id_or_name!r}", param="key")
        return row

    # -- budgets and rate limits ----------------------------------------------------------

    def reserve(self, key: KeyRecord, amount_usd: Decimal) -> Reservation:
        """Reserve the request's maximum cost before the call (atomic; raises
        ``BudgetExceeded`` with the reset time). Keys without a budget get a no-op
        reservation and cost no database write."""
        if key.budget_usd is None:
            return Reservation(None, key.id, None, amount_usd)
        with self._write() as conn:
            return _budget.reserve(conn, key, amount_usd, self._clock(), self._ttl)

    def settle(self, reservation: Reservation, actual_usd: Decimal | None) -> None:
        """Release the reservation and add the actual cost to the period it was taken in.

        ``actual_usd=None`` means the cost is unknown (no price, or no usage reported):
        the reserved amount is charged, so an unknown cost never counts as free. Settle each
        reservation once; a second call raises ``ValueError``."""
        if reservation.settled:
            raise ValueError("this reservation is settled already")
        reservation.settled = True
        if not reservation.active:
            return
        with self._write() as conn:
            _budget.settle(conn, reservation, actual_usd)

    def spend(self, key: KeyRecord) -> BudgetStatus:
        """Spent and reserved in the key's current period, its budget and when it resets."""
        with self._engine.connect() as conn:
            return _budget.read_status(conn, key, self._clock())

    def take_rate(self, key: KeyRecord, tokens: int) -> None:
        """Count one request and ``tokens`` (the prompt's estimate) against the key's rpm and
        tpm over a sliding 60 s window; raises ``RateLimited`` with ``retry_after``."""
        if key.rpm is None and key.tpm is None:
            return
        with self._write() as conn:
            _budget.take_rate(conn, key, tokens, self._clock())

    def add_tokens(self, key: KeyRecord, tokens: int) -> None:
        """Count tokens known after the call (the completion's) against the key's tpm."""
        if key.tpm is None or tokens <= 0:
            return
        with self._write() as conn:
            _budget.add_tokens(conn, key, tokens, self._clock())

    # -- kill switches --------------------------------------------------------------------

    def kill(self, kind: str, name: str, *, reason: str | None = None, actor: str) -> KillRecord:
        """Switch a deployment, model, provider or tier off (again: new reason and actor)."""
        checked = check_kind(kind)
        name = name.strip()
        if not name or len(name) > _MAX_KILL_NAME or not name.isprintable():
            raise InvalidRequest(
                f"kill switch name must be 1-{_MAX_KILL_NAME} printable characters"
            )
        now = self._clock()
        values = {"kind": checked, "name": name, "reason": reason, "actor": actor}
        with self._write() as conn:
            conn.execute(KILLS.delete().where(KILLS.c.kind == checked, KILLS.c.name == name))
            conn.execute(KILLS.insert().values(killed_at=now, **values))
            conn.execute(KILL_HISTORY.insert().values(ts=now, action="kill", **values))
        return KillRecord(checked, name, reason, actor, now)

    def unkill(self, kind: str, name: str, *, actor: str) -> bool:
        """Switch it back on; ``False`` (and no history line) when it was not killed."""
        checked = check_kind(kind)
        now = self._clock()
        with self._write() as conn:
            deleted = conn.execute(
                KILLS.delete().where(KILLS.c.kind == checked, KILLS.c.name == name.strip())
            ).rowcount
            if deleted:
                conn.execute(
                    KILL_HISTORY.insert().values(
                        ts=now, action="unkill", kind=checked, name=name.strip(), actor=actor
                    )
                )
        return bool(deleted)

    def active_kills(self) -> list[KillRecord]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(KILLS).order_by(KILLS.c.kind, KILLS.c.name)).mappings()
            return [kill_from_row(row) for row in rows]

    def kill_history(self, limit: int = 100) -> list[KillEvent]:
        """The latest kill and unkill events, newest first."""
        h = KILL_HISTORY.c
        query = sa.select(KILL_HISTORY).order_by(h.ts.desc(), h.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [event_from_row(row) for row in conn.execute(query).mappings()]


class KeyCache:
    """``authenticate`` for the request path: answers (found or not) are kept for at most
    ``ttl`` seconds, so a revocation or rotation reaches every worker within ``ttl`` plus
    one query. At most ``max_entries`` answers are kept (oldest dropped first)."""

    def __init__(
        self,
        store: GovernanceStore,
        *,
        ttl: float = 0.8,
        max_entries: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._max = max_entries
        self._now = monotonic
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, KeyRecord | None]] = OrderedDict()

    def authenticate(self, presented: str | None) -> KeyRecord | None:
        digest = hash_key(presented)
        now = self._now()
        with self._lock:
            hit = self._entries.get(digest)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        record = self._store.authenticate_digest(digest)
        with self._lock:
            self._entries[digest] = (now, record)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return record

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
