"""How much a gateway costs: direct vs a bare passthrough vs Laneway vs LiteLLM's proxy.

    python benchmarks/gateway_overhead.py [--quick] [--json out.json] [--no-litellm]

One run, one fake upstream (``laneway.testing.FakeOpenAI``; 0 ms and 50 ms of latency),
closed-loop load at concurrency 1, 16 and 64, plus streaming time to first token. Each
gateway runs as its own process pinned to one core; the upstream, the load generator and
this script share the other. Figures per cell:

* added latency p50/p99 = gateway p50/p99 − direct p50/p99 at the same latency and concurrency;
* CPU µs per request = the gateway process tree's user+system CPU in the measured window
  (``/proc/<pid>/stat``) ÷ the requests completed in it;
* req/s per core = requests ÷ gateway CPU seconds (= 10^6 ÷ CPU µs per request): what one
  core would serve when the gateway is CPU-bound, even where the load generator's core
  saturates first (the ``gw CPU`` column says how busy the gateway's core was);
* RSS = VmRSS / VmHWM of the gateway's process tree after its runs.

All traffic stays on 127.0.0.1; every process started here is stopped on exit or Ctrl-C.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _embedded import summarise, through_gateway
from _litellm import (
    ensure_litellm,
    litellm_argv,
    litellm_env,
    write_litellm_config,
)
from _procs import Processes, free_port, rss_mb, wait_http
from _report import add_derived, judge, render

HERE = Path(__file__).resolve().parent
LATENCIES = (0.0, 0.05)
CHUNK_DELAY = 0.001
LANEWAY_MODEL = "deepseek-v4-flash"
_LANEWAY_MAIN = "import sys; from laneway.cli import main; sys.exit(main())"


@dataclass(frozen=True)
class Plan:
    duration: float
    warmup: float
    concurrencies: tuple[int, ...] = (1, 16, 64)
    stream_concurrencies: tuple[int, ...] = (1, 16)
    embedded_runs: int = 3


@dataclass
class Gateway:
    """One system under test: where to send a request for each upstream latency."""

    name: str
    urls: dict[float, str]
    models: dict[float, str]
    pid: int | None = None


@dataclass
class Bench:
    plan: Plan
    procs: Processes
    tmp: Path
    gw_cpus: set[int] | None
    load_cpus: set[int] | None
    upstreams: dict[float, tuple[str, int]] = field(default_factory=dict)
    cells: list[dict[str, Any]] = field(default_factory=list)
    rss: dict[str, dict[str, float]] = field(default_factory=dict)
    not_measured: dict[str, str] = field(default_factory=dict)


def _cpu_sets() -> tuple[set[int] | None, set[int] | None]:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        print("warning: fewer than 2 cores available; nothing is pinned", file=sys.stderr)
        return None, None
    return {cores[1]}, {cores[0]}


def _loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _clean_env() -> dict[str, str]:
    """The environment for gateways: no config file, no provider keys, no proxies."""
    drop = ("LANEWAY_CONFIG", "LANEWAY_DATABASE_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in drop and not k.upper().endswith("_API_KEY")
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_upstreams(bench: Bench) -> None:
    for index, latency in enumerate(LATENCIES):
        argv = [sys.executable, str(HERE / "_upstream.py"), "--latency", str(latency)]
        argv += ["--chunk-delay", str(CHUNK_DELAY)]
        proc = bench.procs.start(
            f"upstream{index}", argv, cpus=bench.load_cpus, env=_clean_env(), capture_stdout=True
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "READY":
            raise RuntimeError(f"the fake upstream did not start (see {bench.tmp})")
        bench.upstreams[latency] = (f"http://127.0.0.1:{line[1]}", proc.pid)


def run_cell(bench: Bench, gw: Gateway, latency: float, concurrency: int, stream: bool) -> None:
    plan = bench.plan
    argv = [sys.executable, str(HERE / "_loadgen.py"), "--url", gw.urls[latency]]
    argv += ["--model", gw.models[latency], "--concurrency", str(concurrency)]
    argv += ["--duration", str(plan.duration), "--warmup", str(plan.warmup)]
    argv += ["--watch", f"upstream={bench.upstreams[latency][1]}"]
    if gw.pid is not None:
        argv += ["--watch", f"gateway={gw.pid}"]
    if stream:
        argv.append("--stream")
    proc = bench.procs.start("loadgen", argv, cpus=bench.load_cpus, capture_stdout=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.wait()
    bench.procs.stop(proc)
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"load generator failed (see {bench.tmp / 'loadgen.log'})")
    cell = orjson.loads(out)
    cell.update(target=gw.name, latency_s=latency)
    bench.cells.append(cell)
    mode = "stream" if stream else "json"
    print(
        f"  {gw.name:8} {latency * 1000:3.0f} ms c={concurrency:<3} {mode:6}"
        f" {cell['rps']:8.1f} req/s  p50 {cell['p50_ms']} ms  errors {cell['errors']}",
        flush=True,
    )
    if cell["errors"]:
        print(f"    first error: {cell['first_error']}", flush=True)


def prime(bench: Bench, gw: Gateway) -> None:
    """Warm a freshly started gateway (lazy imports, pools, caches); nothing is kept."""
    seconds = str(max(1.0, bench.plan.warmup))
    for stream in ([], ["--stream"]):
        argv = [sys.executable, str(HERE / "_loadgen.py"), "--url", gw.urls[0.0]]
        argv += ["--model", gw.models[0.0], "--concurrency", "4", "--duration", seconds]
        argv += ["--warmup", "0", *stream]
        proc = bench.procs.start("prime", argv, cpus=bench.load_cpus, capture_stdout=True)
        assert proc.stdout is not None
        proc.stdout.read()
        proc.wait()
        bench.procs.stop(proc)


def measure(bench: Bench, gw: Gateway) -> None:
    prime(bench, gw)
    for latency in LATENCIES:
        for concurrency in bench.plan.concurrencies:
            run_cell(bench, gw, latency, concurrency, stream=False)
        for concurrency in bench.plan.stream_concurrencies:
            run_cell(bench, gw, latency, concurrency, stream=True)
    if gw.pid is not None:
        bench.rss[gw.name] = {
            "now_mb": round(rss_mb(gw.pid), 1),
            "peak_mb": round(rss_mb(gw.pid, peak=True), 1),
        }


def _start_gateway(
    bench: Bench, name: str, argv: list[str], env: dict[str, str], health: str, port: int
) -> int:
    proc = bench.procs.start(name, argv, cpus=bench.gw_cpus, env=env, cwd=bench.tmp)
    wait_http(f"http://127.0.0.1:{port}{health}", proc, 180, bench.tmp / f"{name}.log")
    return proc.pid


def direct(bench: Bench) -> Gateway:
    urls = {lat: f"{base}/v1/chat/completions" for lat, (base, _) in bench.upstreams.items()}
    return Gateway("direct", urls, dict.fromkeys(LATENCIES, "fake-model"))


def bare(bench: Bench) -> Gateway:
    port = free_port()
    argv = [sys.executable, str(HERE / "_passthrough.py"), "--port", str(port)]
    for latency in LATENCIES:
        argv += ["--upstream", bench.upstreams[latency][0]]
    pid = _start_gateway(bench, "bare", argv, _clean_env(), "/health", port)
    urls = {
        lat: f"http://127.0.0.1:{port}/u{i}/v1/chat/completions" for i, lat in enumerate(LATENCIES)
    }
    return Gateway("bare", urls, dict.fromkeys(LATENCIES, "fake-model"), pid)


def laneway(bench: Bench) -> Gateway:
    port = free_port()
    models = {lat: f"bench-{i}" for i, lat in enumerate(LATENCIES)}
    config = {
        "server": {"host": "127.0.0.1", "port": port, "workers": 1},
        "database": {"url": f"sqlite:///{bench.tmp / 'ledger.db'}"},
        "deployments": [
            {
                "name": models[lat],
                "model": LANEWAY_MODEL,
                "provider": "openai_compatible",
                "api_base": f"{bench.upstreams[lat][0]}/v1",
                "upstream_model": "fake-model",
                "api_key": "env:LANEWAY_BENCH_KEY",
            }
            for lat in LATENCIES
        ],
    }
    path = bench.tmp / "laneway-bench.yaml"  # not ./laneway.yaml: the embedded run is in tmp
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = _clean_env() | {"LANEWAY_BENCH_KEY": "sk-bench"}
    argv = [sys.executable, "-c", _LANEWAY_MAIN, "serve", "--config", str(path)]
    argv += ["--log-level", "warning"]
    pid = _start_gateway(bench, "laneway", argv, env, "/health/live", port)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    return Gateway("laneway", dict.fromkeys(LATENCIES, url), models, pid)


def litellm(bench: Bench, venv: Path) -> Gateway:
    port = free_port()
    models = {lat: f"bench-{i}" for i, lat in enumerate(LATENCIES)}
    path = bench.tmp / "litellm.yaml"
    write_litellm_config(path, {models[lat]: f"{bench.upstreams[lat][0]}/v1" for lat in LATENCIES})
    argv = list(litellm_argv(venv, path, port))
    pid = _start_gateway(
        bench, "litellm", argv, litellm_env(_clean_env()), "/health/liveliness", port
    )
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    return Gateway("litellm", dict.fromkeys(LATENCIES, url), models, pid)


def _llama_direct(bench: Bench, runs: int) -> list[dict[str, float]]:
    argv = [sys.executable, str(HERE / "_embedded.py"), "--runs", str(runs)]
    proc = bench.procs.start("llama-direct", argv, cpus=bench.gw_cpus, capture_stdout=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.wait()
    bench.procs.stop(proc)
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"direct llama.cpp run failed (see {bench.tmp / 'llama-direct.log'})")
    result: list[dict[str, float]] = orjson.loads(out)
    return result


def embedded(bench: Bench) -> dict[str, Any]:
    """tokens/s of the default ``local`` deployment via ``laneway serve`` vs direct."""
    try:
        import llama_cpp  # noqa: F401

        from laneway.providers._local import default_gguf_path

        default_gguf_path()
    except Exception as exc:
        return {"skipped": f"llama_cpp or the GGUF is not available: {exc}"}
    runs = bench.plan.embedded_runs
    direct_runs = _llama_direct(bench, runs)
    port = free_port()
    env = _clean_env() | {"LANEWAY_DATABASE_URL": f"sqlite:///{bench.tmp / 'embedded.db'}"}
    argv = [sys.executable, "-c", _LANEWAY_MAIN, "serve", "--port", str(port)]
    argv += ["--log-level", "warning"]
    pid = _start_gateway(bench, "laneway-embedded", argv, env, "/health/live", port)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    gateway_side = summarise(asyncio.run(through_gateway(url, "local", runs)))
    rss = {"now_mb": round(rss_mb(pid), 1), "peak_mb": round(rss_mb(pid, peak=True), 1)}
    bench.rss["laneway+model"] = rss
    bench.procs.stop_pid(pid)
    # direct runs before and after the gateway's, so drift in the machine's load evens out
    direct_side = summarise(direct_runs + _llama_direct(bench, runs))
    ratio = None
    if direct_side["tokens_per_s"] and gateway_side["tokens_per_s"]:
        ratio = round(gateway_side["tokens_per_s"] / direct_side["tokens_per_s"], 3)
    return {"direct": direct_side, "gateway": gateway_side, "ratio": ratio}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short cells (about 3 minutes)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy")
    parser.add_argument("--no-embedded", action="store_true", help="skip the embedded model")
    parser.add_argument("--only", action="append", help="measure only these gateways")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temp directory")
    return parser.parse_args(argv)


def _prepare_litellm(args: argparse.Namespace, bench: Bench) -> Path | None:
    if args.no_litellm:
        bench.not_measured["litellm"] = "--no-litellm"
        return None
    try:
        venv, version = ensure_litellm(log=bench.tmp / "litellm-install.log")
    except (RuntimeError, OSError) as exc:
        bench.not_measured["litellm"] = str(exc)[:300]
        print(f"LiteLLM: not measured ({exc})", flush=True)
        return None
    print(f"LiteLLM {version} from {venv}", flush=True)
    return venv


def _run(args: argparse.Namespace, bench: Bench) -> dict[str, Any]:
    venv = _prepare_litellm(args, bench)
    start_upstreams(bench)
    makers: dict[str, Any] = {"direct": direct, "bare": bare, "laneway": laneway}
    if venv is not None:
        makers["litellm"] = lambda b: litellm(b, venv)
    for name, make in makers.items():
        if args.only and name not in args.only and name != "direct":
            continue
        print(f"{name}:", flush=True)
        try:
            gw = make(bench)
        except RuntimeError as exc:
            bench.not_measured[name] = str(exc)[:500]
            print(f"{name}: not measured ({exc})", flush=True)
            continue
        try:
            measure(bench, gw)
        except RuntimeError as exc:
            bench.not_measured[name] = f"failed mid-run: {str(exc)[:400]}"
            print(f"{name}: failed mid-run ({exc})", flush=True)
        if gw.pid is not None:
            bench.procs.stop_pid(gw.pid)
    emb: dict[str, Any] = {"skipped": "--no-embedded"}
    if not args.no_embedded:
        print("embedded model:", flush=True)
        try:
            emb = embedded(bench)
        except RuntimeError as exc:
            emb = {"skipped": f"failed: {str(exc)[:500]}"}
    add_derived(bench.cells)
    return {
        "plan": vars(bench.plan) | {"latencies_s": LATENCIES, "chunk_delay_s": CHUNK_DELAY},
        "pinning": {"gateway": sorted(bench.gw_cpus or []), "load": sorted(bench.load_cpus or [])},
        "cells": bench.cells,
        "rss": bench.rss,
        "not_measured": bench.not_measured,
        "embedded": emb,
        "targets": judge(bench.cells, bench.rss, emb),
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    plan = Plan(duration=3.0, warmup=1.0, embedded_runs=2) if args.quick else Plan(8.0, 2.0)
    gw_cpus, load_cpus = _cpu_sets()
    if load_cpus:
        os.sched_setaffinity(0, load_cpus)
    tmp = Path(tempfile.mkdtemp(prefix="laneway-bench-"))
    started, load_before = time.monotonic(), _loadavg()
    if load_before > 1.0:
        print(f"warning: load average {load_before:.1f} before the run; figures will be noisy")
    try:
        with Processes(tmp) as procs:
            bench = Bench(plan, procs, tmp, gw_cpus, load_cpus)
            report = _run(args, bench)
    except KeyboardInterrupt:
        print("\ninterrupted; every process started here was stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep_logs:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report["wall_s"] = round(time.monotonic() - started, 1)
    report["loadavg_1m"] = {"before": load_before, "after": _loadavg()}
    print(render(report))
    print(
        f"\nwall time {report['wall_s']} s; 1-minute load average {load_before:.1f} before,"
        f" {report['loadavg_1m']['after']:.1f} after (the run itself adds about 2)"
    )
    if args.json:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
