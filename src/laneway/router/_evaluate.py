"""``laneway router eval``: a router against random, prompt-length and oracle baselines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from laneway.errors import InvalidRequest
from laneway.router._fit import feature_matrix
from laneway.router._metrics import BootstrapResult, bootstrap, pgr_curve
from laneway.router._scorer import Scorer

__all__ = ["EvalReport", "evaluate_pair", "plot_curves"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class EvalReport:
    strong: str
    weak: str
    rows: int
    results: Mapping[str, BootstrapResult]
    curves: Mapping[str, FloatArray]

    def to_dict(self) -> dict[str, Any]:
        return {
            "strong": self.strong,
            "weak": self.weak,
            "rows": self.rows,
            "methods": {
                name: {
                    "apgr": r.value.apgr,
                    "apgr_ci95": list(r.apgr_ci),
                    "cpt50": r.value.cpt50,
                    "cpt50_ci95": list(r.cpt50_ci),
                    "cpt80": r.value.cpt80,
                }
                for name, r in self.results.items()
            },
        }


def evaluate_pair(
    scorer: Scorer,
    rows: Sequence[Mapping[str, Any]],
    strong: str,
    weak: str,
    *,
    rounds: int = 200,
) -> EvalReport:
    usable = [r for r in rows if strong in r["outcomes"] and weak in r["outcomes"]]
    if len(usable) < 2:
        raise InvalidRequest(f"fewer than two rows have outcomes for both {strong} and {weak}")
    convs = [r["conversation"] for r in usable]
    s = np.array([r["outcomes"][strong] for r in usable], dtype=np.float64)
    w = np.array([r["outcomes"][weak] for r in usable], dtype=np.float64)
    if float(s.mean()) <= float(w.mean()):  # PGR divides by this gap: the ranking would flip
        raise InvalidRequest(
            f"{strong} is not better than {weak} on these {len(usable)} prompts (mean outcome "
            f"{s.mean():.3f} vs {w.mean():.3f}): APGR cannot rank routers (the oracle would "
            "rank last); swap --strong and --weak if they are the wrong way round"
        )
    x = feature_matrix(convs, scorer.embedder, scorer.use_embedding)
    est = scorer.predict_matrix(x, [r.get("task") for r in usable])
    scores = {
        "router": est[:, -1] - est[:, 0],
        "random": np.zeros(len(usable)),
        "prompt-length": np.array([c.total_chars for c in convs], dtype=np.float64),
        "oracle": s - w,
    }
    results = {name: bootstrap(sc, s, w, rounds=rounds) for name, sc in scores.items()}
    curves = {name: pgr_curve(sc, s, w) for name, sc in scores.items()}
    return EvalReport(strong, weak, len(usable), results, curves)


def plot_curves(report: EvalReport, path: Path) -> None:
    """Cost-quality curve (PGR against share of strong calls); needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise InvalidRequest("--plot needs matplotlib: pip install 'matplotlib==3.11.2'") from exc
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, curve in report.curves.items():
        share = np.linspace(0.0, 1.0, len(curve))
        apgr = report.results[name].value.apgr
        ax.plot(share * 100, curve, label=f"{name} (APGR {apgr:.3f})")
    ax.axhline(0.5, color="grey", lw=0.5, ls=":")
    ax.axhline(0.8, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("strong-model calls (%)")
    ax.set_ylabel("performance gap recovered")
    ax.set_title(f"{report.strong} vs {report.weak} (n={report.rows})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
