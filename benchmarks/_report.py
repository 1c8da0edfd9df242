"""Figures, ratios and targets of the gateway benchmark, and their printed tables."""

from __future__ import annotations

from typing import Any

__all__ = ["TARGETS", "add_derived", "judge", "render"]

# (key, description, comparison, threshold)
TARGETS = (
    ("rps_ratio_bare", "Laneway req/s per core ÷ bare passthrough (0 ms, c=16)", ">=", 0.65),
    ("rps_ratio_litellm", "Laneway req/s per core ÷ LiteLLM proxy (0 ms, c=16)", ">=", 20.0),
    ("added_p50_c1_ms", "Laneway added p50 at c=1, 0 ms upstream (ms)", "<=", 1.5),
    ("rss_mb", "Laneway RSS per worker, no embedded model (MB, peak)", "<=", 150.0),
    ("embedded_ratio", "embedded tokens/s via gateway ÷ llama.cpp direct", ">=", 0.90),
)


def _cell(cells: list[dict[str, Any]], target: str, latency: float, c: int, stream: bool) -> Any:
    for cell in cells:
        if (cell["target"], cell["latency_s"], cell["concurrency"], cell["stream"]) == (
            target,
            latency,
            c,
            stream,
        ):
            return cell
    return None


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def add_derived(cells: list[dict[str, Any]]) -> None:
    """Added latency against ``direct`` at the same cell; CPU per request; req/s per core."""
    for cell in cells:
        direct = _cell(cells, "direct", cell["latency_s"], cell["concurrency"], cell["stream"])
        gw_cpu = cell["cpu_s"].get("gateway")
        core0 = cell["cpu_s"].get("upstream", 0.0) + cell["cpu_s"].get("loadgen", 0.0)
        cell["core0_util"] = round(core0 / cell["window_s"], 3)
        if gw_cpu is not None and cell["completed"]:
            cell["gateway_util"] = round(gw_cpu / cell["window_s"], 3)
            cell["cpu_us_per_req"] = round(gw_cpu / cell["completed"] * 1e6, 1)
            cell["rps_per_core"] = round(cell["completed"] / gw_cpu, 1) if gw_cpu else None
        if direct is not None and cell["target"] != "direct":
            for key in ("p50_ms", "p99_ms", "ttft_p50_ms", "ttft_p99_ms"):
                cell["added_" + key] = _sub(cell.get(key), direct.get(key))


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 3)


def judge(
    cells: list[dict[str, Any]], rss: dict[str, Any], embedded: dict[str, Any]
) -> list[dict[str, Any]]:
    """Each target with its measured value and PASS / FAIL / NOT MEASURED."""
    lane = _cell(cells, "laneway", 0.0, 16, False) or {}
    bare = _cell(cells, "bare", 0.0, 16, False) or {}
    lite = _cell(cells, "litellm", 0.0, 16, False) or {}
    lane_c1 = _cell(cells, "laneway", 0.0, 1, False) or {}
    values = {
        "rps_ratio_bare": _ratio(lane.get("rps_per_core"), bare.get("rps_per_core")),
        "rps_ratio_litellm": _ratio(lane.get("rps_per_core"), lite.get("rps_per_core")),
        "added_p50_c1_ms": lane_c1.get("added_p50_ms"),
        "rss_mb": (rss.get("laneway") or {}).get("peak_mb"),
        "embedded_ratio": embedded.get("ratio"),
    }
    out = []
    for key, text, op, threshold in TARGETS:
        value = values[key]
        if value is None:
            verdict = "NOT MEASURED"
        else:
            ok = value >= threshold if op == ">=" else value <= threshold
            verdict = "PASS" if ok else "FAIL"
        out.append(
            {"key": key, "target": text, "op": op, "threshold": threshold, "value": value}
            | {"verdict": verdict}
        )
    return out


def _fmt(value: Any, width: int, digits: int = 1) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return f"{value:.{digits}f}".rjust(width)
    return str(value).rjust(width)


