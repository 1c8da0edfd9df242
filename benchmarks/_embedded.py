"""The embedded model's speed: through ``laneway serve`` versus llama-cpp-python directly.

``python benchmarks/_embedded.py --runs N`` loads the GGUF that Laneway's ``local``
deployment uses, with the adapter's defaults (n_ctx 2048, n_threads default), and prints
one JSON object: per run, the content tokens streamed, the seconds to the first one and the
total seconds. The orchestrator runs it pinned to the gateway's core, and measures the
gateway side with :func:`through_gateway`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
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


def _direct(runs: int) -> list[dict[str, float]]:
    from llama_cpp import Llama

    from laneway.providers._local import default_gguf_path

    llama: Any = Llama(model_path=str(default_gguf_path()), n_ctx=2048, verbose=False)
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


async def through_gateway(url: str, model: str, runs: int) -> list[dict[str, float]]:
    """``runs`` streamed generations through a gateway (after one warm-up)."""
    from _loadgen import read_stream

    body = orjson.dumps(
        {
            "model": model,
            "messages": _messages(),
            "max_tokens": MAX_TOKENS,
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
            if index:
                out.append(
                    {"tokens": tokens, "ttft": first, "seconds": time.perf_counter() - started}
                )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(orjson.dumps(_direct(args.runs)).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
