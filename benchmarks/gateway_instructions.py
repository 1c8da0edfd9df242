"""CPU instructions per request, bare passthrough vs Laneway, counted by valgrind.

    python benchmarks/gateway_instructions.py [--requests 3000] [--concurrency 16]
    python benchmarks/gateway_instructions.py --stream [--requests 200] [--chunk-delay 0.05]

Timings on a shared machine move ±15% between runs; instruction counts move much less
(two runs: bare 607 k and 655 k, Laneway 931 k and 940 k; under valgrind the event loop
batches concurrent requests a little differently each time). Each gateway runs under
``valgrind --tool=cachegrind --cache-sim=no`` twice: once serving one warm-up request and
once serving the warm-up plus ``--requests`` chat requests at ``--concurrency``
(non-streaming, 0 ms fake upstream, the same request as ``gateway_overhead.py``). The
difference of the two totals, divided by ``--requests``, is the gateway's instructions per
request with start-up and shutdown cancelled out. The ratio bare ÷ Laneway is the
instruction-count analogue of the "req/s per core ÷ bare" figure (instructions are not
time: C code such as SQLite runs more instructions per cycle than the interpreter). Needs
``valgrind`` on PATH (``apt install valgrind``); takes ~3 minutes.

``--stream`` counts streamed requests instead (``stream_options.include_usage``; the fake
upstream's default answer is 23 SSE events: a role chunk, 19 content chunks, the finish
chunk, the usage chunk and ``[DONE]``) at concurrency 4. The upstream spaces its chunks
``--chunk-delay`` seconds apart (default 50 ms: under valgrind a gateway runs ~50x slower,
and chunks that arrive while it is busy are read together, which would hide the per-chunk
cost). Each loaded run checks that every stream carried all its content chunks. Figures
(#13): bare 2207 k per streamed request; Laneway 3433 k before the streaming work (1.56x),
2787 k after it (1.26x; bare 2206 k in the same run). Timed CPU per stream moved less
(side by side at load 5: 1.52x -> 1.40x of bare): time also goes to socket writes, which
valgrind does not count and which this setting (no chunks read together) does not merge.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loadgen import chat_body, read_stream
from _procs import free_port

HERE = Path(__file__).resolve().parent
_LANEWAY_MAIN = "import sys; from laneway.cli import main; sys.exit(main())"
_IREFS = re.compile(r"I\s+refs:\s+([\d,]+)")
_CONTENT_CHUNKS = 19  # content deltas of the fake upstream's answer to ``chat_body``


async def _load(url: str, model: str, requests: int, concurrency: int, stream: bool) -> int:
    body = orjson.dumps(chat_body(model, stream=stream))
    left, failed = [requests], [0]
    headers = {"content-type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout
    ) as session:

        async def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                async with session.post(url, data=body, headers=headers) as response:
                    if stream and response.status == 200:
                        _, count = await read_stream(response, 0.0)
                        failed[0] += count != _CONTENT_CHUNKS
                    else:
                        await response.read()
                        failed[0] += response.status != 200

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failed[0]


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 600  # start-up under valgrind is ~30x slower
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the gateway exited during start-up; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310 (loopback)
                return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"the gateway did not start within 10 minutes; see {log}")


def _count(
    argv: list[str], health: str, chat: str, model: str, n: int, args: argparse.Namespace
) -> int:
    """Total instructions of one gateway run that serves 1 + ``n`` requests."""
    log = args.tmp / f"valgrind-{len(list(args.tmp.iterdir()))}.log"
    vg = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    with log.open("wb") as out:
        proc = subprocess.Popen([*vg, *argv], stdout=out, stderr=out, cwd=args.tmp)
    try:
        _wait_ready(health, proc, log)
        concurrency = args.concurrency if n else 1
        failed = asyncio.run(_load(chat, model, 1 + n, concurrency, args.stream))
        if failed:
            raise RuntimeError(f"{failed} request(s) failed; see {log}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
    found = _IREFS.search(log.read_text(errors="replace"))
    if found is None:
        raise RuntimeError(f"no instruction count in {log}")
    return int(found.group(1).replace(",", ""))


def _gateways(upstream: str, tmp: Path) -> dict[str, tuple[list[str], str, str, str]]:
    bare_port, lane_port = free_port(), free_port()
    bare = [sys.executable, str(HERE / "_passthrough.py"), "--port", str(bare_port)]
    bare += ["--upstream", upstream]
    config = {
        "server": {"host": "127.0.0.1", "port": lane_port, "workers": 1},
        "database": {"url": f"sqlite:///{tmp / 'ledger.db'}"},
        "deployments": [
            {
                "name": "bench-0",
                "model": "deepseek-v4-flash",
                "provider": "openai_compatible",
                "api_base": f"{upstream}/v1",
                "upstream_model": "fake-model",
            }
        ],
    }
    path = tmp / "laneway-bench.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    lane = [sys.executable, "-c", _LANEWAY_MAIN, "serve", "--config", str(path)]
    lane += ["--log-level", "warning"]
    return {
        "bare": (
            bare,
            f"http://127.0.0.1:{bare_port}/health",
            f"http://127.0.0.1:{bare_port}/u0/v1/chat/completions",
            "fake-model",
        ),
        "laneway": (
            lane,
            f"http://127.0.0.1:{lane_port}/health/live",
            f"http://127.0.0.1:{lane_port}/v1/chat/completions",
            "bench-0",
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, help="measured requests (3000; streamed: 300)")
    parser.add_argument("--concurrency", type=int, help="clients at once (16; streamed: 4)")
    parser.add_argument("--stream", action="store_true", help="count streamed requests")
    parser.add_argument(
        "--chunk-delay", type=float, default=0.05, help="seconds between streamed chunks"
    )
    parser.add_argument("--only", choices=("bare", "laneway"), help="count one gateway only")
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = 200 if args.stream else 3000
    if args.concurrency is None:
        args.concurrency = 4 if args.stream else 16
    if shutil.which("valgrind") is None:
        print("valgrind is not on PATH (apt install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="laneway-ir-") as tmp:
        args.tmp = Path(tmp)
        upstream_argv = [sys.executable, str(HERE / "_upstream.py")]
        if args.stream:
            upstream_argv += ["--chunk-delay", str(args.chunk_delay)]
        up = subprocess.Popen(upstream_argv, stdout=subprocess.PIPE)
        try:
            assert up.stdout is not None
            ready = up.stdout.readline().decode().split()
            upstream = f"http://127.0.0.1:{ready[1]}"
            per_request: dict[str, float] = {}
            for name, (cmd, health, chat, model) in _gateways(upstream, args.tmp).items():
                if args.only and name != args.only:
                    continue
                base = _count(cmd, health, chat, model, 0, args)
                loaded = _count(cmd, health, chat, model, args.requests, args)
                per_request[name] = (loaded - base) / args.requests
                what = "streamed request" if args.stream else "request"
                print(f"{name:8} {per_request[name] / 1000:8.0f} k instructions per {what}")
        finally:
            up.terminate()
            up.wait(timeout=10)
    if len(per_request) < 2:
        return 0
    if args.stream:
        ratio = per_request["laneway"] / per_request["bare"]
        print(f"Laneway ÷ bare instructions per streamed request: {ratio:.3f} (target: 1.4)")
        return 0
    ratio = per_request["bare"] / per_request["laneway"]
    print(f"bare ÷ Laneway instructions per request: {ratio:.3f} (the timed target: 0.65)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
