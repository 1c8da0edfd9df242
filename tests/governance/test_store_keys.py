"""Virtual keys and kill switches against a real SQLite file."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from laneway.errors import InvalidRequest
from laneway.governance._keys import hash_key, master_key_matches
from laneway.governance._kill import KillSwitchCache
from laneway.governance._store import GovernanceStore, KeyCache
from laneway.ledger import open_database
from laneway.settings import KeyPolicy

D = Decimal


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "gov.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[sa.Engine]:
    eng = open_database(f"sqlite:///{db_path}")
    yield eng
    eng.dispose()


@pytest.fixture
def store(engine: sa.Engine) -> GovernanceStore:
    return GovernanceStore(engine)


def test_create_returns_the_key_once_and_stores_only_its_hash(
    store: GovernanceStore, engine: sa.Engine, db_path: Path
) -> None:
    policy = KeyPolicy(sensitive_action="block", denied_origins=("CN",))
    plaintext, key = store.create_key(
        "team-a",
        budget_usd=D("25"),
        models=["gpt-x", "llama"],
        tiers=["simple"],
        rpm=60,
        tpm=1000,
        log_prompts=True,
        policy=policy,
    )
    assert plaintext.startswith("lw-") and len(plaintext) == 3 + 43
    assert key.prefix == plaintext[:8]
    assert (key.budget_usd, key.period) == (D("25"), "month")  # a budget alone is monthly
    assert key.models == ("gpt-x", "llama") and key.tiers == ("simple",)
    assert key.allows_model("llama") and not key.allows_model("other")
    assert key.allows_tier("simple") and not key.allows_tier("frontier")
    assert not key.may_use_unpriced()
    assert key.log_prompts and key.policy == policy
    assert store.authenticate(plaintext) == key
    engine.dispose()  # checkpoint nothing away: read the database file and its WAL as they are
    data = b"".join(p.read_bytes() for p in db_path.parent.glob("gov.db*"))
    assert plaintext.encode() not in data
    assert plaintext[8:].encode() not in data
    assert hashlib.sha256(plaintext.encode()).hexdigest().encode() in data


def test_names_are_unique_among_active_keys(store: GovernanceStore) -> None:
    store.create_key("dup")
    with pytest.raises(InvalidRequest, match="exists already"):
        store.create_key(" dup ")
    store.revoke("dup")
    _, again = store.create_key("dup")  # the name is free again once revoked
    assert store.get_key("dup") == again


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "printable"),
        ({"name": "x", "period": "day"}, "needs a budget"),
        ({"name": "x", "budget_usd": D(0)}, "more than"),
        ({"name": "x", "budget_usd": D("NaN")}, "more than"),
        ({"name": "x", "budget_usd": D(1), "period": "week"}, "'day' or 'month'"),
        ({"name": "x", "rpm": 0}, "rpm"),
        ({"name": "x", "models": [" ", ""]}, "at least one"),
    ],
)
def test_create_rejects_bad_limits(
    store: GovernanceStore, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        store.create_key(**kwargs)
    assert store.list_keys() == []


def test_authenticate_takes_one_path_for_every_refusal(
    store: GovernanceStore, engine: sa.Engine
) -> None:
    good, _ = store.create_key("good")
    revoked, _ = store.create_key("gone")
    store.revoke("gone")
    statements: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            statements.append((sql, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        presented = [None, "", "garbage", "lw-" + "x" * 5000, "lw-\udcff", good + "x", revoked]
        for value in presented:
            statements.clear()
            assert store.authenticate(value) is None
            assert len(statements) == 1 and "key_hash" in statements[0][0]  # hashed and looked up
            assert statements[0][1] == (hash_key(value),)
        statements.clear()
        assert store.authenticate(good) is not None
        assert len(statements) == 1
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_master_key_comparison() -> None:
    assert master_key_matches("sk-master", "sk-master")
    assert not master_key_matches("sk-maste", "sk-master")
    assert not master_key_matches(None, "sk-master")
    assert not master_key_matches("", "")


def test_rotate_keeps_id_limits_and_spend_and_retires_the_old_secret(
    store: GovernanceStore,
) -> None:
    old, key = store.create_key("rot", budget_usd=D("1"), period="day", rpm=5)
    store.settle(store.reserve(key, D("0.3")), D("0.25"))
    new, rotated = store.rotate("rot")
    assert new != old and rotated.id == key.id and rotated.prefix == new[:8]
    assert (rotated.budget_usd, rotated.rpm) == (key.budget_usd, key.rpm)
    assert store.authenticate(old) is None
    assert store.authenticate(new) == rotated
    assert store.spend(rotated).spent_usd == D("0.25")
    store.revoke(key.id)
    with pytest.raises(InvalidRequest, match="revoked"):
        store.rotate(key.id)
    with pytest.raises(InvalidRequest, match="no key"):
        store.revoke("nobody")


def test_revocation_reaches_a_key_cache_within_a_second(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    worker_engine, admin_engine = open_database(url), open_database(url)
    try:
        worker, admin = GovernanceStore(worker_engine), GovernanceStore(admin_engine)
        plaintext, _ = admin.create_key("cached")
        # The cache's own clock, so that a loaded machine's pauses (a full collection of
        # the test session's heap stalls 0.2-0.3 s on CI) cannot eat the 0.2 s between its
        # 0.8 s time-to-live and the promised second.
        now = [0.0]
        cache = KeyCache(worker, monotonic=lambda: now[0])
        assert cache.authenticate(plaintext) is not None
        admin.revoke("cached")  # at worst just after the worker cached the key
        now[0] = 0.5
        assert cache.authenticate(plaintext) is not None  # served from the cache
        now[0] = 1.0
        assert cache.authenticate(plaintext) is None  # a second later: refused
    finally:
        worker_engine.dispose()
        admin_engine.dispose()


def test_key_cache_is_bounded(store: GovernanceStore) -> None:
    cache = KeyCache(store, max_entries=3)
    for i in range(10):
        assert cache.authenticate(f"lw-unknown-{i}") is None
    assert len(cache._entries) == 3


def test_kill_unkill_and_history(store: GovernanceStore) -> None:
    first = store.kill("deployment", "gpt-x", reason="bad answers", actor="ops:ann")
    store.kill("deployment", "gpt-x", reason="still bad", actor="ops:bob")
    store.kill("tier", "frontier", reason=None, actor="ops:ann")
    assert [(k.kind, k.name, k.reason) for k in store.active_kills()] == [
        ("deployment", "gpt-x", "still bad"),
        ("tier", "frontier", None),
    ]
    assert first.actor == "ops:ann"
    assert store.unkill("deployment", "gpt-x", actor="ops:ann")
    assert not store.unkill("deployment", "gpt-x", actor="ops:ann")  # not killed: no line
    assert [(k.kind, k.name) for k in store.active_kills()] == [("tier", "frontier")]
    history = [(e.action, e.kind, e.name, e.actor) for e in store.kill_history()]
    assert history == [
        ("unkill", "deployment", "gpt-x", "ops:ann"),
        ("kill", "tier", "frontier", "ops:ann"),
        ("kill", "deployment", "gpt-x", "ops:bob"),
        ("kill", "deployment", "gpt-x", "ops:ann"),
    ]
    with pytest.raises(InvalidRequest, match="kind must be one of"):
        store.kill("region", "eu", actor="x")


_KILLER = textwrap.dedent(
    """
    import sys, time
    from laneway.governance._store import GovernanceStore
    from laneway.ledger import open_database

    engine = open_database(sys.argv[1], migrate=False)
    store = GovernanceStore(engine)
    store.active_kills()  # warm up: connect before timing
    store.kill("provider", "acme", reason="outage", actor="other-process")
    print(time.time(), flush=True)
    engine.dispose()
    """
)


def test_kill_switch_cache_sees_a_kill_from_another_process_within_a_second(
    store: GovernanceStore, db_path: Path
) -> None:
    cache = KillSwitchCache(store.active_kills, interval=0.5)
    seen_at: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cache.is_killed("provider", "acme") is not None:
                seen_at.append(time.time())
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert cache.is_killed("provider", "acme") is None
        proc = subprocess.run(
            [sys.executable, "-c", _KILLER, f"sqlite:///{db_path}"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        killed_at = float(proc.stdout.split()[-1])
        watcher.join(timeout=5)
    finally:
        done.set()
        cache.stop()
    assert seen_at, "the cache never saw the kill"
    delay = seen_at[0] - killed_at
    assert delay <= 1.0
    record = cache.is_killed("provider", "acme")
    assert record is not None and record.reason == "outage" and record.actor == "other-process"
    assert [r.name for r in cache.active()] == ["acme"]


def test_kill_switch_cache_keeps_its_snapshot_when_a_refresh_fails(
    store: GovernanceStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.kill("model", "m1", actor="t")
    calls = [0]

    def flaky() -> list[Any]:
        calls[0] += 1
        if calls[0] > 1:
            raise sa.exc.OperationalError("SELECT", {}, Exception("database is locked"))
        return list(store.active_kills())

    cache = KillSwitchCache(flaky, interval=0.02)
    try:
        deadline = time.monotonic() + 5
        while calls[0] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls[0] >= 3
        assert cache.is_killed("model", "m1") is not None
    finally:
        cache.stop()
    assert "keeping the last snapshot" in caplog.text
