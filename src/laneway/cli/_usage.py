"""``laneway usage``: requests, tokens, cost, error rate and latency from the ledger."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from laneway.cli._ledger_db import DatabaseOption

if TYPE_CHECKING:
    from rich.table import Table

    from laneway.ledger import GroupBy, UsageGroup

# The ledger (and SQLAlchemy, ~0.2 s to import), the settings and rich are imported inside
# the functions so that other ``laneway`` commands and ``--help`` do not pay for them.

__all__ = ["register", "usage_command", "usage_to_json"]


class _By(StrEnum):
    deployment = "deployment"
    tier = "tier"
    key = "key"
    day = "day"
    model = "model"


class _Source(StrEnum):
    api = "api"
    eval = "eval"
    shadow = "shadow"
    all = "all"


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("usage")(usage_command)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")


def usage_to_json(groups: list[UsageGroup]) -> list[dict[str, Any]]:
    """JSON-ready objects: money as decimal strings (``null`` when unknown), UTC ISO times."""
    from laneway.ledger import format_usd

    return [
        {
            "by": g.by,
            "key": g.key,
            "requests": g.requests,
            "errors": g.errors,
            "error_rate": g.error_rate,
            "attempts": g.attempts,
            "prompt_tokens": g.prompt_tokens,
            "completion_tokens": g.completion_tokens,
            "cached_tokens": g.cached_tokens,
            "cost_usd": format_usd(g.cost_usd),
            "cost_known_usd": format_usd(g.cost_known_usd),
            "cost_unknown_requests": g.cost_unknown_requests,
            "latency_p50_ms": g.latency_p50_ms,
            "latency_p95_ms": g.latency_p95_ms,
            "ttft_p50_ms": g.ttft_p50_ms,
            "first_at": _iso(g.first_at),
            "last_at": _iso(g.last_at),
        }
        for g in groups
    ]


def _usd(value: Decimal) -> str:
    """``$1,234.5678``; amounts under a cent to the nano-dollar (``$0.000123``)."""
    from laneway.ledger import format_usd

    if abs(value) >= Decimal("0.01") or value == 0:
        return f"${value:,.4f}".replace("$-", "-$")
    return f"${format_usd(value.quantize(Decimal('1e-9')))}".replace("$-", "-$")


def _money_cell(group: UsageGroup) -> str:
    if group.cost_usd is not None:
        return _usd(group.cost_usd)
    if group.cost_known_usd == 0:
        return "unknown"
    return f"≥ {_usd(group.cost_known_usd)}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _render_table(groups: list[UsageGroup], by: str, caption: str) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(
        title="Laneway usage",
        caption=caption,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
        show_edge=False,
    )
    table.add_column(by, overflow="fold", min_width=10)
    for header in ("requests", "err %", "tokens in/out"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("cost", justify="right", min_width=12)
    for header in ("p50/p95 ms", "ttft ms"):
        table.add_column(header, justify="right", no_wrap=True)
    for g in groups:
        table.add_row(
            g.key if g.key is not None else "-",
            f"{g.requests:,}",
            "-" if g.error_rate is None else f"{g.error_rate:.1%}",
            f"{g.prompt_tokens:,}/{g.completion_tokens:,}",
            _money_cell(g),
            f"{_ms(g.latency_p50_ms)}/{_ms(g.latency_p95_ms)}",
            _ms(g.ttft_p50_ms),
        )
    return table


def _since(value: str) -> datetime | None:
    from laneway.errors import LanewayError
    from laneway.ledger import parse_since

    if value.strip().lower() == "all":
        return None
    try:
        return parse_since(value)
    except LanewayError as exc:
        raise typer.BadParameter(exc.message, param_hint="'--since'") from None


def _load(url: str, start: datetime | None, by: str, source: str | None) -> list[UsageGroup]:
    from laneway.cli._ledger_db import read_ledger
    from laneway.ledger import usage_summary

    with read_ledger(url) as engine:
        return usage_summary(engine, since=start, by=cast("GroupBy", by), source=source)


def _tier_savings(groups: list[UsageGroup], config: Path | None) -> tuple[Any, str]:
    """(SavingsReport or None, why not) pricing every tier's tokens at the strongest tier.

    The settings are those ``laneway serve`` would use (the built-in defaults when there is
    no config file); a strongest tier whose deployments have no price but cost nothing to
    run (``hourly_cost_usd: 0``, as the embedded model) is priced at $0, as the gateway
    bills it."""
    from laneway.catalog import default_catalog
    from laneway.errors import LanewayError
    from laneway.router import DEFAULT_TIERS, baseline_price, savings_report
    from laneway.settings import load_settings

    try:
        settings = load_settings(config)
        try:
            baseline = baseline_price(settings, default_catalog(), None, DEFAULT_TIERS)
        except LanewayError:
            baseline = _free_baseline(settings, DEFAULT_TIERS)
            if baseline is None:
                raise
    except LanewayError as exc:
        return None, exc.message
    return savings_report(groups, baseline), ""


def _free_baseline(settings: Any, order: tuple[str, ...]) -> Any:
    """The strongest tier's first deployment that runs at no cost (no price, an hourly
    cost of 0), as a $0 price; ``None`` when it has none."""
    from laneway.router import BaselinePrice

    tiers = list(settings.tiers)
    ranked = [t for t in order if t in tiers]
    if not tiers:
        return None
    tier = ranked[-1] if ranked else tiers[-1]
    for name in settings.tiers[tier]:
        d = settings.deployment(name)
        if d is not None and d.price is None and d.hourly_cost_usd == 0:
            zero = Decimal(0)
            return BaselinePrice(tier, name, zero, zero, zero, "config: hourly_cost_usd 0")
    return None


def _savings_line(report: Any) -> str:
    base = report.baseline
    head = f"all {report.requests:,} request(s) on tier {base.tier} ({base.deployment})"
    if report.saved_usd is None:
        return f"cost saved against {head}: unknown (some tiers have no price)"
    share = "" if report.saved_fraction is None else f" ({report.saved_fraction:.1%})"
    return (
        f"cost {_usd(report.actual_usd)} against {_usd(report.all_baseline_usd)} "
        f"for {head}: saved {_usd(report.saved_usd)}{share}"
    )


def _with_savings(rows: list[dict[str, Any]], report: Any) -> list[dict[str, Any]]:
    from laneway.ledger import format_usd

    by_tier = {t.tier: t for t in report.tiers}
    for row in rows:
        spend = by_tier.get(row["key"])
        row["baseline_tier"] = report.baseline.tier
        row["baseline_cost_usd"] = None if spend is None else format_usd(spend.baseline_usd)
    return rows


def usage_command(
    since: Annotated[
        str, typer.Option(help="Window: 24h, 30d, 90m, 2w, an ISO date or time, or 'all'.")
    ] = "24h",
    by: Annotated[_By, typer.Option(help="Group rows by this.")] = _By.deployment,
    source: Annotated[
        _Source,
        typer.Option(
            help="Traffic to count: api (client requests), eval (eval and canary runs), "
            "shadow (copies sent by shadow rules, never charged to a key), or all."
        ),
    ] = _Source.api,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    database: DatabaseOption = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="laneway.yaml, for --by tier's saving against the strongest tier's price "
            "(default: the usual lookup).",
        ),
    ] = None,
) -> None:
    """Requests, tokens, cost, error rate and p50/p95 latency from the ledger.

    With --by tier it also prices every request's tokens at the strongest tier's
    deployment and prints the cost saved against sending everything there.
    """
    from laneway.cli._ledger_db import database_url

    start = _since(since)
    url = database_url(database, config)
    groups = _load(url, start, by.value, None if source is _Source.all else source.value)
    savings, why = _tier_savings(groups, config) if by is _By.tier and groups else (None, "")
    if as_json:
        rows = usage_to_json(groups)
        typer.echo(json.dumps(rows if savings is None else _with_savings(rows, savings), indent=2))
        return
    window = "all time" if start is None else f"since {_iso(start)}"
    caption = f"{window} · source {source.value} · times UTC"
    if any(g.cost_usd is None for g in groups):
        caption += "\nunknown / ≥: some requests ran on deployments without a price"
    if not groups:
        typer.echo(f"No requests in the ledger ({caption}).")
        return
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # piped or captured: do not squeeze into 80 columns
    console.print(_render_table(groups, by.value, caption))
    if by is _By.tier:
        console.print(_savings_line(savings) if savings is not None else f"cost saved: {why}")
