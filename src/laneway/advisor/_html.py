"""The HTML decision document: plots (matplotlib, Agg) and a jinja2 template, both imported
only when a report is asked for (both are base dependencies of Laneway)."""

from __future__ import annotations

import base64
import importlib.resources
import io
from decimal import Decimal
from typing import Any

from laneway.advisor._advise import Advice
from laneway.advisor._fleet import best_api, fleet_for
from laneway.advisor._format import human_tokens, usd
from laneway.advisor._json import advice_to_json, by_utilisation
from laneway.advisor._seedcheck import seed_checks
from laneway.advisor._sources import SOURCES, cite

__all__ = ["render_html"]

_COLOURS = {
    "all_closed": ("#b3261e", "-"),
    "hybrid_api": ("#1a73e8", "--"),
    "all_self_hosted": ("#137333", "-."),
    "recommended": ("#222222", ":"),
}
_LABELS = {
    "all_closed": "all closed API",
    "hybrid_api": "cheapest API per tier",
    "all_self_hosted": "one self-hosted fleet (API for tiers it cannot serve)",
    "recommended": "recommended mix",
}


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _tok_axis(x: float, _pos: object) -> str:
    return human_tokens(Decimal(str(x)))


def _usd_axis(y: float, _pos: object) -> str:
    return f"${human_tokens(Decimal(str(y)))}"


def _cost_plot(advice: Advice, plt: Any, ticker: Any) -> str:
    """Monthly cost of the whole workload vs tokens/day (every tier scaled alike)."""
    a = advice.assumptions
    today = advice.workload.tokens_per_day
    totals = {t.name: t.monthly_usd for t in advice.totals}
    hostable = [p for p in advice.plans if p.path("self_hosted").monthly_usd is not None]
    scales = [Decimal(10) ** (Decimal(k) / 4) for k in range(-16, 17)]
    fig, ax = plt.subplots(figsize=(11, 4.4))
    for name in ("all_closed", "hybrid_api", "all_self_hosted"):
        colour, style = _COLOURS[name]
        xs, ys = [], []
        for k in scales:
            if name == "all_self_hosted":
                fleet = fleet_for(hostable, a, k) if hostable else None
                rest = [best_api(p) for p in advice.plans if p not in hostable]
                api = [x.monthly_usd * k for x in rest if x and x.monthly_usd is not None]
                value = None
                if fleet and len(api) == len(rest):
                    value = fleet.total + sum(api, Decimal(0))
            else:
                base = totals.get(name)
                value = base * k if base is not None else None
            if value is not None and value > 0:
                xs.append(float(today * k))
                ys.append(float(value))
        if xs:
            ax.plot(xs, ys, color=colour, linestyle=style, lw=2, label=_LABELS[name])
    rec = totals.get("recommended")
    if rec:
        ax.plot([float(today)], [float(rec)], "o", color="#222", ms=8, label="recommended, today")
    ax.axvline(float(today), color="#555", lw=1)
    ax.annotate(
        f"today: {human_tokens(today)} tokens/day",
        (float(today), 0.97),
        xycoords=("data", "axes fraction"),
        ha="right",
        va="top",
        fontsize=9,
        rotation=90,
    )
    ax.set(xscale="log", yscale="log", xlabel="tokens/day (today's mix)", ylabel="USD/month")
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(_tok_axis))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(_usd_axis))
    ax.set_title("Monthly cost of the whole workload vs volume")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)


