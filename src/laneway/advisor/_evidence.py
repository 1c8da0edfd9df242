"""Quality evidence per model: the team's eval results, attached to the model they measured.

A model that failed the bar on any task of a tier is out on every path for that tier; a
model with no result is "needs eval" (said, never assumed to pass). An eval result that
names no model (the old ``quality: {open_weight_score, required_score}`` form) is read as
every open-weight candidate's score, so a miss blocks them all and a pass carries a warning.
"""

from __future__ import annotations

from typing import Literal

from laneway.advisor._workload import Evidence, Task, Workload
from laneway.catalog import ModelInfo

__all__ = ["Verdict", "applicable", "verdict"]

Verdict = Literal["passes", "needs eval", "fails"]


def applicable(model: ModelInfo, tasks: tuple[Task, ...], workload: Workload) -> list[Evidence]:
    """The eval results that speak about ``model`` on any of ``tasks``."""
    names = {t.name for t in tasks}
    return [
        e
        for e in workload.evidence()
        if (e.task is None or e.task in names)
        and (e.model == model.id or (e.model is None and model.open_weights))
    ]


def verdict(model: ModelInfo, tasks: tuple[Task, ...], workload: Workload) -> tuple[Verdict, str]:
    """``("fails", detail)`` if any applicable result misses its bar, ``("passes", …)`` if
    there are results for every task and all pass, else ``("needs eval", …)``."""
    found = applicable(model, tasks, workload)
    failed = [e for e in found if not e.passed]
    if failed:
        return "fails", "; ".join(e.describe() for e in failed)
    covered = {e.task for e in found}
    if found and (None in covered or {t.name for t in tasks} <= covered):
        note = "" if all(e.model for e in found) else " (an eval that names no model)"
        return "passes", "; ".join(e.describe() for e in found) + note
    if found:
        missing = sorted({t.name for t in tasks} - covered)
        return "needs eval", f"no eval on {', '.join(missing)}"
    return "needs eval", "no eval result for this model"
