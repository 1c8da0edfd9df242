"""``laneway advise`` (workload file, ledger or seed check) and ``laneway tco``."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from decimal import Decimal, DecimalException
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from laneway.cli._ledger_db import DatabaseOption, database_url
from laneway.errors import LanewayError

if TYPE_CHECKING:
    from laneway.advisor import SeedCheck

# The advisor (and the catalog, SQLAlchemy, matplotlib) load inside the commands only.

__all__ = ["advise_command", "register", "tco_command"]


#: The names ``--set`` takes, grouped as ``default_assumptions`` lists them: spelled out
#: because the advisor loads inside the commands only (a test keeps them equal).
_ASSUMPTIONS_EPILOG = """\b
Assumptions --set can override (--json prints each value and its source):
  GPU        gpu, gpu_hourly_usd, gpu_memory_gb, throughput_tps_per_gpu
  serving    days_per_month, precision_bytes, kv_cache_bytes_per_token,
             gpu_memory_usable_fraction, max_gpu_utilisation, input_token_weight,
             time_in_system_s
  ops        ml_engineer_usd_per_year, ops_fte_share, update_cycle_usd,
             update_cycles_per_year, infra_overhead_multiplier, work_hours_per_year
  fine-tune  lora_gpu_hours, lora_data_prep_hours, lora_reeval_hours
  decision   closed_api_below_tokens_per_month, vpc_latency_saving_ms_low,
             vpc_latency_saving_ms_high"""
_SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="NAME=VALUE",
        help="Override an assumption (repeatable), e.g. gpu_hourly_usd=2.1; the names are "
        "listed below.",
    ),
]


def register(app: typer.Typer) -> None:
    """Add ``advise`` and ``tco`` to ``app``."""
    app.command("advise", epilog=_ASSUMPTIONS_EPILOG)(advise_command)
    app.command("tco", epilog=_ASSUMPTIONS_EPILOG)(tco_command)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _error(exc: LanewayError) -> typer.Exit:
    """The work could not be done (a workload file, a model or GPU name, the ledger): exit 1.
    A wrong command line (an option's value that cannot be one) exits 2 where it is parsed."""
    return _fail(exc.message)


_TOO_LARGE = (
    "the inputs give numbers too large to compute: check the workload's volumes and the assumptions"
)


def _check_out(out: Path) -> None:
    """``--out`` must name a file in a directory that exists (none is created)."""
    if out.is_dir():
        raise _fail(f"--out: {out} is a directory; give a file name such as {out / 'r.html'}")
    parent = out.parent
    if not parent.is_dir():
        raise _fail(f"--out: directory {parent} does not exist (it is not created for you)")


def _write_report(advice: Any, out: Path) -> None:
    from laneway.advisor import render_html

    try:
        out.write_text(render_html(advice), "utf-8")
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror or exc}") from None


def _print_checks(checks: tuple[SeedCheck, ...], as_json: bool) -> None:
    if as_json:
        rows = [
            {
                "id": c.id,
                "source": c.citation,
                "url": c.url,
                "claim": c.claim,
                "inputs": dict(c.inputs),
                "figure": c.figure,
                "verdict": c.verdict,
                "why": c.why,
            }
            for c in checks
        ]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title="Seed check: the source articles' worked figures from their own inputs",
        box=box.SIMPLE_HEAD,
        show_lines=True,
    )
    for header in ("claim (source)", "inputs", "Laneway's figure", "verdict", "why"):
        table.add_column(header, overflow="fold")
    for c in checks:
        inputs = "\n".join(f"{k}: {v}" for k, v in c.inputs)
        table.add_row(f"{c.claim}\n({c.citation})", inputs, c.figure, c.verdict, c.why)
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)
    cited = {c.citation: c.url for c in checks}
    console.print("Sources:\n" + "\n".join(f"  {k}: {v}" for k, v in cited.items()))


def _money(value: str | None) -> str:
    if value is None:
        return "unknown"
    amount = Decimal(value)
    return f"${amount:,.2f}" if abs(amount) < 100 else f"${amount:,.0f}"


def _tokens(value: str | None) -> str:
    from laneway.advisor import human_tokens

    return "-" if value is None else human_tokens(Decimal(value))


