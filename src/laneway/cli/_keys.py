"""``laneway keys …``, ``laneway kill …`` and ``laneway unkill …``: virtual keys and kill switches.

The database is ``--database URL``, else ``$LANEWAY_DATABASE_URL``, else the config file's
``database.url`` (``--config`` or the usual search), else ``sqlite:///laneway.db``. Exit
codes (README, "Exit codes"): 0 done, 1 the operation failed (unknown key, a name the
config does not have, no master key, database error), 2 a malformed command line.

Keys are enforced only by a gateway started with ``LANEWAY_MASTER_KEY`` set; without it
every request is accepted, so ``keys create`` refuses unless ``--force``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from laneway.errors import ConfigError, InvalidRequest, KeyNameTaken, LanewayError

if TYPE_CHECKING:
    from laneway.governance import GovernanceStore, KeyRecord

# SQLAlchemy and the store are imported inside the functions so that other commands do not
# pay for them.

__all__ = ["register"]

_DEFAULT_URL = "sqlite:///laneway.db"

_Database = Annotated[
    str | None,
    typer.Option(
        envvar="LANEWAY_DATABASE_URL",
        show_envvar=True,
        help="Database URL (default: the config's database.url, else sqlite:///laneway.db).",
    ),
]
_Config = Annotated[
    str | None,
    typer.Option(help="Settings file to read database.url from (default: the usual search)."),
]


class _Period(StrEnum):
    day = "day"
    month = "month"


class _Kind(StrEnum):
    deployment = "deployment"
    model = "model"
    provider = "provider"
    tier = "tier"


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _url(database: str | None, config: str | None) -> str:
    from laneway.cli._ledger_db import database_url

    return database_url(database, config)


@contextmanager
def _store(database: str | None, config: str | None, *, create: bool) -> Iterator[GovernanceStore]:
    import sqlalchemy as sa

    from laneway.governance import GovernanceStore
    from laneway.ledger import open_database

    url = _url(database, config)
    try:
        shown = sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        raise _fail(f"not a database URL: {url!r}", 2) from None
    try:
        engine = open_database(url, create=create)
    except ConfigError as exc:
        raise _fail(f"{exc.message} (start `laneway serve` once, or pass --database)") from None
    except sa.exc.SQLAlchemyError as exc:
        raise _fail(f"cannot open the database at {shown}: {type(exc).__name__}") from None
    try:
        yield GovernanceStore(engine)
    except InvalidRequest as exc:
        raise _fail(exc.message) from None
    except LanewayError as exc:
        raise _fail(exc.message) from None
    except sa.exc.SQLAlchemyError as exc:
        raise _fail(f"database error at {shown}: {getattr(exc, 'orig', exc)}") from None
    finally:
        engine.dispose()


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat(timespec="seconds").replace("+00:00", "Z")


def _money(value: Decimal | None) -> str | None:
    from laneway.ledger import format_usd

    return format_usd(value)


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [part.strip() for part in value.split(",")]


def _key_json(store: GovernanceStore, key: KeyRecord) -> dict[str, Any]:
    status = store.spend(key)
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "active": key.active,
        "created_at": _iso(key.created_at),
        "revoked_at": _iso(key.revoked_at),
        "budget_usd": _money(key.budget_usd),
        "period": key.period,
        "spent_usd": _money(status.spent_usd) if key.budget_usd is not None else None,
        "reserved_usd": _money(status.reserved_usd) if key.budget_usd is not None else None,
        "resets_at": _iso(status.resets_at),
        "models": None if key.models is None else list(key.models),
        "tiers": None if key.tiers is None else list(key.tiers),
        "rpm": key.rpm,
        "tpm": key.tpm,
        "allow_unknown_price": key.allow_unknown_price,
        "log_prompts": key.log_prompts,
        "policy": key.policy.model_dump(mode="json", exclude_defaults=True),
    }


def _show_secret(plaintext: str, key: KeyRecord, verb: str) -> None:
    typer.echo(f"{verb} key {key.name!r} (id {key.id}):", err=True)
    typer.echo(plaintext)
    typer.echo("Store this key now: it is kept only as a hash and cannot be shown again.", err=True)


class _Action(StrEnum):
    self_hosted_only = "self_hosted_only"
    block = "block"
    redact = "redact"
    allow = "allow"


def _key_policy(
    action: _Action | None,
    deployments: str | None,
    licenses: str | None,
    origins: str | None,
    open_weights: bool | None,
) -> Any:
    """The key's policy overrides (``KeyPolicy``), validated like the settings file."""
    from pydantic import ValidationError

    from laneway.settings import KeyPolicy

    try:
        return KeyPolicy(
            sensitive_action=None if action is None else action.value,
            sensitive_deployments=tuple(_split(deployments) or ()),
            allowed_licenses=None if licenses is None else tuple(_split(licenses) or ()),
            denied_origins=None if origins is None else tuple(_split(origins) or ()),
            require_open_weights=open_weights,
        )
    except ValidationError as exc:
        raise _fail(f"invalid key policy: {exc.errors()[0]['msg']}", 2) from None


