"""Eval harness throughput and overhead: N cases x 3 models against fake upstreams.

    python benchmarks/evals.py --cases 1000 --concurrency 32

Three fake OpenAI upstreams (in-process threads, no request log kept) serve every call.
It reports:

* cases per second of the whole harness (resolution, gateway, scoring, storage);
* the same calls made directly with ``run_request`` and the same concurrency (no
  scoring, no storage), and the harness's own overhead per call, the difference;
* the harness's own CPU work per call measured alone (scoring + storing results);
* the peak traced memory (tracemalloc) for the run, which stays flat as N grows
  because work is pulled from an iterator and results go to the database in batches.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from laneway.evals import ResultRow, RunOptions, load_suite, run_suite, score_answer, verdict
from laneway.evals._runner import build_request, new_run
from laneway.ledger import open_database
from laneway.server import build_gateway, run_request
from laneway.settings import Settings
from laneway.testing import FakeOpenAI, FakeReply, FakeTurn

__all__ = ["main"]

MODELS = ("m1", "m2", "m3")


class _QuietFake(FakeOpenAI):
    """A fake upstream that keeps no record of requests (bounded memory under load)."""

    async def record(self, request: web.Request) -> Any:
        raw = await request.read()
        return orjson.loads(raw) if raw else None


def _responder(turn: FakeTurn) -> FakeReply:
    words = turn.last_user_text.split()
    return FakeReply(text=words[-1] if words else "")


def _suite_file(folder: Path, cases: int) -> Path:
    path = folder / "bench.yaml"
    lines = ["name: bench", "cases:"]
    for i in range(cases):
        lines.append(f'  - {{id: c{i:05d}, prompt: "Say the number {i}", numeric: {i}}}')
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def _settings(folder: Path, fakes: list[FakeOpenAI]) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": f"sqlite:///{folder / 'bench.db'}"},
            "deployments": [
                {
                    "name": name,
                    "model": "gpt-4o-mini",
                    "provider": "openai",
                    "api_base": fake.url + "/v1",
                    "api_key": "env:BENCH_KEY",
                }
                for name, fake in zip(MODELS, fakes, strict=True)
            ],
        }
    )


async def _harness(folder: Path, settings: Settings, cases: int, conc: int) -> dict[str, float]:
    engine = open_database(settings.database.url)
    suite = load_suite(_suite_file(folder, cases))
    gateway = build_gateway(settings, env={"BENCH_KEY": "x"}, engine=engine)
    await gateway.start()
    options = RunOptions(models=MODELS, concurrency=conc)
    await _direct(settings, engine, suite, conc)  # warm-up: connections, imports, caches
    direct = await _direct(settings, engine, suite, conc)
    record = new_run(engine, suite, options)
    started = time.perf_counter()
    summary = await run_suite(gateway, suite, record, options)
    wall = time.perf_counter() - started
    assert summary.status == "complete", summary
    assert summary.done == cases * len(MODELS), summary
    # Memory on a second run (tracemalloc slows Python down, so not while timing).
    traced = new_run(engine, suite, options)
    tracemalloc.start()
    await run_suite(gateway, suite, traced, options)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    await gateway.aclose()
    store = _store_cost(engine, suite, record.run_id)
    engine.dispose()
    calls = cases * len(MODELS)
    return {
        "cases": cases,
        "calls": calls,
        "wall_s": wall,
        "calls_per_s": calls / wall,
        "cases_per_s": cases / wall,
        "direct_calls_per_s": calls / direct,
        "overhead_ms_per_call": (wall - direct) / calls * 1000,
        "score_store_ms_per_call": store,
        "peak_traced_mib": peak / 2**20,
    }


async def _direct(settings: Settings, engine: Any, suite: Any, conc: int) -> float:
    """The same calls with ``run_request`` only (no scoring, no run record)."""
    gateway = build_gateway(settings, env={"BENCH_KEY": "x"}, engine=engine)
    await gateway.start()
    work = iter(itertools.product(suite.cases, MODELS))

    async def worker() -> None:
        for case, model in work:
            await run_request(gateway, build_request(case, model), source="eval")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    wall = time.perf_counter() - started
    await gateway.aclose()
    return wall


def _store_cost(engine: Any, suite: Any, run_id: str) -> float:
    """Scoring and storing a result, alone (ms per call)."""
    from laneway.evals import RunRecord

    record = RunRecord(engine, run_id + "-store")
    started = time.perf_counter()
    batch: list[ResultRow] = []
    for case in suite.cases:
        for model in MODELS:
            checks = score_answer(case, str(case.numeric.value if case.numeric else ""))
            passed, score = verdict(checks)
            batch.append(
                ResultRow(case.id, model, 0, "x", passed, score, tuple(c.to_json() for c in checks))
            )
            if len(batch) >= 32:
                record.write_results(batch)
                batch = []
    record.write_results(batch)
    return (time.perf_counter() - started) / (len(suite.cases) * len(MODELS)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    fakes = [_QuietFake(responder=_responder).start() for _ in MODELS]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            result = asyncio.run(
                _harness(folder, _settings(folder, fakes), args.cases, args.concurrency)
            )
    finally:
        for fake in fakes:
            fake.stop()
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return
    for key, value in result.items():
        print(f"{key:>24}: {value:,.3f}" if isinstance(value, float) else f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
