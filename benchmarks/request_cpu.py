"""CPU per request of ``laneway serve`` on the chat path, two source trees side by side.

    python benchmarks/request_cpu.py [--old /tmp/laneway-old/src] [--bare] [--mode json]
        [--requests 2000] [--repeats 5] [--concurrency 8] [--profile out.prof]

Wall-clock throughput is unreliable on a shared machine; CPU time per request is not (much):
each gateway is its own process, and the figure is the user + system CPU seconds its
process tree spent (``/proc/<pid>/stat``) while it answered a fixed number of requests,
divided by that number. The config is ``gateway_overhead.py``'s (two ``openai_compatible``
deployments on the fake upstream, a SQLite ledger, no keys, default governance), and so
are the requests (``_loadgen.chat_body``): non-streamed and streamed
``/v1/chat/completions``.

``--old`` names another tree's ``src`` (e.g. ``git worktree add /tmp/laneway-old HEAD~3``):
both gateways run at once and are measured in turns (the order alternates each repeat), so
drift in the machine's load touches both; the report gives the median µs per request of
each, and new ÷ old; ``--bare`` adds the benchmark's bare passthrough and the ratio
``gateway_overhead.py`` judges (bare ÷ Laneway CPU per request = Laneway's req/s per core ÷
the passthrough's). On a loaded machine single figures still spread by ±20%: use many
repeats. ``--profile`` runs the current tree's gateway under cProfile instead
and writes its stats (the event loop's thread only) to that file.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loadgen import chat_body, cpu_seconds, send
from _procs import Processes, free_port, wait_http
from gateway_overhead import _clean_env

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
_MAIN = (
    "import sys, laneway; print('laneway from', laneway.__file__, file=sys.stderr, flush=True);"
    " from laneway.cli import main; sys.exit(main())"
)
_PROFILED = (
    "import cProfile, signal; from laneway.cli import main; p = cProfile.Profile();"
    " signal.signal(signal.SIGTERM, lambda *_: None); p.enable()\n"
    "try: main()\nexcept SystemExit: pass\n"
    "p.disable(); p.dump_stats(OUT)"
)
MODES = ("json", "stream")


def _env(src: Path) -> dict[str, str]:
    """gateway_overhead.py's environment for gateways, importing from ``src``."""
    return _clean_env() | {"PYTHONPATH": str(src), "LANEWAY_BENCH_KEY": "sk-bench"}


def _start_upstream(procs: Processes) -> str:
    argv = [sys.executable, str(HERE / "_upstream.py"), "--chunk-delay", "0.001"]
    proc = procs.start("upstream", argv, cpus=None, env=_env(SRC), capture_stdout=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().split()
    if len(line) != 2 or line[0] != "READY":
        raise RuntimeError("the fake upstream did not start")
    return f"http://127.0.0.1:{line[1]}"


def _start_bare(procs: Processes, tmp: Path, upstream: str) -> tuple[str, int]:
    """The benchmark's bare passthrough (the floor of gateway_overhead.py's ratio)."""
    port = free_port()
    argv = [sys.executable, str(HERE / "_passthrough.py"), "--port", str(port)]
    proc = procs.start("bare", [*argv, "--upstream", upstream], cpus=None, env=_env(SRC))
    wait_http(f"http://127.0.0.1:{port}/health", proc, 60, tmp / "bare.log")
    return f"http://127.0.0.1:{port}/u0/v1/chat/completions", proc.pid


def _start_gateway(
    procs: Processes, tmp: Path, name: str, src: Path, upstream: str, profile: Path | None
) -> tuple[str, int]:
    port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port, "workers": 1},
        "database": {"url": f"sqlite:///{tmp / (name + '.db')}"},
        "deployments": [
            {
                "name": f"bench-{i}",
                "model": "deepseek-v4-flash",
                "provider": "openai_compatible",
                "api_base": f"{upstream}/v1",
                "upstream_model": "fake-model",
                "api_key": "env:LANEWAY_BENCH_KEY",
            }
            for i in range(2)
        ],
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    serve = ["serve", "--config", str(path), "--log-level", "warning"]
    if profile is not None:
        code = _PROFILED.replace("OUT", repr(str(profile.resolve())))
        argv = [sys.executable, "-c", code, *serve]
    else:
        argv = [sys.executable, "-c", _MAIN, *serve]
    proc = procs.start(name, argv, cpus=None, env=_env(src), cwd=tmp)
    wait_http(f"http://127.0.0.1:{port}/health/live", proc, 120, tmp / f"{name}.log")
    return f"http://127.0.0.1:{port}/v1/chat/completions", proc.pid


