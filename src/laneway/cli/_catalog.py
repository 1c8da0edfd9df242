"""``laneway catalog``: list and show the models of the packaged catalog."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import typer

from laneway.errors import ModelNotFound

if TYPE_CHECKING:  # imported when used: `laneway --help` starts faster
    from rich.console import Console
    from rich.table import Table

    from laneway.catalog import Catalog, ModelInfo, Price

__all__ = ["register"]

_HELP = (
    "Browse the model catalog: maker, origin, license and licence class, open weights, parameters, "
    "context, capabilities, and every price (per provider, dated, sourced) and benchmark."
)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _price_json(price: Price) -> dict[str, object]:
    return {
        "provider": price.provider,
        "input_per_mtok": _money(price.input_per_mtok),
        "output_per_mtok": _money(price.output_per_mtok),
        "cached_input_per_mtok": _money(price.cached_input_per_mtok),
        "date": price.date,
        "source": price.source,
        "note": price.note,
    }


def _cheapest(model: ModelInfo) -> Price | None:
    """The newest price of each provider, then the lowest input price (output breaks ties).

    A $0/$0 free tier (rate-limited, not a price to plan on) counts only when a model
    has no paid price; the advisor never uses it either.
    """
    latest = [model.price_for(p) for p in dict.fromkeys(p.provider for p in model.prices)]
    known = [p for p in latest if p is not None and p.input_per_mtok is not None]
    paid = [p for p in known if p.input_per_mtok or p.output_per_mtok]
    if not known:
        return None
    return min(
        paid or known, key=lambda p: (p.input_per_mtok, p.output_per_mtok or Decimal("Infinity"))
    )


def model_json(model: ModelInfo) -> dict[str, object]:
    """Everything about ``model`` as JSON-ready data: money as decimal strings, unknown null."""
    caps = model.capabilities
    cheapest = _cheapest(model)
    return {
        "id": model.id,
        "name": model.name,
        "aliases": list(model.aliases),
        "maker": model.maker,
        "origin": model.origin,
        "license_id": model.license_id,
        "license_class": model.license_class,
        "open_weights": model.open_weights,
        "params_total_b": model.params_total_b,
        "params_active_b": model.params_active_b,
        "modalities": list(model.modalities),
        "capabilities": {
            "tools": caps.tools,
            "json_schema": caps.json_schema,
            "images": caps.images,
            "context_window": caps.context_window,
            "max_output_tokens": caps.max_output_tokens,
        },
        "cheapest": None if cheapest is None else _price_json(cheapest),
        "prices": [_price_json(p) for p in model.prices],
        "benchmarks": [
            {
                "name": b.name,
                "value": b.value,
                "unit": b.unit,
                "source": b.source,
                "date": b.date,
                "note": b.note,
            }
            for b in model.benchmarks
        ],
        "release_date": model.release_date,
        "deprecation_date": None
        if model.deprecation_date is None
        else model.deprecation_date.isoformat(),
        "sources": list(model.sources),
        "notes": model.notes,
    }


def _num(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}"


def _params(model: ModelInfo) -> str:
    total, active = model.params_total_b, model.params_active_b
    if total is None and active is None:
        return "-"
    if active is None or active == total:
        return f"{_num(total)}B"
    return f"{_num(total)}B/{_num(active)}B act" if total is not None else f"?/{_num(active)}B act"


def _context(tokens: int | None) -> str:
    """Token counts the way vendors write them: 128K for 131,072, 256K for 256,000."""
    if tokens is None:
        return "-"
    unit, decimal, binary = (
        ("M", 1_000_000, 1_048_576) if tokens >= 1_000_000 else ("K", 1000, 1024)
    )
    if tokens % binary == 0 and tokens % decimal != 0:
        return f"{tokens // binary}{unit}"
    return f"{tokens / decimal:g}{unit}"


def _price_cell(price: Price | None) -> str:
    if price is None:
        return "-"
    if not price.input_per_mtok and not price.output_per_mtok:
        return f"free tier ({price.provider})"
    out = "?" if price.output_per_mtok is None else f"${price.output_per_mtok}"
    return f"${price.input_per_mtok}/{out} ({price.provider})"


def _list_table(models: tuple[ModelInfo, ...]) -> Table:
    from rich.table import Table

    table = Table(title=f"{len(models)} models", caption="prices: USD per 1M tokens in/out")
    for column in ("id", "maker", "origin", "license", "class", "open", "params", "context"):
        table.add_column(column, no_wrap=column == "id")
    table.add_column("cheapest in/out")
    for m in models:
        table.add_row(
            m.id,
            m.maker,
            m.origin or "-",
            m.license_id,
            m.license_class,
            "yes" if m.open_weights else "no",
            _params(m),
            _context(m.capabilities.context_window),
            _price_cell(_cheapest(m)),
        )
    return table


def _flag(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def _show_text(console: Console, m: ModelInfo) -> None:
    from rich.table import Table

    caps = m.capabilities
    console.print(f"[bold]{m.name}[/bold] ({m.id})", highlight=False)
    facts = {
        "aliases": ", ".join(m.aliases) or "-",
        "maker": m.maker,
        "origin": m.origin or "unknown",
        "license": f"{m.license_id} ({m.license_class})",
        "open weights": _flag(m.open_weights),
        "parameters": _params(m),
        "modalities": ", ".join(m.modalities),
        "context window": _context(caps.context_window),
        "max output": _context(caps.max_output_tokens),
        "tools / json schema / images": " / ".join(
            _flag(v) for v in (caps.tools, caps.json_schema, caps.images)
        ),
        "released": m.release_date or "unknown",
        "deprecated": "-" if m.deprecation_date is None else m.deprecation_date.isoformat(),
    }
    for key, value in facts.items():
        console.print(f"  {key:<30} {value}", highlight=False, markup=False)
    prices = Table(title="prices (USD per 1M tokens)", title_justify="left")
    for column in ("provider", "input", "output", "cached input", "date", "source", "note"):
        prices.add_column(column)
    for p in m.prices:
        cells = (p.input_per_mtok, p.output_per_mtok, p.cached_input_per_mtok)
        prices.add_row(p.provider, *(_money(c) or "-" for c in cells), p.date, p.source, p.note)
    console.print(prices if m.prices else "  prices: none recorded")
    marks = Table(title="benchmarks", title_justify="left")
    for column in ("benchmark", "value", "date", "source", "note"):
        marks.add_column(column)
    for b in m.benchmarks:
        marks.add_row(
            b.name,
            f"{b.value:g}{b.unit if b.unit == '%' else ' ' + b.unit}",
            b.date,
            b.source,
            b.note,
        )
    console.print(marks if m.benchmarks else "  benchmarks: none recorded")
    console.print("sources:", highlight=False)
    for source in m.sources:
        console.print(f"  - {source}", highlight=False, markup=False)
    if m.notes:
        console.print(f"notes: {m.notes}", highlight=False, markup=False)


def _catalog() -> Catalog:
    from laneway.catalog import default_catalog

    return default_catalog()


def list_models(
    open_weights: Annotated[
        bool | None,
        typer.Option(
            "--open-weights/--closed",
            help="Only models whose weights can be downloaded (--open-weights) or only "
            "those that cannot (--closed). Default: both.",
            show_default=False,
        ),
    ] = None,
    license: Annotated[
        str | None,
        typer.Option(
            "--license",
            help="A license id (Apache-2.0, MIT, llama-4-community, proprietary…) or a licence "
            "class (permissive, bespoke, community, closed); case-insensitive.",
        ),
    ] = None,
    origin: Annotated[
        str | None,
        typer.Option("--origin", help="The maker's country, ISO 3166-1 alpha-2 (US, CN, FR…)."),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print a JSON array (money as decimal strings, unknown null)."),
    ] = False,
) -> None:
    """List the catalog's models, with the cheapest known input/output price."""
    models = _catalog().filter(open_weights=open_weights, license=license, origin=origin)
    if as_json:
        typer.echo(json.dumps([model_json(m) for m in models], indent=2, ensure_ascii=False))
        return
    from rich.console import Console

    Console(width=200).print(_list_table(models))


def show_model(
    model: Annotated[str, typer.Argument(help="A model id or alias (case-insensitive).")],
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print JSON (money as decimal strings, unknown null)."),
    ] = False,
) -> None:
    """Show everything about one model: facts, every dated price with its source, benchmarks."""
    try:
        info = _catalog().require(model)
    except ModelNotFound as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(model_json(info), indent=2, ensure_ascii=False))
        return
    from rich.console import Console

    _show_text(Console(width=200), info)


def register(app: typer.Typer) -> None:
    """Add the ``catalog`` command group to ``app``."""
    group = typer.Typer(name="catalog", help=_HELP, no_args_is_help=True)
    group.command("list")(list_models)
    group.command("show")(show_model)
    app.add_typer(group, name="catalog")