def _util_plot(advice: Advice, plt: Any, ticker: Any) -> str | None:
    """The fleet's monthly cost vs its average GPU utilisation, the API paths for the same
    tiers as a flat line, and the fleet's utilisation at today's volume marked."""
    rows = by_utilisation(advice)
    if not rows:
        return None
    curve = [r for r in rows if not r.get("current") and r["fleet_monthly_usd"] is not None]
    now = next(r for r in rows if r.get("current"))
    fig, ax = plt.subplots(figsize=(11, 3.8))
    ax.plot(
        [float(r["utilisation"]) * 100 for r in curve],
        [float(r["fleet_monthly_usd"]) for r in curve],
        color=_COLOURS["all_self_hosted"][0],
        lw=2,
        marker="o",
        label="self-hosted fleet at this average utilisation",
    )
    if now["api_monthly_usd"] is not None:
        ax.axhline(
            float(now["api_monthly_usd"]),
            color=_COLOURS["hybrid_api"][0],
            ls="--",
            lw=2,
            label="cheapest API paths for the same tiers",
        )
    util = float(now["utilisation"]) * 100
    ax.plot(
        [util],
        [float(now["fleet_monthly_usd"])],
        "D",
        color="#222",
        ms=8,
        label=f"today: {util:.0f}% utilisation",
    )
    ax.set(xlabel="average GPU utilisation (%)", ylabel="USD/month", xlim=(0, 102))
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(_usd_axis))
    ax.set_title(
        f"Self-hosting cost vs utilisation ({cite('003')}: below 50% the per-token cost climbs)"
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def _money_rows(data: dict[str, Any]) -> None:
    """Money and tokens as people read them: $1,234 and 288M, never None."""
    for t in data["recommendation"]["tiers"]:
        t["monthly"] = usd(None if t["monthly_usd"] is None else Decimal(t["monthly_usd"]))
        t["fine_tune"] = (
            usd(Decimal(t["fine_tune_monthly_usd"])) if t["fine_tune_monthly_usd"] else ""
        )
    for t in data["totals"]:
        t["monthly"] = usd(None if t["monthly_usd"] is None else Decimal(t["monthly_usd"]))
    for p in data["paths"]:
        p["monthly"] = usd(None if p["monthly_usd"] is None else Decimal(p["monthly_usd"]))
    for c in data["crossovers"]:
        c["tokens"] = (
            "never" if c["tokens_per_day"] is None else human_tokens(Decimal(c["tokens_per_day"]))
        )
    for c in data["crossover_claims"]:
        c["tokens_per_day_h"] = human_tokens(Decimal(c["tokens_per_day"]))
        ours = c["laneway_crossover_tokens_per_day"]
        c["laneway_crossover_tokens_per_day_h"] = (
            "no price to compare"
            if c["api_usd_per_mtok"] is None
            else ("none below 10T" if ours is None else human_tokens(Decimal(ours)))
        )
    for a in data["assumptions"]:
        try:
            a["value_h"] = f"{Decimal(a['value']):,f}".rstrip("0").rstrip(".")
        except ArithmeticError:
            a["value_h"] = a["value"]
    for r in data["sensitivity"]:
        for key in ("fleet_monthly_usd_low", "fleet_monthly_usd_high"):
            v = r[key]
            r[key + "_h"] = usd(None if v is None else Decimal(v))


def render_html(advice: Advice) -> str:
    import jinja2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    data = advice_to_json(advice)
    _money_rows(data)
    source = importlib.resources.files("laneway.advisor").joinpath("report.html")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(source.read_text("utf-8"))
    try:
        cost_png, util_png = _cost_plot(advice, plt, ticker), _util_plot(advice, plt, ticker)
    finally:
        plt.close("all")
    w = advice.workload
    fleet = advice.fleet
    hosted_api = [best_api(p) for p in advice.plans]
    seen = w.observed
    ledger = None
    if seen.get("observed_monthly_usd") is not None:
        est = seen.get("estimated_monthly_usd")
        ledger = {
            "observed": usd(Decimal(str(seen["observed_monthly_usd"])), 2),
            "estimated": usd(None if est is None else Decimal(str(est)), 2),
            "basis": seen.get("estimate_basis"),
        }
    return template.render(
        ledger=ledger,
        w=data["workload"],
        tokens_h=human_tokens(w.tokens_per_day),
        monthly_tokens_h=human_tokens(
            w.tokens_per_day * advice.assumptions.number("days_per_month")
        ),
        rec=data["recommendation"],
        total_h=usd(advice.choice.total),
        fleet=data["recommendation"]["fleet"],
        fleet_total_h=usd(fleet.total) if fleet else "",
        warnings=data["warnings"],
        totals=data["totals"],
        questions=data["questions"],
        gates=data["gates"],
        constraints=data["constraints"],
        paths=data["paths"],
        crossovers=data["crossovers"],
        claims=data["crossover_claims"],
        sensitivity=data["sensitivity"],
        fine_tune=data["fine_tune"],
        catalog_rows=data["catalog_rows"],
        assumptions=data["assumptions"],
        checks=seed_checks(),
        src=SOURCES,
        cost_png=cost_png,
        util_png=util_png,
        any_api=any(x is not None for x in hosted_api),
    )