def _print_advice(data: dict[str, Any]) -> None:
    rec = data["recommendation"]
    w = data["workload"]
    out = [
        f"Recommendation: {rec['summary']}",
        f"Workload: {w['name']}, {_tokens(w['tokens_per_day'])} tokens/day, data "
        f"{w['data_sensitivity']}, MLOps {w['ops_capacity']}",
        "",
        "Per tier (constraints → evidence → cost → gates):",
    ]
    seen = w["observed"]
    if seen.get("observed_monthly_usd") is not None:
        out.insert(
            2,
            f"Ledger: observed {_money(seen['observed_monthly_usd'])}/month vs the model's "
            f"estimate {_money(seen.get('estimated_monthly_usd'))}/month for the same traffic "
            f"as routed today ({seen.get('estimate_basis')}); sensitive share "
            f"{Decimal(str(seen.get('sensitive_share', '0'))):.0%}",
        )
    for t in rec["tiers"]:
        where = t["provider"] or "-"
        ft = (
            f" incl. fine-tune {_money(t['fine_tune_monthly_usd'])}"
            if t["fine_tune_monthly_usd"]
            else ""
        )
        path = t["path"] or "no admissible path"
        out.append(
            f"  {t['tier']}: {path} · {t['model'] or '-'} on {where} · "
            f"{_money(t['monthly_usd'])}/month{ft} · evidence: {t['evidence'] or '-'} · "
            f"{t['reason']}"
        )
    if rec["fleet"]:
        f = rec["fleet"]
        out.append(
            f"  one fleet: {f['description']}; {_money(f['monthly_usd']['total'])}/month "
            f"(ops staff and update cycles once)"
        )
    out += ["", "Gates:"]
    for g in data["gates"]:
        out.append(f"  [{'pass' if g['passed'] else 'FAIL'}] {g['name']}: {g['reason']}")
    out += ["", "Monthly cost, whole workload:"]
    for row in data["totals"]:
        out.append(f"  {row['name']}: {_money(row['monthly_usd'])} ({row['detail']})")
    out += ["", "Crossovers:"]
    out += [f"  {c['a']} vs {c['b']}: {c['message']}" for c in data["crossovers"]]
    out += [
        "",
        "The source articles' crossover claims (tokens/day) against Laneway's reference fleet:",
    ]
    for c in data["crossover_claims"]:
        ours = c["laneway_crossover_tokens_per_day"]
        laneway = (
            "no price to compare"
            if c["api_usd_per_mtok"] is None
            else (_tokens(ours) if ours else "no crossover below 10T")
        )
        out.append(
            f"  {c['source']}: {_tokens(c['tokens_per_day'])} vs {c['compared_against']}: "
            f"Laneway {laneway}; the claim needs an API at "
            f"${c['api_usd_per_mtok_for_claim']}/M ({c['why_it_differs']})"
        )
    for f in data["fine_tune"]:
        out.append(f"  fine-tune {f['task']} ({f['model']}): {f['winner']} ({f['reason']})")
    if data["warnings"]:
        out += ["", "Warnings:"] + [f"  - {x}" for x in data["warnings"]]
    out.append("\nAssumptions: --json lists every one with its source.")
    typer.echo("\n".join(out))


def _overrides(values: list[str]) -> dict[str, str]:
    result = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: use NAME=VALUE", param_hint="'--set'")
        result[name.strip()] = value.strip()
    return result


def _since(since: str) -> Any:
    """``--since`` as a start time (``None`` for 'all'); a value that is not one exits 2."""
    from laneway.ledger import parse_since

    try:
        return None if since.strip().lower() == "all" else parse_since(since)
    except LanewayError as exc:
        raise _fail(f"--since: {exc.message}", 2) from None


def _source_options(
    workload: Path | None, from_ledger: bool, ops: str | None, since: str | None
) -> tuple[str, Any]:
    """Where the workload comes from: a file, or the ledger with ``--ops`` (default none)
    and ``--since`` (default 30d), which a file gives itself (they would be ignored)."""
    if (workload is None) == (not from_ledger):
        raise _fail("give a workload file or --from-ledger (one of them)", 2)
    if workload is not None and (ops is not None or since is not None):
        raise _fail(
            "--ops and --since go with --from-ledger; a workload file gives its own "
            "ops_capacity and volumes",
            2,
        )
    ops = ops or "none"
    if ops not in ("none", "partial", "full"):
        raise _fail(f"--ops: {ops!r} is not one of none, partial, full", 2)
    return ops, _since(since or "30d") if from_ledger else None


