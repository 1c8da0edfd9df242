"""Opening the ledger for a command that reads it: every failure is one line on stderr.

The URL comes from ``--database`` > ``$LANEWAY_DATABASE_URL`` > the config's
``database.url`` > the default, as for ``laneway serve``; a read never creates or
migrates a database (a mistyped path must not leave an empty ledger behind).

Exit codes (README, "Exit codes"): 2 for a URL that is not a URL at all, 1 for a config,
database or ledger that cannot be read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from laneway.errors import LanewayError

__all__ = ["DatabaseOption", "database_url", "read_ledger"]

# ``--database`` of the commands that read the ledger.
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        "--db",  # as the eval, drift and shadow commands take it
        envvar="LANEWAY_DATABASE_URL",
        help="Ledger database URL (default: the config's database.url, as `serve` uses; "
        "--db is an alias).",
    ),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def database_url(database: str | None, config: Path | str | None) -> str:
    """``--database`` (or ``$LANEWAY_DATABASE_URL``), else the config's ``database.url``."""
    if database:
        return database
    from laneway.settings import load_settings

    try:
        return load_settings(config).database.url
    except LanewayError as exc:
        raise _fail(exc.message) from None


def _why(exc: BaseException) -> str:
    """The driver's own first line ("database is locked", "file is not a database")."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def read_ledger(url: str) -> Iterator[Any]:
    """A migrated ledger engine for reading; disposed on exit."""
    import sqlalchemy as sa

    from laneway.ledger import open_database, pending_migrations

    try:
        shown = sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        raise _fail(f"not a database URL: {url!r}", 2) from None
    try:
        engine = open_database(url, create=False, migrate=False)
    except LanewayError as exc:
        raise _fail(f"{exc.message} (run `laneway serve` first or pass --database)") from None
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        raise _fail(f"cannot open the ledger at {shown}: {_why(exc)}") from None
    try:
        if pending_migrations(engine):
            raise _fail(f"the ledger at {shown} is not migrated yet: start `laneway serve` once")
        yield engine
    except sa.exc.SQLAlchemyError as exc:
        raise _fail(f"cannot read the ledger at {shown}: {_why(exc)}") from None
    finally:
        engine.dispose()
