"""The HTML report of a run: tables per model and per tag, and plots (quality vs cost,
latency distributions, per-tag pass rates, pairwise win matrix) drawn with matplotlib
(Agg backend, inline SVG) into a Jinja2 template. One self-contained file."""

from __future__ import annotations

import io
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from laneway.evals._files import write_atomic
from laneway.evals._judge import position_bias
from laneway.evals._metrics import MIN_P95_SAMPLES, ModelMetrics, metrics_to_json
from laneway.evals._store import LoadedRun, PairVerdict

__all__ = ["cost_axis", "point_labels", "render_report", "win_matrix", "write_report"]


def win_matrix(
    pairs: Sequence[PairVerdict], models: Sequence[str]
) -> dict[str, dict[str, float | None]]:
    """Win rate of the row model against the column model (a tie counts half)."""
    score: dict[tuple[str, str], list[float]] = {}
    for p in pairs:
        a_score = {"a": 1.0, "b": 0.0, "tie": 0.5}[p.winner]
        score.setdefault((p.model_a, p.model_b), []).append(a_score)
        score.setdefault((p.model_b, p.model_a), []).append(1.0 - a_score)
    return {
        r: {c: (sum(v) / len(v) if (v := score.get((r, c))) else None) for c in models}
        for r in models
    }


def cost_axis(costs: Sequence[float]) -> tuple[float, float]:
    """The x range of the quality-vs-cost plot: from 0 (costs are never negative) to a
    little past the largest cost; ``(0, 1)`` when every cost is 0."""
    top = max(costs, default=0.0)
    return (0.0, top * 1.15) if top > 0 else (0.0, 1.0)


def point_labels(points: Sequence[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """One label per distinct point: models on the same (cost, pass rate) share one
    label (``"a, b"``) instead of printing over each other."""
    grouped: dict[tuple[float, float], list[str]] = {}
    for name, x, y in points:
        grouped.setdefault((round(x, 12), round(y, 12)), []).append(name)
    return [(", ".join(names), x, y) for (x, y), names in grouped.items()]


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.find("<svg") :]


def _plots(
    overall: list[ModelMetrics],
    tags: list[ModelMetrics],
    latencies: dict[str, list[float]],
    matrix: dict[str, dict[str, float | None]],
) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
    import matplotlib.pyplot as plt

    plots: dict[str, str] = {}
    fig, ax = plt.subplots(figsize=(6, 4))
    points = [(m.model, float(m.cost_per_case_usd or 0), m.pass_rate or 0.0) for m in overall]
    for _, cost, rate in points:
        ax.scatter([cost], [rate], s=60)
    for label, cost, rate in point_labels(points):
        ax.annotate(label, (cost, rate), textcoords="offset points", xytext=(5, 5))
    ax.set_xlim(*cost_axis([c for _, c, _ in points]))
    free = all(c == 0 for _, c, _ in points)
    ax.set_xlabel(
        "cost per case (USD; every answer cost 0)"
        if free
        else "cost per case (USD; unknown shown as 0)"
    )
    ax.set_ylabel("pass rate")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("Quality vs cost")
    plots["quality_cost"] = _svg(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    names = [n for n in latencies if latencies[n]]
    if names:
        ax.boxplot([latencies[n] for n in names], tick_labels=names)
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency per model")
    plots["latency"] = _svg(fig)
    tag_names = sorted({m.tag for m in tags if m.tag})
    if tag_names:
        fig, ax = plt.subplots(figsize=(7, 4))
        models = [m.model for m in overall]
        width = 0.8 / max(1, len(models))
        for k, model in enumerate(models):
            rates = {m.tag: m.pass_rate or 0.0 for m in tags if m.model == model}
            xs = [i + k * width for i in range(len(tag_names))]
            ax.bar(xs, [rates.get(t, 0.0) for t in tag_names], width, label=model)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(tag_names))], tag_names)
        ax.set_ylabel("pass rate")
        ax.legend()
        ax.set_title("Pass rate per tag")
        plots["tags"] = _svg(fig)
    if any(v is not None for row in matrix.values() for v in row.values()):
        fig, ax = plt.subplots(figsize=(5, 4))
        keys = list(matrix)
        grid: list[list[float]] = [
            [float("nan") if (v := matrix[r][c]) is None else v for c in keys] for r in keys
        ]
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn")
        ax.set_xticks(range(len(keys)), keys, rotation=30)
        ax.set_yticks(range(len(keys)), keys)
        fig.colorbar(image, ax=ax, label="row's win rate")
        ax.set_title("Pairwise win matrix")
        plots["pairwise"] = _svg(fig)
    return plots


def render_report(run: LoadedRun, metrics: list[ModelMetrics]) -> str:
    import jinja2

    overall = [m for m in metrics if m.tag is None]
    tags = [m for m in metrics if m.tag is not None]
    latencies: dict[str, list[float]] = {m: [] for m in run.info.models}
    for row in run.results:
        if row.latency_ms is not None and row.error_code is None:
            latencies.setdefault(row.model, []).append(row.latency_ms)
    matrices = {
        rater: win_matrix([p for p in run.pairs if p.rater == rater], run.info.models)
        for rater in sorted({p.rater for p in run.pairs})
    }
    empty: dict[str, dict[str, float | None]] = {m: {} for m in run.info.models}
    first = next(iter(matrices.values()), empty)
    template_text = (
        resources.files("laneway.evals").joinpath("templates/report.html").read_text("utf-8")
    )
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(template_text)
    return template.render(
        run=run.info,
        overall=metrics_to_json(overall),
        tags=metrics_to_json(tags),
        bias=position_bias(run.pairs),
        min_p95=MIN_P95_SAMPLES,
        plots=_plots(overall, tags, latencies, first),
        matrices=matrices,
        models=list(run.info.models),
    )


def write_report(run: LoadedRun, metrics: list[ModelMetrics], path: Path) -> Path:
    """Write the HTML report to ``path`` (whole or not at all; the folder must exist)."""
    return write_atomic(path, render_report(run, metrics).encode("utf-8"))
