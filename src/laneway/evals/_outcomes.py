"""``export-outcomes``: per-prompt outcomes in the router's training format.

One JSON object per line: ``{"id", "prompt" | "messages", "outcomes": {catalog_model_id:
mean score over repeats}}``. The catalog id is the model the serving deployment runs (a
tier candidate may have been served by several; each gets its own mean). Failed calls
are left out (they say nothing about the model's answer quality).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from laneway.evals._files import write_atomic
from laneway.evals._store import LoadedRun

__all__ = ["outcome_rows", "write_outcomes"]


def outcome_rows(run: LoadedRun) -> list[dict[str, Any]]:
    sums: dict[str, dict[str, list[float]]] = {}
    for row in run.results:
        if row.error_code is not None or row.passed is None or row.model_id is None:
            continue
        score = row.score if row.score is not None else float(row.passed)
        sums.setdefault(row.case_id, {}).setdefault(row.model_id, []).append(score)
    out: list[dict[str, Any]] = []
    for case in run.info.suite.get("cases", []):
        per_model = sums.get(case["id"])
        if not per_model:
            continue
        item: dict[str, Any] = {"id": case["id"]}
        messages = list(case.get("messages") or [])
        if case.get("system"):
            messages.insert(0, {"role": "system", "content": case["system"]})
        if messages:
            if case.get("prompt") is not None:
                messages.append({"role": "user", "content": case["prompt"]})
            item["messages"] = messages
        else:
            item["prompt"] = case["prompt"]
        item["outcomes"] = {m: sum(v) / len(v) for m, v in sorted(per_model.items())}
        out.append(item)
    return out


def write_outcomes(run: LoadedRun, path: Path) -> int:
    """Write the outcomes as JSONL (whole or not at all; the folder must exist)."""
    rows = outcome_rows(run)
    write_atomic(path, b"".join(orjson.dumps(item) + b"\n" for item in rows))
    return len(rows)
