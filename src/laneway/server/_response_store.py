"""Stored ``/v1/responses`` answers: the conversation so far (neutral messages, the
answer included) and the response body, scoped to the key that made the request and
kept for ``responses.retention_days``.

A save goes into a small in-memory map at once (so the client's next request, which may
follow within milliseconds, finds it in this worker) and to the database on a background
thread; a load looks in memory, then in the database off the event loop. Another key's
response, an expired one and an unknown one are all "not found".

A save the database does not take (full, read-only, locked, its file deleted: the engine
refuses a commit to a deleted file, see ``laneway.ledger.open_database``) never fails the
request; the response stays in this worker's memory, and the failures are logged once
when they start, then at most once a minute with a count, and once when saves resume.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from laneway.errors import StoreUnavailable
from laneway.ledger import UtcDateTime

__all__ = ["ResponseStore", "StoredResponse"]

log = logging.getLogger("laneway.responses")

_REMIND_S = 60.0  # while saves keep failing, how often that is logged again


def _describe(exc: Exception) -> str:
    """The error's type and the database's first line (never the values it was given)."""
    orig = getattr(exc, "orig", None)
    if not isinstance(orig, BaseException):
        return type(exc).__name__
    first = (str(orig).splitlines() or [""])[0][:200]
    return f"{type(orig).__name__}: {first}" if first else type(orig).__name__


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    key_id: str | None
    expires_at: datetime
    conversation: list[dict[str, Any]]
    response: dict[str, Any]


def _table() -> sa.Table:
    return sa.Table(
        "stored_responses",
        sa.MetaData(),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("key_id", sa.Text),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("conversation", sa.JSON, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
    )


_TABLE = _table()


class ResponseStore:
    def __init__(self, engine: sa.Engine, *, retention_days: float, memory_items: int) -> None:
        self._engine = engine
        self._retention = timedelta(days=retention_days)
        self._memory: OrderedDict[str, StoredResponse] = OrderedDict()
        self._capacity = memory_items
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="laneway-responses")
        self._saves = 0
        self._failed = 0  # saves lost since saves began to fail
        self._failing = False
        self._logged_at = float("-inf")

    def save(
        self,
        response_id: str,
        key_id: str | None,
        conversation: list[dict[str, Any]],
        response: dict[str, Any],
    ) -> None:
        now = datetime.now(UTC)
        record = StoredResponse(response_id, key_id, now + self._retention, conversation, response)
        with self._lock:
            if self._capacity:
                self._memory[response_id] = record
                while len(self._memory) > self._capacity:
                    self._memory.popitem(last=False)
            self._saves += 1
            sweep = self._saves % 500 == 1
        self._writer.submit(self._write, record, now, sweep)

    def _write(self, record: StoredResponse, now: datetime, sweep: bool) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    _TABLE.insert().values(
                        id=record.id,
                        key_id=record.key_id,
                        created_at=now,
                        expires_at=record.expires_at,
                        conversation=record.conversation,
                        response=record.response,
                    )
                )
                if sweep:
                    conn.execute(_TABLE.delete().where(_TABLE.c.expires_at < now))
        except Exception as exc:  # a lost save must never fail the request that made it
            self._save_failed(record.id, exc)
            return
        if self._failing:
            self._failing = False
            log.warning("responses are stored again (%d were not)", self._failed)
            self._failed = 0

    def _save_failed(self, response_id: str, exc: Exception) -> None:
        """Count a lost save; logged when failures start, then once per ``_REMIND_S``
        (runs on the one writer thread)."""
        self._failed += 1
        now = time.monotonic()
        if self._failing and now - self._logged_at < _REMIND_S:
            return
        self._failing = True
        self._logged_at = now
        log.error(
            "could not store response %s (%s): %d not stored since saves began to fail; "
            "they are kept only in this worker's memory",
            response_id,
            _describe(exc),
            self._failed,
        )

    async def load(self, response_id: str, key_id: str | None) -> StoredResponse | None:
        with self._lock:
            record = self._memory.get(response_id)
        if record is None:
            record = await asyncio.to_thread(self._read, response_id)
        if record is None or record.key_id != key_id:
            return None
        if record.expires_at <= datetime.now(UTC):
            return None
        return record

    def _read(self, response_id: str) -> StoredResponse | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_TABLE).where(_TABLE.c.id == response_id)).first()
        if row is None:
            return None
        return StoredResponse(
            row.id, row.key_id, row.expires_at, list(row.conversation), dict(row.response)
        )

    async def delete(self, response_id: str, key_id: str | None) -> bool:
        if await self.load(response_id, key_id) is None:
            return False
        try:
            await asyncio.to_thread(self._delete, response_id)
        except sa.exc.SQLAlchemyError as exc:  # kept, in memory and on disk: say so
            log.warning("could not delete stored response: %s", _describe(exc))
            raise StoreUnavailable(
                "the stored response could not be deleted (the database will not take "
                "the write); nothing was changed: retry later"
            ) from None
        with self._lock:
            self._memory.pop(response_id, None)
        return True

    def _delete(self, response_id: str) -> None:
        self._writer.submit(lambda: None).result()  # a pending save lands first
        with self._engine.begin() as conn:
            conn.execute(_TABLE.delete().where(_TABLE.c.id == response_id))

    def close(self) -> None:
        self._writer.shutdown(wait=True)
