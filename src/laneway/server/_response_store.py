"""Stored ``/v1/responses`` answers: the conversation so far (neutral messages, the
answer included) and the response body, scoped to the key that made the request and
kept for ``responses.retention_days``.

A save goes into a small in-memory map at once (so the client's next request, which may
follow within milliseconds, finds it in this worker) and to the database on a background
thread; a load looks in memory, then in the database off the event loop. Another key's
response, an expired one and an unknown one are all "not found".
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from laneway.ledger import UtcDateTime

__all__ = ["ResponseStore", "StoredResponse"]

log = logging.getLogger("laneway.responses")


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
            log.error("could not store response %s: %s", record.id, type(exc).__name__)

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
        with self._lock:
            self._memory.pop(response_id, None)
        await asyncio.to_thread(self._delete, response_id)
        return True

    def _delete(self, response_id: str) -> None:
        self._writer.submit(lambda: None).result()  # a pending save lands first
        with self._engine.begin() as conn:
            conn.execute(_TABLE.delete().where(_TABLE.c.id == response_id))

    def close(self) -> None:
        self._writer.shutdown(wait=True)