# Per-key policy overrides (see laneway.settings.KeyPolicy).
_SensitiveActionOpt = Annotated[
    _Action | None, typer.Option(help="Override policies.sensitive.action for this key.")
]
_SensitiveDeploymentsOpt = Annotated[
    str | None,
    typer.Option(
        help="Comma-separated external deployments this key may send sensitive data to "
        "(e.g. a vendor under a BAA)."
    ),
]
_LicensesOpt = Annotated[
    str | None,
    typer.Option(help="Comma-separated license ids or licence classes (overrides policy)."),
]
_OriginsOpt = Annotated[
    str | None, typer.Option(help="Comma-separated ISO-3166 codes (overrides policy).")
]
_OpenWeightsOpt = Annotated[
    bool | None,
    typer.Option(
        "--require-open-weights/--allow-closed-weights",
        help="Override policies.require_open_weights for this key.",
    ),
]


def create_command(
    name: Annotated[
        str, typer.Option("--name", help="A unique name for the key (a team, an app).")
    ],
    budget_usd: Annotated[
        str | None, typer.Option("--budget-usd", help="Spend limit in USD per period, e.g. 25.")
    ] = None,
    period: Annotated[
        _Period | None,
        typer.Option(help="Budget period, reset at UTC midnight or the 1st (default month)."),
    ] = None,
    models: Annotated[
        str | None, typer.Option(help="Comma-separated models the key may use (default any).")
    ] = None,
    tiers: Annotated[
        str | None, typer.Option(help="Comma-separated tiers the key may use (default any).")
    ] = None,
    rpm: Annotated[int | None, typer.Option(min=1, help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option(min=1, help="Tokens per minute.")] = None,
    allow_unknown_price: Annotated[
        bool,
        typer.Option(
            "--allow-unknown-price",
            help="Let a key with a budget use deployments that have no known price.",
        ),
    ] = False,
    log_prompts: Annotated[
        bool, typer.Option("--log-prompts", help="Store this key's prompt text in the ledger.")
    ] = False,
    sensitive_action: _SensitiveActionOpt = None,
    sensitive_deployments: _SensitiveDeploymentsOpt = None,
    allowed_licenses: _LicensesOpt = None,
    denied_origins: _OriginsOpt = None,
    require_open_weights: _OpenWeightsOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the key and record as JSON.")
    ] = False,
    database: _Database = None,
    config: _Config = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Create the key although LANEWAY_MASTER_KEY is not set here (e.g. the "
            "gateway's environment has it and this shell does not).",
        ),
    ] = False,
) -> None:
    """Create a virtual key and print it once (only its hash is stored).

    Keys are enforced only when the gateway runs with LANEWAY_MASTER_KEY set; without it
    this command refuses unless --force.
    """
    policy = _key_policy(
        sensitive_action,
        sensitive_deployments,
        allowed_licenses,
        denied_origins,
        require_open_weights,
    )
    options: dict[str, Any] = {
        "budget_usd": _parse_budget(budget_usd),
        "period": None if period is None else period.value,
        "models": _split(models),
        "tiers": _split(tiers),
        "rpm": rpm,
        "tpm": tpm,
        "allow_unknown_price": allow_unknown_price,
        "log_prompts": log_prompts,
        "policy": policy,
    }
    # After the options are parsed: a wrong command line exits 2 whatever the environment.
    _check_master_key(force)
    _create_key(name, options, database, config, as_json=as_json)