_COLUMNS = (
    ("target", 8, None),
    ("req/s", 8, "rps"),
    ("p50 ms", 8, "p50_ms"),
    ("p99 ms", 8, "p99_ms"),
    ("+p50 ms", 8, "added_p50_ms"),
    ("+p99 ms", 8, "added_p99_ms"),
    ("gw CPU", 7, "gateway_util"),
    ("CPU µs/req", 11, "cpu_us_per_req"),
    ("req/s/core", 11, "rps_per_core"),
    ("core0", 6, "core0_util"),
    ("err", 5, "errors"),
)

_STREAM_COLUMNS = (
    ("target", 8, None),
    ("req/s", 8, "rps"),
    ("TTFT p50", 9, "ttft_p50_ms"),
    ("TTFT p99", 9, "ttft_p99_ms"),
    ("+TTFT p50", 10, "added_ttft_p50_ms"),
    ("+TTFT p99", 10, "added_ttft_p99_ms"),
    ("CPU µs/req", 11, "cpu_us_per_req"),
    ("err", 5, "errors"),
)


def _table(cells: list[dict[str, Any]], columns: tuple[tuple[str, int, Any], ...]) -> list[str]:
    lines = ["  " + " ".join(name.rjust(width) for name, width, _ in columns)]
    for cell in cells:
        row = [cell["target"].rjust(columns[0][1])]
        for _, width, key in columns[1:]:
            digits = 2 if key in ("gateway_util", "core0_util") else 1
            if key in ("p50_ms", "p99_ms", "added_p50_ms", "added_p99_ms") or "ttft" in key:
                digits = 2
            row.append(_fmt(cell.get(key), width, digits))
        lines.append("  " + " ".join(row))
    return lines


def render(report: dict[str, Any]) -> str:
    """The human-readable report."""
    cells = report["cells"]
    lines: list[str] = []
    groups = sorted({(c["stream"], c["latency_s"], c["concurrency"]) for c in cells})
    for stream, latency, concurrency in groups:
        group = [
            c
            for c in cells
            if (c["stream"], c["latency_s"], c["concurrency"]) == (stream, latency, concurrency)
        ]
        kind = "streaming" if stream else "non-streaming"
        lines.append(
            f"\n{kind}, upstream latency {latency * 1000:.0f} ms, concurrency {concurrency}"
        )
        lines.extend(_table(group, _STREAM_COLUMNS if stream else _COLUMNS))
    busy = [
        f"{c['target']} {c['latency_s'] * 1000:.0f} ms c={c['concurrency']}"
        for c in cells
        if not c["stream"] and c["concurrency"] >= 16 and c["latency_s"] == 0.0
        if c.get("gateway_util") is not None and c["gateway_util"] < 0.9
    ]
    if busy:
        lines.append(
            "\nnote: the gateway's core was less than 90% busy in "
            + ", ".join(busy)
            + ": its raw req/s there is not its CPU-bound capacity (see req/s/core, and core0"
            " for the upstream + load generator's core)"
        )
    lines.append("\nmemory after the run (MB, VmRSS now / VmHWM peak, process tree)")
    for name, rss in report["rss"].items():
        lines.append(f"  {name:14} {rss['now_mb']:8.1f} {rss['peak_mb']:8.1f}")
    for name, reason in report["not_measured"].items():
        lines.append(f"\n{name}: not measured ({reason})")
    emb = report["embedded"]
    if emb.get("skipped"):
        lines.append(f"\nembedded model: not measured ({emb['skipped']})")
    elif emb:
        lines.append("\nembedded model (streaming, max_tokens 128, temperature 0, median)")
        for side in ("direct", "gateway"):
            s = emb[side]
            lines.append(
                f"  {side:8} {s['tokens_per_s']:7.1f} tok/s  decode {s['decode_tokens_per_s']:7.1f}"
                f" tok/s  TTFT {s['ttft_ms']:7.1f} ms  tokens {s['tokens']}"
            )
    lines.append("\ntargets")
    for t in report["targets"]:
        value = "-" if t["value"] is None else f"{t['value']:.3f}"
        lines.append(f"  {t['verdict']:12} {t['target']}: {value} ({t['op']} {t['threshold']})")
    return "\n".join(lines)