async def _drive(
    session: aiohttp.ClientSession, url: str, stream: bool, requests: int, concurrency: int
) -> int:
    """Send ``requests`` requests, ``concurrency`` at a time; the number that failed."""
    payload = orjson.dumps(chat_body("bench-0", stream=stream))
    left = requests
    failed = 0

    async def one_worker() -> None:
        nonlocal left, failed
        while left > 0:
            left -= 1
            try:
                await send(session, url, payload, stream=stream)
            except (TimeoutError, aiohttp.ClientError, RuntimeError) as exc:
                failed += 1
                if failed == 1:
                    print(f"  first error: {exc}", file=sys.stderr)

    await asyncio.gather(*(one_worker() for _ in range(concurrency)))
    return failed


async def _measure(
    gateways: dict[str, tuple[str, int]], args: argparse.Namespace
) -> dict[str, dict[str, list[float]]]:
    """µs of gateway CPU per request: {gateway: {mode: [one figure per repeat]}}."""
    modes = args.mode or MODES
    figures: dict[str, dict[str, list[float]]] = {g: {m: [] for m in modes} for g in gateways}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for url, _ in gateways.values():  # warm: imports, pools, caches
            for mode in modes:
                await _drive(session, url, mode == "stream", args.warmup, args.concurrency)
        names = list(gateways)
        for repeat in range(args.repeats):
            order = names if repeat % 2 == 0 else names[::-1]
            for mode in modes:
                for name in order:
                    url, pid = gateways[name]
                    await _drive(session, url, mode == "stream", 50, args.concurrency)
                    before = cpu_seconds(pid)
                    failed = await _drive(
                        session, url, mode == "stream", args.requests, args.concurrency
                    )
                    used = cpu_seconds(pid) - before
                    if failed:
                        raise RuntimeError(f"{name}: {failed} of {args.requests} requests failed")
                    per = used / args.requests * 1e6
                    figures[name][mode].append(per)
                    print(f"  repeat {repeat + 1} {mode:6} {name:4} {per:8.1f} µs/request")
    return figures


def _report(figures: dict[str, dict[str, list[float]]]) -> None:
    print("\nmedian gateway CPU µs per request (min..max over repeats)")
    for mode in next(iter(figures.values())):
        row = [f"{mode:6}"]
        medians = {}
        for name, by_mode in figures.items():
            values = by_mode[mode]
            medians[name] = statistics.median(values)
            row.append(f"{name} {medians[name]:7.1f} ({min(values):.0f}..{max(values):.0f})")
        if "old" in medians and "new" in medians:
            row.append(f"new/old {medians['new'] / medians['old']:.3f}")
        for name in ("new", "old"):  # gateway_overhead.py's ratio: req/s per core vs bare
            if "bare" in medians and name in medians:
                row.append(f"bare/{name} {medians['bare'] / medians[name]:.3f}")
        print("  ".join(row))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", type=Path, help="another tree's src directory to compare")
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=300, help="requests before measuring")
    parser.add_argument("--bare", action="store_true", help="also the bare passthrough")
    parser.add_argument("--mode", choices=MODES, action="append", help="default: both")
    parser.add_argument("--profile", type=Path, help="cProfile the current tree's gateway")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    tmp = Path(tempfile.mkdtemp(prefix="laneway-cpu-"))
    started = time.monotonic()
    with Processes(tmp) as procs:
        upstream = _start_upstream(procs)
        gateways = {"new": _start_gateway(procs, tmp, "new", SRC, upstream, args.profile)}
        if args.old is not None and args.profile is None:
            gateways["old"] = _start_gateway(procs, tmp, "old", args.old, upstream, None)
        if args.bare:
            gateways["bare"] = _start_bare(procs, tmp, upstream)
        figures = asyncio.run(_measure(gateways, args))
        if args.profile is not None:
            procs.stop_pid(gateways["new"][1])
            print(f"profile written to {args.profile}")
    _report(figures)
    print(f"\nwall time {time.monotonic() - started:.0f} s; logs in {tmp}")
    if args.json:
        args.json.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