def _checked_overrides(gpu: str, values: list[str]) -> dict[str, str]:
    """``--set`` checked against the assumptions before any work: an unknown GPU is a name
    that does not exist (exit 1), a value that cannot be its assumption's exits 2."""
    from laneway.advisor import default_assumptions

    overrides = _overrides(values)
    try:
        base = default_assumptions(gpu)
    except LanewayError as exc:
        raise _error(exc) from None
    try:
        base.override(overrides, source="command line", where="--set ")
    except LanewayError as exc:
        raise _fail(exc.message, 2) from None
    return overrides


def _ledger_workload(database: str, start: Any, ops: str) -> Any:
    import sqlalchemy as sa

    from laneway.advisor import workload_from_ledger
    from laneway.ledger import open_database

    try:
        engine = open_database(database, create=False, migrate=False)
    except LanewayError as exc:
        raise _fail(f"{exc.message} (pass --database)") from None
    try:
        return workload_from_ledger(engine, since=start, ops_capacity=ops)  # type: ignore[arg-type]
    except sa.exc.SQLAlchemyError as exc:
        raise _fail(f"cannot read the ledger: {type(exc).__name__}") from None
    finally:
        engine.dispose()


def _advice_json(
    load: Callable[[], Any], gpu: str, overrides: dict[str, str], out: Path | None
) -> dict[str, Any]:
    """The advice for the workload ``load`` returns, as its JSON document; the HTML report
    too when ``out`` is given. Errors are one line."""
    from laneway.advisor import advice_to_json, advise, default_assumptions

    try:
        workload = load()
        advice = advise(workload, assumptions=default_assumptions(gpu), overrides=overrides)
        data: dict[str, Any] = advice_to_json(advice)
        if out is not None:
            _write_report(advice, out)
    except LanewayError as exc:
        raise _error(exc) from None
    except DecimalException:
        raise _fail(_TOO_LARGE) from None
    return data


def advise_command(
    workload: Annotated[
        Path | None, typer.Argument(help="Workload profile YAML (see examples/workload.yaml).")
    ] = None,
    from_ledger: Annotated[
        bool, typer.Option("--from-ledger", help="Build the profile from the ledger's API traffic.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(help="With --from-ledger: window 30d (default), 24h, an ISO date, or 'all'."),
    ] = None,
    ops: Annotated[
        str | None,
        typer.Option(help="With --from-ledger: MLOps capacity none (default), partial or full."),
    ] = None,
    database: DatabaseOption = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="laneway.yaml, for its database.url (default: the usual lookup)."
        ),
    ] = None,
    seed_check: Annotated[
        bool,
        typer.Option(
            "--seed-check",
            help="Recompute the worked figures of the five source articles and say which hold.",
        ),
    ] = False,
    set_: _SetOption = None,
    gpu: Annotated[str, typer.Option(help="GPU type: h100, h200, a100, b200, l40s.")] = "h100",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the documented JSON schema.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write an HTML report here.")
    ] = None,
) -> None:
    """Advise on closed API vs serverless open-weight vs self-hosted for a workload: costs per
    path and tier, crossover volume, the six questions and four gates, a recommendation.

    Exit 0 advice given; 1 a workload, ledger, model or GPU that cannot be used; 2 a wrong
    command line.

    Examples:

    \b
      laneway advise examples/workload.yaml --out advice.html
      laneway advise --from-ledger --since 30d --ops partial --json
      laneway advise --seed-check"""
    from laneway.advisor import load_workload, seed_checks

    if seed_check:
        if workload is not None or from_ledger:
            raise _fail("--seed-check takes no workload file and no --from-ledger", 2)
        _print_checks(seed_checks(), as_json)
        return
    ops, start = _source_options(workload, from_ledger, ops, since)
    overrides = _checked_overrides(gpu, set_ or [])
    if out is not None:
        _check_out(out)
    # The ledger the gateway writes: --database, else $LANEWAY_DATABASE_URL, else the
    # config's database.url (it was always ./laneway.db, whatever the config said).
    if workload is None:  # --from-ledger
        url = database_url(database, config)
        data = _advice_json(lambda: _ledger_workload(url, start, ops), gpu, overrides, out)
    else:
        path = workload
        data = _advice_json(lambda: load_workload(path), gpu, overrides, out)
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _print_advice(data)
        if out is not None:
            typer.echo(f"HTML report: {out}")


