"""The HTML report: plots (matplotlib, Agg, imported only here) and a jinja2 template."""

from __future__ import annotations

import base64
import importlib.resources
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

from laneway.advisor._advise import Advice, advice_to_json
from laneway.advisor._tco import api_cost_per_day, self_hosted_at_utilisation, self_hosted_monthly
from laneway.errors import ConfigError

__all__ = ["render_html", "write_html"]


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _cost_plot(advice: Advice, plt: Any) -> str:
    plan = max(advice.plans, key=lambda p: p.load.tokens_per_day)
    a = advice.assumptions
    days = a.number("days_per_month")
    volumes = [Decimal(10) ** (k / Decimal(4)) for k in range(20, 49)]  # 1e5 .. 1e12
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for path in plan.paths:
        xs, ys = [], []
        for v in volumes:
            load = plan.load.scaled_to(v)
            if path.path == "self_hosted":
                cost = self_hosted_monthly(load, plan.size, a) if plan.size else None
                value = cost.total if cost else None
            else:
                per_day = api_cost_per_day(load, path.price) if path.price else None
                value = per_day * days if per_day is not None else None
            if value is not None:
                xs.append(float(v))
                ys.append(float(value))
        if xs:
            ax.plot(xs, ys, label=f"{path.path} ({path.model.id if path.model else '-'})")
        if path.crossover_tokens_per_day is not None:
            ax.axvline(float(path.crossover_tokens_per_day), ls="--", lw=0.8, color="grey")
            ax.annotate(
                f"crossover vs {path.path}",
                (float(path.crossover_tokens_per_day), 1),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="top",
                fontsize=8,
            )
    ax.axvline(float(plan.load.tokens_per_day), color="black", lw=1)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel=f"tokens/day (tier {plan.tier}, same mix)",
        ylabel="USD/month",
        title="Monthly cost vs volume",
    )
    ax.legend(fontsize=8)
    return _png(fig)


def _util_plot(advice: Advice, plt: Any) -> str:
    plan = max(advice.plans, key=lambda p: p.load.tokens_per_day)
    a = advice.assumptions
    utils = [Decimal(u) / 100 for u in range(5, 101, 5)]
    fig, ax = plt.subplots(figsize=(8, 4))
    if plan.size is not None:
        costs = [self_hosted_at_utilisation(plan.load, plan.size, a, u) for u in utils]
        pts = [(float(u), float(c.total)) for u, c in zip(utils, costs, strict=True) if c]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label="self-hosted")
    for path in plan.paths[:2]:
        if path.monthly_usd is not None:
            ax.axhline(float(path.monthly_usd), ls="--", label=f"{path.path}")
    ax.set(
        yscale="log",
        xlabel="average GPU utilisation",
        ylabel=f"USD/month at {plan.load.tokens_per_day:,.0f} tokens/day",
        title=f"Utilisation sensitivity (tier {plan.tier})",
    )
    ax.legend(fontsize=8)
    return _png(fig)


def render_html(advice: Advice) -> str:
    try:
        import jinja2
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError(
            f"the HTML report needs {exc.name}: pip install 'laneway[advisor]'"
        ) from None
    data = advice_to_json(advice)
    source = importlib.resources.files("laneway.advisor").joinpath("report.html")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(source.read_text("utf-8"))
    try:
        cost_png, util_png = _cost_plot(advice, plt), _util_plot(advice, plt)
    finally:
        plt.close("all")
    return template.render(
        w=data["workload"],
        rec=data["recommendation"],
        questions=data["questions"],
        gates=data["gates"],
        paths=data["paths"],
        fine_tune=data["fine_tune"],
        catalog_rows=data["catalog_rows"],
        assumptions=data["assumptions"],
        cost_png=cost_png,
        util_png=util_png,
    )


def write_html(advice: Advice, path: Path) -> None:
    path.write_text(render_html(advice), "utf-8")
