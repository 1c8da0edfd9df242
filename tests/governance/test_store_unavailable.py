"""A database that will not take a budget or rate-limit write (full, read-only, locked, gone)
refuses the request with 503 governance_unavailable and Retry-After, logged once, never a
500 with a traceback per request, and never an unmetered call (governance fails closed).
(A file deleted while running: also tests/governance/test_store_file_gone.py.)"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from laneway.errors import GovernanceUnavailable
from laneway.governance._store import GovernanceStore
from laneway.ledger import open_database
from laneway.providers import ChatRequest
from laneway.testing import FakeOpenAI
from tests.e2e.conftest import ENV
from tests.gateway.test_core import MESSAGES, _context, _gateway


def _read_only(engine: sa.Engine) -> None:
    """Every new connection refuses writes, as a read-only or full database does."""

    @event.listens_for(engine, "connect")
    def _query_only(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA query_only = 1")

    engine.dispose()  # the pooled connections were opened before


def _delete_file(engine: sa.Engine) -> None:
    """The database file deleted under the running store (its connections stay open)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{engine.url.database}{suffix}").unlink(missing_ok=True)


OUTAGES = {"read-only": (_read_only, "readonly"), "deleted": (_delete_file, "deleted or moved")}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    eng = open_database(f"sqlite:///{tmp_path / 'gov.db'}", file_check_s=0)
    yield eng
    eng.dispose()


@pytest.mark.parametrize("outage", OUTAGES)
def test_a_budget_write_the_database_refuses_is_503_and_logged_once(
    engine: sa.Engine, caplog: pytest.LogCaptureFixture, outage: str
) -> None:
    store = GovernanceStore(engine)
    key = store.create_key("team", budget_usd=Decimal("10"), period="day")[1]
    limited = store.create_key("rl", rpm=10)[1]
    make_outage, reason = OUTAGES[outage]
    make_outage(engine)
    with caplog.at_level(logging.ERROR, logger="laneway.governance"):
        for _ in range(3):
            with pytest.raises(GovernanceUnavailable) as info:
                store.reserve(key, Decimal("0.01"))
        with pytest.raises(GovernanceUnavailable):
            store.take_rate(limited, 10)
    assert (info.value.status, info.value.code) == (503, "governance_unavailable")
    assert info.value.headers() == {"retry-after": "5"}
    lines = [r for r in caplog.records if "governance database unavailable" in r.getMessage()]
    assert len(lines) == 1
    assert reason in lines[0].getMessage()
    # a key without a budget needs no write and is not refused
    free = store.reserve(store.get_key("rl"), Decimal("0.01"))
    assert not free.active


async def test_the_gateway_refuses_a_budgeted_key_before_any_upstream_call(
    tmp_path: Path,
) -> None:
    with FakeOpenAI(api_key=ENV["FAKE_KEY"]) as fake:
        gateway = await _gateway(tmp_path, fake)
        try:
            store = gateway.governance.store
            assert store is not None
            key = store.create_key("team", budget_usd=Decimal("10"), period="day")[1]
            _read_only(gateway.engine)
            request = ChatRequest(model="tier:frontier", messages=MESSAGES)
            ctx = _context(gateway, request)
            ctx.key = key
            outcome = await gateway.complete(ctx, request)
            assert outcome.status == 503
            assert isinstance(outcome.error, GovernanceUnavailable)
        finally:
            await gateway.aclose()
        assert fake.received == []