def tco_command(
    tokens_per_day: Annotated[
        float, typer.Option(help="Tokens per day, input and output, e.g. 2e9.", min=0)
    ],
    model: Annotated[
        str, typer.Option(help="Catalog model id (open weights, with total and active parameters).")
    ],
    gpu: Annotated[str, typer.Option(help="GPU type: h100, h200, a100, b200, l40s.")] = "h100",
    gpu_hourly: Annotated[
        float | None,
        typer.Option(
            help="USD per GPU-hour (default: the GPU's price in gpus.yaml; --json shows it)."
        ),
    ] = None,
    throughput: Annotated[
        float | None,
        typer.Option(help="Measured output tokens/s per GPU (default: a table by active params)."),
    ] = None,
    output_share: Annotated[
        float, typer.Option(help="Share of tokens that are output.", min=0, max=1)
    ] = 0.25,
    peak_to_mean: Annotated[
        float, typer.Option(help="Busiest hour over the mean hour.", min=1)
    ] = 1.0,
    set_: _SetOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A quick self-hosting sum for one open-weight model at a volume: GPUs, utilisation,
    monthly cost, and per million output tokens the GPU rent alone and the total.

    Exit 0 the sum printed; 1 a model or GPU that cannot be used; 2 a wrong command line.

    Example (Digital Applied's 8xH100 node at $18/hour):

    \b
      laneway tco --tokens-per-day 2e9 --model nemotron-3-super-120b --gpu-hourly 2.25"""
    from laneway.advisor import Load, default_assumptions, model_size, self_hosted_monthly
    from laneway.catalog import default_catalog

    total = _tco_number("--tokens-per-day", tokens_per_day, _max_tokens_per_day())
    share = _tco_number("--output-share", output_share, Decimal(1))
    peak = _tco_number("--peak-to-mean", peak_to_mean, Decimal(24))
    try:
        info = default_catalog().require(model)
        if not info.open_weights:
            raise _fail(
                f"{info.id} has closed weights: it cannot be self-hosted, only used through "
                "its vendor's API"
            )
        size = model_size(info)
        if isinstance(size, str):
            raise _fail(f"cannot size GPUs: {size}")
        a = default_assumptions(gpu).override(
            _checked_overrides(gpu, set_ or []), source="command line", where="--set "
        )
        a = _option_overrides(a, gpu_hourly, throughput)
        out_t = total * share
        load = Load(
            total / 1000, total - out_t, out_t, Decimal(0), peak, a.number("time_in_system_s")
        )
        cost = self_hosted_monthly(load, size, a)
        if cost is None or cost.sizing is None:
            raise _fail(f"no price for {gpu}: pass --gpu-hourly")
        data = _tco_json(info.id, cost, a, load)
    except LanewayError as exc:
        raise _error(exc) from None
    except DecimalException:
        raise _fail(_TOO_LARGE) from None
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        typer.echo(_tco_text(data))


def _option_overrides(a: Any, gpu_hourly: float | None, throughput: float | None) -> Any:
    """``--gpu-hourly`` and ``--throughput`` over the assumptions; a value that cannot be
    one (not finite, out of range) is a wrong command line: exit 2."""
    for option, name, value in (
        ("--gpu-hourly", "gpu_hourly_usd", gpu_hourly),
        ("--throughput", "throughput_tps_per_gpu", throughput),
    ):
        if value is not None:
            try:
                a = a.override({name: value}, source="command line", where=f"{option}: ")
            except LanewayError as exc:
                raise _fail(exc.message, 2) from None
    return a


def _max_tokens_per_day() -> Decimal:
    from laneway.advisor import MAX_TOKENS_PER_DAY

    return MAX_TOKENS_PER_DAY


def _tco_number(option: str, value: float, high: Decimal) -> Decimal:
    """A finite option value at most ``high`` (typer's min/max let inf through)."""
    if not math.isfinite(value):
        raise _fail(f"{option}: must be a finite number, got {value}", 2)
    number = Decimal(str(value))
    if number > high:
        raise _fail(f"{option}: must be at most {high:,}, got {value:g}", 2)
    return number


def _per_million(usd: Decimal, tokens_per_day: Decimal, days: Decimal) -> str | None:
    """Monthly ``usd`` per million of ``tokens_per_day`` (``None`` at no tokens)."""
    return f"{usd / (tokens_per_day * days) * 1_000_000:.4f}" if tokens_per_day else None


def _tco_json(model_id: str, cost: Any, a: Any, load: Any) -> dict[str, Any]:
    """The `laneway tco --json` document (money as decimal strings). Per million output
    tokens as well as per million tokens: Digital Applied prices a node's rent per million
    output tokens ('$0.50 to $1.00 per million output tokens'), rent alone."""
    s = cost.sizing
    days = a.number("days_per_month")
    total, out = load.tokens_per_day, load.output_tokens_per_day
    data: dict[str, Any] = {
        "model": model_id,
        "gpu": a.text("gpu"),
        "gpus": s.gpus,
        "sizing": {"replicas": s.replicas, "gpus_per_replica": s.gpus_per_replica},
        "utilisation": f"{s.utilisation:.4f}",
        "monthly_usd": {
            "gpu_rent": f"{cost.gpu_rent:.2f}",
            "infra_overhead": f"{cost.infra_overhead:.2f}",
            "ops_staff": f"{cost.ops_staff:.2f}",
            "model_updates": f"{cost.model_updates:.2f}",
            "total": f"{cost.total:.2f}",
        },
        "multiple_of_gpu_rent": f"{cost.multiple_of_gpu_rent:.2f}",
        "usd_per_million_tokens": _per_million(cost.total, total, days),
        "usd_per_million_output_tokens": _per_million(cost.total, out, days),
        "gpu_rent_usd_per_million_output_tokens": _per_million(cost.gpu_rent, out, days),
        "assumptions": [{"name": x.name, "value": str(x.value), "source": x.source} for x in a],
    }
    return data


def _per_m_text(value: str | None) -> str:
    amount = Decimal(value) if value is not None else None
    if amount is None:
        return "n/a"
    return f"${amount:,.2f}" if amount >= Decimal("0.1") else f"${amount:.4f}"


def _tco_text(data: dict[str, Any]) -> str:
    """``laneway tco`` without ``--json``: the sum, then the cost per million tokens."""
    usd = {k: _money(v) for k, v in data["monthly_usd"].items()}
    rent_out = _per_m_text(data["gpu_rent_usd_per_million_output_tokens"])
    total_out = _per_m_text(data["usd_per_million_output_tokens"])
    total_all = _per_m_text(data["usd_per_million_tokens"])
    if data["usd_per_million_tokens"] is None:
        per = "per million tokens: n/a at 0 tokens/day"
    elif data["usd_per_million_output_tokens"] is None:
        per = f"per million tokens: total {total_all} (no output tokens: --output-share 0)"
    else:
        per = (
            f"per million output tokens: GPU rent {rent_out}, total {total_out}; "
            f"per million tokens (input and output): total {total_all}"
        )
    s = data["sizing"]
    replicas = "1 replica" if s["replicas"] == 1 else f"{s['replicas']} replicas"
    return (
        f"{data['model']} on {data['gpus']} × {data['gpu']} ({replicas} of "
        f"{s['gpus_per_replica']}, utilisation {Decimal(data['utilisation']):.0%}): "
        f"{usd['total']}/month\n"
        f"  = GPU rent {usd['gpu_rent']} + overhead {usd['infra_overhead']} + ops staff "
        f"{usd['ops_staff']} + model updates {usd['model_updates']} "
        f"({data['multiple_of_gpu_rent']}x GPU rent)\n  {per}"
    )
