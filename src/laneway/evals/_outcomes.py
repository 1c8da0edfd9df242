"""``export-outcomes``: per-prompt outcomes in the router's training format.

One JSON object per line: ``{"id", "prompt" | "messages", ["task",] "outcomes": {column:
mean score over repeats}}``. Failed calls are left out (they say nothing about the model's
answer quality).

A column is the catalog model id of the deployment that served the answer: what
``laneway router train`` maps to tiers (from the config's tiers, each deployment as its
catalog id, or ``--tiers``). Where two deployments of one catalog model are in the export
(two providers serving llama-3.1-70b, or one self-hosted and one serverless), one column
would average the two (or one would overwrite the other); instead each gets its own
column, ``MODEL@DEPLOYMENT`` (a deployment name has no ``@``), and the export's notes say
so: ``router train`` uses those columns where ``--tiers`` names them.

``shadow export`` writes its judged pairs through the same code: a pair is a case that
two deployments answered, the judge's verdict their scores.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from laneway.evals._files import write_atomic
from laneway.evals._store import LoadedRun, ResultRow

__all__ = ["OutcomeExport", "outcome_columns", "outcome_rows", "write_outcomes"]


@dataclass(frozen=True, slots=True)
class OutcomeExport:
    """What ``write_outcomes`` wrote: ``rows`` prompts, and ``notes`` for the user (one
    per catalog model whose deployments were given columns of their own)."""

    rows: int
    notes: tuple[str, ...] = ()


def _note(model: str, columns: list[str]) -> str:
    first, last = columns[0], columns[-1]
    return (
        f"catalog model {model} was served by {len(columns)} deployments: one column each "
        f"({', '.join(columns)}), not one that mixes them; `laneway router train` uses "
        f"them where --tiers names them (e.g. --tiers 'simple={first};complex={last}'), "
        "and without --tiers leaves them out (the config's tiers map catalog ids)"
    )


def outcome_columns(
    served: Iterable[tuple[str, str | None]],
) -> tuple[dict[tuple[str, str | None], str], tuple[str, ...]]:
    """The column of each (catalog model id, deployment) and the notes: the model id,
    or ``MODEL@DEPLOYMENT`` for each of two or more deployments of one model (an answer
    whose deployment is not recorded keeps the plain model id)."""
    deployments: dict[str, set[str]] = {}
    columns: dict[tuple[str, str | None], str] = {}
    for model, deployment in served:
        columns[model, deployment] = model
        if deployment is not None:
            deployments.setdefault(model, set()).add(deployment)
    notes: list[str] = []
    for model, names in sorted(deployments.items()):
        if len(names) > 1:
            for name in names:
                columns[model, name] = f"{model}@{name}"
            notes.append(_note(model, [f"{model}@{name}" for name in sorted(names)]))
    return columns, tuple(notes)


def _scored(run: LoadedRun) -> list[ResultRow]:
    return [
        row
        for row in run.results
        if row.error_code is None and row.passed is not None and row.model_id is not None
    ]


def _outcomes(run: LoadedRun) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    scored = _scored(run)
    columns, notes = outcome_columns((r.model_id or "", r.deployment) for r in scored)
    sums: dict[str, dict[str, list[float]]] = {}
    for row in scored:
        score = row.score if row.score is not None else float(bool(row.passed))
        column = columns[row.model_id or "", row.deployment]
        sums.setdefault(row.case_id, {}).setdefault(column, []).append(score)
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
        if case.get("task"):
            item["task"] = case["task"]
        item["outcomes"] = {m: sum(v) / len(v) for m, v in sorted(per_model.items())}
        out.append(item)
    return out, notes


def outcome_rows(run: LoadedRun) -> list[dict[str, Any]]:
    """The outcome rows of ``run``, one per case with a scored answer."""
    return _outcomes(run)[0]


def write_outcomes(run: LoadedRun, path: Path) -> OutcomeExport:
    """Write the outcomes as JSONL (whole or not at all; the folder must exist)."""
    rows, notes = _outcomes(run)
    write_atomic(path, b"".join(orjson.dumps(item) + b"\n" for item in rows))
    return OutcomeExport(len(rows), notes)
