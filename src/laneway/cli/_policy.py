"""``laneway policy check`` and ``laneway audit``: governance reports for people."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from laneway.cli._ledger_db import DatabaseOption

if TYPE_CHECKING:
    from laneway.settings import Settings

# The catalog, governance, settings and rich are imported inside the commands so that
# other commands and ``--help`` start fast.

__all__ = ["audit_rows", "policy_report", "register", "unknown_license_entries"]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Config file (default: $LANEWAY_CONFIG or ./laneway.yaml)."
    ),
]


def _settings(config: Path | None) -> Settings:
    from laneway.errors import ConfigError
    from laneway.settings import load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None


def _console() -> Any:
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)  # piped: do not squeeze


def policy_report(settings: Settings, *, today: date | None = None) -> list[dict[str, Any]]:
    """One entry per deployment: the policies it passes or fails and why."""
    from laneway.catalog import default_catalog
    from laneway.errors import ConfigError
    from laneway.governance import deprecation_status, effective_policy, evaluate, pin_problem

    catalog = default_catalog()
    policy = effective_policy(settings.policies, None)
    today = today or datetime.now(UTC).date()
    rows = []
    for d in settings.deployments:
        info = catalog.get(d.model)
        verdict = evaluate(d.name, info, policy)
        status = deprecation_status(info, today, settings.policies.deprecation_warning_days)
        try:
            pin = pin_problem(d)
        except ConfigError as exc:
            pin = exc.message
        rows.append(
            {
                "deployment": d.name,
                "model": info.id if info else d.model,
                "in_catalog": info is not None,
                "license": info.license_id if info else None,
                "license_class": info.license_class if info else None,
                "origin": info.origin if info else None,
                "maker": info.maker if info else None,
                "open_weights": info.open_weights if info else None,
                "passed": verdict.passed and pin is None,
                "checks": [
                    {"rule": c.rule, "passed": c.passed, "detail": c.detail} for c in verdict.checks
                ],
                "deprecation": None
                if status is None
                else {"status": status[0], "date": str(status[1])},
                "pinned": d.sha256 is not None,
                "pin_problem": pin,
            }
        )
    return rows


def policy_check(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List every deployment with the license, origin and open-weights policies it passes
    or fails and why, plus deprecation dates and weight-file pinning."""
    settings = _settings(config)
    rows = policy_report(settings)
    unknown = unknown_license_entries(settings)
    if as_json:
        payload = {
            "policies": settings.policies.model_dump(mode="json"),
            "unknown_license_entries": unknown,
            "deployments": rows,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    from rich.table import Table

    console = _console()
    p = settings.policies
    console.print(
        f"allowed licenses: {', '.join(p.allowed_licenses) or 'any'}   denied origins: "
        f"{', '.join(p.denied_origins) or 'none'}   open weights required: "
        f"{'yes' if p.require_open_weights else 'no'}   sensitive data: {p.sensitive.action}"
    )
    table = Table("deployment", "model", "license (class)", "origin", "open", "verdict", "why")
    for row in rows:
        reasons = [c["detail"] for c in row["checks"] if not c["passed"]]
        if row["pin_problem"]:
            reasons.append(row["pin_problem"])
        if row["deprecation"]:
            reasons.append(f"{row['deprecation']['status']} {row['deprecation']['date']}")
        table.add_row(
            row["deployment"],
            row["model"],
            f"{row['license'] or '?'} ({row['license_class'] or '?'})",
            row["origin"] or "?",
            {True: "yes", False: "no", None: "?"}[row["open_weights"]],
            "[green]pass[/green]" if row["passed"] else "[red]FAIL[/red]",
            "; ".join(reasons) or "passes every policy",
        )
    console.print(table)
    if unknown:
        console.print(
            f"[yellow]warning:[/yellow] allowed_licenses entries match no license id in the "
            f"catalog and no licence class: {', '.join(unknown)}"
        )


def unknown_license_entries(settings: Settings) -> list[str]:
    """``policies.allowed_licenses`` entries that are neither a licence class nor a catalog
    license."""
    from laneway.catalog import default_catalog
    from laneway.governance import validate_license_entries

    known = {m.license_id for m in default_catalog().models}
    return validate_license_entries(settings.policies.allowed_licenses, known)


def audit_rows(url: str, *, since: datetime | None, request_id: str | None) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    from laneway.cli._ledger_db import read_ledger
    from laneway.ledger import LEDGER

    query = sa.select(LEDGER).where(LEDGER.c.attempt == 0).order_by(LEDGER.c.ts)
    if since is not None:
        query = query.where(LEDGER.c.ts >= since)
    if request_id is not None:
        query = query.where(LEDGER.c.request_id == request_id)
    with read_ledger(url) as engine, engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    out = []
    for row in rows:
        audit = row["audit"]
        if isinstance(audit, str):
            audit = json.loads(audit)
        ts = row["ts"]
        out.append(
            {
                "ts": ts.replace(tzinfo=UTC).isoformat() if isinstance(ts, datetime) else ts,
                "request_id": row["request_id"],
                "key": row["key_id"],
                "source": row["source"],
                "requested_model": row["requested_model"],
                "tier": row["tier"],
                "deployment": row["deployment"],
                "status": row["status"],
                "error": row["error_kind"],
                "fallbacks": row["fallbacks"],
                "route_reason": row["route_reason"],
                "route_score": row["route_score"],
                "audit": audit or {},
            }
        )
    return out


def audit(
    since: Annotated[
        str | None,
        typer.Option(help="Only requests since: 24h, 30d, 90m, an ISO date, or 'all'."),
    ] = "24h",
    request: Annotated[
        str | None,
        typer.Option(
            "--request",
            help="One request, by the id in its x-laneway-request-id header (any time).",
        ),
    ] = None,
    database: DatabaseOption = None,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every routing decision: policies that removed deployments, detectors that fired
    (kinds and counts, never the values), tier, score and fallbacks."""
    from laneway.cli._ledger_db import database_url
    from laneway.errors import LanewayError
    from laneway.ledger import parse_since

    try:
        span = "" if since is None or since.strip().lower() == "all" else since
        start = None if request or not span else parse_since(span)
    except LanewayError as exc:
        typer.echo(f"error: --since: {exc.message}", err=True)
        raise typer.Exit(2) from None
    url = database_url(database, config)
    rows = audit_rows(url, since=start, request_id=request)
    if request is not None and not rows:
        typer.echo(f"error: no request {request!r} in the ledger", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        window = "all time" if start is None else f"since {start.isoformat(timespec='seconds')}"
        typer.echo(f"No requests in the ledger ({window}).")
        return
    _console().print(_audit_table(rows))


def _audit_table(rows: list[dict[str, Any]]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in ("time (UTC)", "request", "model → deployment", "tier", "score", "status"):
        table.add_column(header, no_wrap=header != "model → deployment")
    for header in ("sensitive", "removed", "fallbacks"):
        table.add_column(header, overflow="fold")
    for row in rows:
        a = row["audit"]
        detectors = ", ".join(f"{k}×{v}" for k, v in (a.get("detectors") or {}).items())
        removed = ", ".join(f"{r['deployment']} ({r['rule']})" for r in a.get("removed", []))
        score = row["route_score"]
        status = "-" if row["status"] is None else str(row["status"])
        if row["error"]:
            status += f" {row['error']}"
        table.add_row(
            str(row["ts"])[:19].replace("T", " "),
            row["request_id"],
            f"{row['requested_model']} → {row['deployment'] or '-'}",
            row["tier"] or "-",
            "-" if score is None else f"{score:.2f}",
            status,
            f"{a.get('action', 'yes')}: {detectors}" if a.get("sensitive") else "no",
            removed or "-",
            str(row["fallbacks"] or 0),
        )
    return table


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Governance policy reports: `laneway policy check` for procurement.",
        no_args_is_help=True,
    )
    group.command("check")(policy_check)
    app.add_typer(group, name="policy")
    app.command("audit")(audit)
