"""Budgets and rate limits against a real SQLite file, with real threads and processes."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from laneway.errors import BudgetExceeded, RateLimited
from laneway.governance._budget import period_bounds, rate_wait
from laneway.governance._store import GovernanceStore
from laneway.ledger import open_database

D = Decimal
NOW = datetime(2026, 3, 2, 10, 0, 30, tzinfo=UTC)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'gov.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = open_database(db_url)
    yield eng
    eng.dispose()


# The child processes import only the installed package; the clock is fixed so that a UTC
# midnight or a minute boundary during the test cannot split the counts.
_CHILD = textwrap.dedent(
    """
    import json, random, sys, threading, time
    from datetime import UTC, datetime
    from decimal import Decimal
    from pathlib import Path

    from laneway.errors import BudgetExceeded, RateLimited
    from laneway.governance._store import GovernanceStore
    from laneway.ledger import open_database

    mode, url, key_id, go, ready, n, seed = sys.argv[1:8]
    now = datetime(2026, 3, 2, 10, 0, 30, tzinfo=UTC)
    engine = open_database(url, migrate=False)
    store = GovernanceStore(engine, clock=lambda: now)
    key = store.get_key(key_id)
    rng = random.Random(int(seed))
    out = {"ok": [], "refused": 0, "other": [], "retry_after": []}
    lock = threading.Lock()
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.001)

    def budget_one(actual_nusd, pause):
        try:
            reservation = store.reserve(key, Decimal("0.01"))
        except BudgetExceeded:
            with lock:
                out["refused"] += 1
            return
        time.sleep(pause)
        actual = Decimal(actual_nusd).scaleb(-9)
        store.settle(reservation, actual)
        with lock:
            out["ok"].append(str(actual))

    def rate_one(_actual, _pause):
        try:
            store.take_rate(key, 1)
        except RateLimited as exc:
            with lock:
                out["refused"] += 1
                out["retry_after"].append(exc.retry_after)
            return
        with lock:
            out["ok"].append("1")

    def guarded(fn, *args):
        try:
            fn(*args)
        except Exception as exc:
            with lock:
                out["other"].append(repr(exc))

    fn = budget_one if mode == "budget" else rate_one
    threads = [
        threading.Thread(
            target=guarded, args=(fn, rng.randint(0, 10_000_000), rng.uniform(0, 0.004))
        )
        for _ in range(int(n))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.dispose()
    print(json.dumps(out))
    """
)


def _start_children(
    tmp_path: Path, mode: str, url: str, key_id: str, counts: list[int]
) -> tuple[list[subprocess.Popen[str]], Path]:
    go = tmp_path / f"{mode}-go"
    procs = []
    for i, n in enumerate(counts):
        ready = tmp_path / f"{mode}-ready-{i}"
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _CHILD,
                    mode,
                    url,
                    key_id,
                    str(go),
                    str(ready),
                    str(n),
                    str(i),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"{mode}-ready-{i}").exists() for i in range(len(counts))):
        assert time.monotonic() < deadline, "child processes did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    return procs, go


def _collect(procs: list[subprocess.Popen[str]]) -> list[dict[str, object]]:
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_budget_race_threads_and_processes_never_overspend(
    engine: sa.Engine, db_url: str, tmp_path: Path
) -> None:
    store = GovernanceStore(engine, clock=lambda: NOW)
    _, key = store.create_key("team", budget_usd=D("1.00"), period="day")
    store.settle(store.reserve(key, D("0.95")), D("0.95"))
    procs, go = _start_children(tmp_path, "budget", db_url, key.id, [50, 50])

    rng = random.Random(7)
    ok: list[Decimal] = []
    refused: list[BudgetExceeded] = []
    other: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Event()

    def one(actual: Decimal, pause: float) -> None:
        start.wait()
        try:
            try:
                reservation = store.reserve(key, D("0.01"))
            except BudgetExceeded as exc:
                with lock:
                    refused.append(exc)
                return
            time.sleep(pause)
            store.settle(reservation, actual)
            with lock:
                ok.append(actual)
        except BaseException as exc:
            with lock:
                other.append(exc)

    threads = [
        threading.Thread(
            target=one, args=(D(rng.randint(0, 10_000_000)).scaleb(-9), rng.uniform(0, 0.004))
        )
        for _ in range(100)
    ]
    for t in threads:
        t.start()
    go.touch()
    start.set()
    for t in threads:
        t.join()
    children = _collect(procs)

    assert other == []
    assert all(c["other"] == [] for c in children)
    settled = ok + [D(str(a)) for c in children for a in c["ok"]]  # type: ignore[attr-defined]
    n_refused = len(refused) + sum(int(c["refused"]) for c in children)  # type: ignore[call-overload]
    assert len(settled) + n_refused == 200
    assert len(settled) >= 5  # $0.05 was left: at least five $0.01 reservations fit
    assert n_refused > 0
    assert all(len(c["ok"]) + int(c["refused"]) == 50 for c in children)  # type: ignore[arg-type, call-overload]
    status = store.spend(key)
    assert status.reserved_usd == 0
    assert status.spent_usd == D("0.95") + sum(settled, D(0))  # exact, to the nano-dollar
    assert status.spent_usd <= D("1.00") + D("0.01")
    assert status.spent_usd <= D("1.00")  # actual ≤ reserved, so not even one request over
    assert all(exc.code == "budget_exceeded" for exc in refused)
    assert all("2026-03-03T00:00:00Z" in exc.message for exc in refused)
    assert all(exc.retry_after == (13 * 3600 + 59 * 60 + 30) for exc in refused)


def test_reserve_settle_and_unknown_actual_charges_the_reservation(engine: sa.Engine) -> None:
    store = GovernanceStore(engine, clock=lambda: NOW)
    _, key = store.create_key("k", budget_usd=D("1"), period="month")
    first = store.reserve(key, D("0.40"))
    second = store.reserve(key, D("0.40"))
    status = store.spend(key)
    assert (status.spent_usd, status.reserved_usd) == (D(0), D("0.80"))
    assert status.remaining_usd == D("0.20")
    assert status.period_start == datetime(2026, 3, 1, tzinfo=UTC)
    assert status.resets_at == datetime(2026, 4, 1, tzinfo=UTC)
    with pytest.raises(BudgetExceeded) as caught:
        store.reserve(key, D("0.21"))
    assert "monthly budget of $1" in caught.value.message
    assert "2026-04-01T00:00:00Z" in caught.value.message
    assert caught.value.headers()["retry-after"] == str((30 * 86400) - 10 * 3600 - 30)
    store.settle(first, D("0.123456789"))
    store.settle(second, None)  # unknown cost: the reserved amount is charged
    status = store.spend(key)
    assert (status.spent_usd, status.reserved_usd) == (D("0.523456789"), D(0))
    with pytest.raises(ValueError, match="settled already"):
        store.settle(first, D(0))
    assert store.spend(key).spent_usd == D("0.523456789")


def test_key_without_budget_reserves_nothing(engine: sa.Engine) -> None:
    store = GovernanceStore(engine, clock=lambda: NOW)
    _, key = store.create_key("free")
    reservation = store.reserve(key, D("1000"))
    assert not reservation.active
    store.settle(reservation, D("1000"))
    status = store.spend(key)
    assert status.budget_usd is None and status.remaining_usd is None
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM gov_spend").scalar() == 0


def test_budget_resets_with_the_period(engine: sa.Engine) -> None:
    now = [datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC)]
    store = GovernanceStore(engine, clock=lambda: now[0])
    _, key = store.create_key("daily", budget_usd=D("0.10"), period="day")
    late = store.reserve(key, D("0.10"))
    with pytest.raises(BudgetExceeded) as caught:
        store.reserve(key, D("0.01"))
    assert caught.value.retry_after == 1.0
    now[0] = datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC)
    store.settle(late, D("0.10"))  # charged to the day it was reserved in
    fresh = store.reserve(key, D("0.10"))
    store.settle(fresh, D("0.02"))
    assert store.spend(key).spent_usd == D("0.02")
    now[0] = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert store.spend(key).spent_usd == D("0.10")


def test_expired_reservation_of_a_crashed_worker_is_released(engine: sa.Engine) -> None:
    now = [NOW]
    store = GovernanceStore(engine, clock=lambda: now[0], reservation_ttl=timedelta(minutes=5))
    _, key = store.create_key("k", budget_usd=D("1"), period="day")
    lost = store.reserve(key, D("0.90"))  # never settled: the worker died
    with pytest.raises(BudgetExceeded):
        store.reserve(key, D("0.20"))
    now[0] = NOW + timedelta(minutes=6)
    ok = store.reserve(key, D("0.20"))
    assert store.spend(key).reserved_usd == D("0.20")
    store.settle(ok, D("0.15"))
    store.settle(lost, D("0.05"))  # a late settle after the sweep releases nothing twice
    status = store.spend(key)
    assert (status.spent_usd, status.reserved_usd) == (D("0.20"), D(0))


def test_period_bounds() -> None:
    assert period_bounds("month", datetime(2026, 12, 31, 23, tzinfo=UTC)) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert period_bounds("day", datetime(2026, 2, 28, 12, tzinfo=UTC))[1] == datetime(
        2026, 3, 1, tzinfo=UTC
    )


def test_rate_limit_rpm_is_shared_by_two_processes(
    engine: sa.Engine, db_url: str, tmp_path: Path
) -> None:
    store = GovernanceStore(engine, clock=lambda: NOW)
    _, key = store.create_key("rpm", rpm=10)
    procs, go = _start_children(tmp_path, "rate", db_url, key.id, [10, 10])
    go.touch()
    children = _collect(procs)
    assert all(c["other"] == [] for c in children)
    allowed = sum(len(c["ok"]) for c in children)  # type: ignore[arg-type]
    assert allowed == 10
    waits = [w for c in children for w in c["retry_after"]]  # type: ignore[attr-defined]
    assert len(waits) == 10
    # 30 s left in this minute, then 6 s until the previous minute's 10 weigh less than 9
    assert waits == pytest.approx([36.0] * 10)
    with pytest.raises(RateLimited) as caught:
        store.take_rate(key, 1)
    assert caught.value.code == "rate_limited"
    assert caught.value.headers() == {"retry-after": "36"}


def test_rate_limit_tpm_counts_prompt_and_completion_tokens(engine: sa.Engine) -> None:
    now = [NOW]
    store = GovernanceStore(engine, clock=lambda: now[0])
    _, key = store.create_key("tpm", tpm=1000)
    store.take_rate(key, 600)
    store.add_tokens(key, 300)
    with pytest.raises(RateLimited, match="1000 tokens per minute"):
        store.take_rate(key, 200)
    store.take_rate(key, 100)
    with pytest.raises(RateLimited, match="alone needs about 5000") as caught:
        store.take_rate(key, 5000)
    assert caught.value.retry_after is None
    now[0] = NOW + timedelta(seconds=60)  # next minute, halfway: 1000 * 0.5 still counts
    store.take_rate(key, 500)
    with pytest.raises(RateLimited):
        store.take_rate(key, 1)


def test_rate_wait_sliding_window() -> None:
    assert rate_wait(prev=0, cur=5, need=1, limit=10, elapsed=10) == 0.0
    assert rate_wait(prev=10, cur=0, need=1, limit=10, elapsed=0) == pytest.approx(6.0)
    assert rate_wait(prev=0, cur=10, need=1, limit=10, elapsed=45) == pytest.approx(21.0)
    assert rate_wait(prev=0, cur=0, need=11, limit=10, elapsed=0) is None