def _check_master_key(force: bool) -> None:
    """Refuse (exit 1) to create a key that the gateway would not enforce, unless
    ``force``, which warns."""
    if not os.environ.get("LANEWAY_MASTER_KEY"):
        if not force:
            raise _fail(
                f"{_NO_MASTER_KEY}, so this key would protect nothing. Set LANEWAY_MASTER_KEY "
                "for the gateway and here, or pass --force to create the key anyway"
            )
        typer.echo(f"warning: {_NO_MASTER_KEY}; creating the key anyway (--force)", err=True)


def _create_key(
    name: str,
    options: dict[str, Any],
    database: str | None,
    config: str | None,
    *,
    as_json: bool,
) -> None:
    """Store the key and print it once (a taken name exits 1, a bad option 2)."""
    with _store(database, config, create=True) as store:
        try:
            plaintext, key = store.create_key(name, **options)
        except InvalidRequest as exc:
            raise _fail(exc.message, 1 if isinstance(exc, KeyNameTaken) else 2) from None
        if as_json:
            typer.echo(json.dumps({"key": plaintext, **_key_json(store, key)}, indent=2))
            return
        _show_secret(plaintext, key, "Created")


def _parse_budget(budget_usd: str | None) -> Decimal | None:
    if budget_usd is None:
        return None
    try:
        return Decimal(budget_usd)
    except InvalidOperation:
        raise _fail(f"--budget-usd: {budget_usd!r} is not a number", 2) from None


def _usd(value: str | None) -> str:
    """A money cell: ``$1,234.50``; sub-cent amounts exactly; ``unknown`` for ``None``."""
    if value is None:
        return "unknown"
    amount = Decimal(value)
    if amount == amount.quantize(Decimal("0.01")) or amount >= 1:
        return f"${amount:,.2f}"
    return f"${value}"


def _budget_cell(row: dict[str, Any]) -> str:
    if row["budget_usd"] is None:
        return "-"
    return f"{_usd(row['spent_usd'])} of {_usd(row['budget_usd'])} per {row['period'] or 'month'}"


_NO_MASTER_KEY = (
    "LANEWAY_MASTER_KEY is not set: a gateway started without it accepts every request "
    "and enforces no key, budget or limit"
)


