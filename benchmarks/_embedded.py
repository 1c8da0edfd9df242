"""The embedded model's speed, per runtime: directly and through ``laneway serve``.

``python benchmarks/_embedded.py --runs N [--runtime llama_cpp|numpy]`` loads the GGUF
that Laneway's ``local`` deployment uses, with the adapter's defaults (n_ctx 2048), and
prints one JSON list: per run, the content tokens streamed, the seconds to the first one
and the total seconds (gateway_overhead.py runs it pinned to the gateway's core, and
measures the gateway side with :func:`through_gateway`).

``--summary`` instead prints, for each runtime asked (``--runtime`` repeated), the load
time, the direct figures, and through a ``laneway serve`` started for it: the seconds
from start to ``/health/ready``, the first request's latency after ready, and the
streamed figures (medians).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import orjson

__all__ = ["MAX_TOKENS", "PROMPT", "main", "summarise", "through_gateway"]

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
MAX_TOKENS = 128


def _messages() -> list[dict[str, str]]:
    return [{"role": "user", "content": PROMPT}]


def summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Median tokens/s over the runs: tokens ÷ whole-request seconds, and decode-only."""
    total = [r["tokens"] / r["seconds"] for r in runs if r["seconds"] > 0]
    decode = [
        (r["tokens"] - 1) / (r["seconds"] - r["ttft"])
        for r in runs
        if r["tokens"] > 1 and r["seconds"] > r["ttft"]
    ]
    return {
        "runs": runs,
        "tokens_per_s": statistics.median(total) if total else None,
        "decode_tokens_per_s": statistics.median(decode) if decode else None,
        "ttft_ms": statistics.median(r["ttft"] for r in runs) * 1000 if runs else None,
        "tokens": statistics.median(r["tokens"] for r in runs) if runs else None,
    }


def _load(runtime: str) -> Any:
    from laneway.providers._local import default_gguf_path

    path = str(default_gguf_path())
    if runtime == "numpy":
        from laneway.providers._numpy_llama import NumpyLlama

        return NumpyLlama(path, n_ctx=2048)
    from llama_cpp import Llama

    return Llama(model_path=path, n_ctx=2048, verbose=False)


def _direct(runs: int, runtime: str = "llama_cpp", model: Any = None) -> list[dict[str, float]]:
    llama = model if model is not None else _load(runtime)
    out = []
    for index in range(runs + 1):  # the first run warms up
        started = time.perf_counter()
        first, tokens = -1.0, 0
        for chunk in llama.create_chat_completion(
            messages=_messages(), max_tokens=MAX_TOKENS, temperature=0.0, stream=True
        ):
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                tokens += 1
                if first < 0:
                    first = time.perf_counter() - started
        if index:
            out.append({"tokens": tokens, "ttft": first, "seconds": time.perf_counter() - started})
    return out


async def through_gateway(
    url: str, model: str, runs: int, max_tokens: int = MAX_TOKENS
) -> list[dict[str, float]]:
    """``runs`` streamed generations through a gateway after one warm-up (``runs`` 0:
    only that one, returned)."""
    from _loadgen import read_stream

    body = orjson.dumps(
        {
            "model": model,
            "messages": _messages(),
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
        }
    )
    out = []
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for index in range(runs + 1):
            started = time.perf_counter()
            headers = {"content-type": "application/json"}
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    text = (await response.read())[:300].decode("utf-8", "replace")
                    raise RuntimeError(f"HTTP {response.status}: {text}")
                first, tokens = await read_stream(response, started)
            if index or not runs:
                out.append(
                    {"tokens": tokens, "ttft": first, "seconds": time.perf_counter() - started}
                )
    return out


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
            return bool(response.status == 200)
    except OSError:
        return False


def _gateway(runtime: str, runs: int) -> dict[str, Any]:
    """Start ``laneway serve`` with one local deployment on ``runtime``; time ready, the
    first request after it, then ``runs`` streamed generations."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="laneway-embedded-"))
    config = tmp / "laneway.yaml"
    config.write_text(
        "deployments:\n"
        "  - {name: local, model: smollm2-135m-instruct, provider: local,"
        f" hourly_cost_usd: '0', local: {{runtime: {runtime}}}}}\n"
    )
    env = os.environ | {"LANEWAY_DATABASE_URL": f"sqlite:///{tmp / 'ledger.db'}"}
    argv = [sys.executable, "-m", "laneway.cli", "serve", "--config", str(config)]
    argv += ["--port", str(port), "--log-level", "warning"]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        while not _http_ok(base + "/health/ready"):
            if proc.poll() is not None or time.perf_counter() - started > 600:
                raise RuntimeError(f"laneway serve ({runtime}) did not get ready")
            time.sleep(0.2)
        ready = time.perf_counter() - started
        first = asyncio.run(through_gateway(base + "/v1/chat/completions", "local", 0, 8))
        figures = summarise(
            asyncio.run(through_gateway(base + "/v1/chat/completions", "local", runs))
        )
    finally:
        proc.terminate()
        proc.wait(30)
    return {"ready_s": round(ready, 2), "first_request_s": round(first[0]["seconds"], 3)} | {
        k: v for k, v in figures.items() if k != "runs"
    }


def _summary(runtimes: list[str], runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for runtime in runtimes:
        started = time.perf_counter()
        model = _load(runtime)
        loaded = time.perf_counter() - started
        direct = summarise(_direct(runs, runtime, model))
        del model
        out[runtime] = {
            "load_s": round(loaded, 2),
            "direct": {k: v for k, v in direct.items() if k != "runs"},
            "gateway": _gateway(runtime, runs),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="measured runs (after one warm-up)")
    parser.add_argument(
        "--runtime",
        action="append",
        choices=["llama_cpp", "numpy"],
        help="the runtime to measure (repeat for several; default llama_cpp)",
    )
    parser.add_argument(
        "--summary", action="store_true", help="direct and gateway figures per runtime"
    )
    args = parser.parse_args(argv)
    runtimes = args.runtime or ["llama_cpp"]
    if args.summary:
        result: Any = _summary(runtimes, args.runs)
    else:
        result = _direct(args.runs, runtimes[0])
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
