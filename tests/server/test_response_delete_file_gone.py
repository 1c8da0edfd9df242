"""Deleting a stored ``/v1/responses`` answer when the database will not take the write
(here: its file deleted) is 503 ``store_unavailable`` with nothing changed — it was an
unhandled OperationalError (500 internal_error), after the answer had already been dropped
from the worker's memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from laneway.errors import StoreUnavailable
from laneway.ledger import open_database
from laneway.server._response_store import ResponseStore


def test_a_delete_the_database_refuses_is_503_and_keeps_the_response(tmp_path: Path) -> None:
    path = tmp_path / "laneway.db"
    engine = open_database(f"sqlite:///{path}", file_check_s=0)
    store = ResponseStore(engine, retention_days=1, memory_items=10)
    try:
        store.save("resp_1", "k1", [{"role": "user", "content": "hi"}], {"id": "resp_1"})
        store._writer.submit(lambda: None).result()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        with pytest.raises(StoreUnavailable) as caught:
            asyncio.run(store.delete("resp_1", "k1"))
        assert caught.value.status == 503
        assert caught.value.headers() == {"retry-after": "5"}
        found = asyncio.run(store.load("resp_1", "k1"))
        assert found is not None and found.response == {"id": "resp_1"}
    finally:
        store.close()
        engine.dispose()