def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    active: Annotated[
        bool, typer.Option("--active", help="Only active keys (revoked ones are hidden).")
    ] = False,
    database: _Database = None,
    config: _Config = None,
) -> None:
    """List keys with spend, budget and reset time; revoked ones are marked revoked.

    Only a key's prefix is shown, never the key. --active hides revoked keys.
    """
    with _store(database, config, create=False) as store:
        keys = store.list_keys()
        rows = [_key_json(store, k) for k in keys if k.active or not active]
    if not os.environ.get("LANEWAY_MASTER_KEY"):
        typer.echo(f"note: {_NO_MASTER_KEY} (the gateway's own environment decides)", err=True)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        hidden = len(keys) - len(rows)
        more = f" ({hidden:,} revoked; drop --active to see them)" if hidden else ""
        typer.echo(f"No keys{more}. Create one with `laneway keys create --name NAME`.")
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in ("id", "name", "prefix", "status", "budget", "resets", "scope", "limits"):
        table.add_column(header, overflow="fold")
    for r in rows:
        scope = ", ".join(f"{k}: {','.join(r[k])}" for k in ("models", "tiers") if r[k]) or "any"
        limits = " ".join(f"{k} {r[k]:,}" for k in ("rpm", "tpm") if r[k]) or "-"
        table.add_row(
            r["id"],
            r["name"],
            r["prefix"] + "…",
            "active" if r["active"] else f"revoked {r['revoked_at']}",
            _budget_cell(r),
            r["resets_at"] or "-",
            scope,
            limits,
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(table)


def revoke_command(
    key: Annotated[
        str, typer.Argument(metavar="NAME_OR_ID", help="Key id, or an active key's name.")
    ],
    database: _Database = None,
    config: _Config = None,
) -> None:
    """Revoke a key: every worker refuses it within about a second."""
    with _store(database, config, create=False) as store:
        record = store.revoke(key)
    typer.echo(f"Revoked key {record.name!r} (id {record.id}) at {_iso(record.revoked_at)}.")


def rotate_command(
    key: Annotated[
        str, typer.Argument(metavar="NAME_OR_ID", help="Key id, or an active key's name.")
    ],
    database: _Database = None,
    config: _Config = None,
) -> None:
    """Give a key a new secret (same id, limits and spend) and print it once."""
    with _store(database, config, create=False) as store:
        plaintext, record = store.rotate(key)
    _show_secret(plaintext, record, "Rotated")
    typer.echo("The old secret no longer works.", err=True)


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


_Actor = Annotated[
    str | None, typer.Option(help="Who is doing this, for the history (default cli:USER).")
]


def kill_command(
    kind: Annotated[_Kind | None, typer.Argument(help="What to switch off.")] = None,
    name: Annotated[str | None, typer.Argument(help="Its name as in the config.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why, shown in /health/ready.")] = None,
    show: Annotated[bool, typer.Option("--list", help="List the active kill switches.")] = False,
    actor: _Actor = None,
    database: _Database = None,
    config: _Config = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Kill a NAME the config does not have (e.g. before it is added)."
        ),
    ] = False,
) -> None:
    """Switch a deployment, model, provider or tier off in every worker within a second.

    Examples: `laneway kill deployment openai-gpt5 --reason "bad outputs"`, `laneway kill --list`.
    """
    if show:
        if kind is not None:
            raise _fail("--list takes no KIND or NAME", 2)
        with _store(database, config, create=False) as store:
            kills = store.active_kills()
        if not kills:
            typer.echo("No kill switches are active.")
        for k in kills:
            why = f" — {k.reason}" if k.reason else ""
            typer.echo(f"{k.kind} {k.name}: killed {_iso(k.killed_at)} by {k.actor}{why}")
        return
    if kind is None or name is None:
        raise _fail("give KIND and NAME (e.g. `laneway kill deployment NAME`) or --list", 2)
    if not force:
        _check_kill_target(kind, name, config)
    with _store(database, config, create=False) as store:
        record = store.kill(kind.value, name, reason=reason, actor=_actor(actor))
    typer.echo(f"Killed {record.kind} {record.name!r}; every worker stops using it within 1 s.")


def _check_kill_target(kind: _Kind, name: str, config: str | None) -> None:
    from laneway.governance import check_kill_target
    from laneway.settings import load_settings

    try:
        check_kill_target(kind.value, name, load_settings(config))
    except LanewayError as exc:
        raise _fail(exc.message.replace("force it", "pass --force")) from None


def unkill_command(
    kind: Annotated[_Kind, typer.Argument(help="What to switch back on.")],
    name: Annotated[str, typer.Argument(help="Its name as in the config.")],
    actor: _Actor = None,
    database: _Database = None,
    config: _Config = None,
) -> None:
    """Switch a killed deployment, model, provider or tier back on."""
    with _store(database, config, create=False) as store:
        changed = store.unkill(kind.value, name, actor=_actor(actor))
    if not changed:
        raise _fail(f"{kind.value} {name!r} is not killed")
    typer.echo(f"Unkilled {kind.value} {name!r}.")


def register(app: typer.Typer) -> None:
    """Add ``keys``, ``kill`` and ``unkill`` to ``app``."""
    keys = typer.Typer(
        name="keys",
        help="Virtual keys: create (shown once, stored hashed), list, revoke, rotate.",
        no_args_is_help=True,
    )
    keys.command("create")(create_command)
    keys.command("list")(list_command)
    keys.command("revoke")(revoke_command)
    keys.command("rotate")(rotate_command)
    app.add_typer(keys)
    app.command("kill")(kill_command)
    app.command("unkill")(unkill_command)
