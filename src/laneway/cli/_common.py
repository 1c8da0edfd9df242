"""What the ``eval``, ``shadow`` and ``drift`` commands share: the ``--config``,
``--database`` and ``--json`` options, one-line errors with the README's exit codes, and
opening the settings, the database and a suite."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from laneway.errors import LanewayError

if TYPE_CHECKING:
    import sqlalchemy as sa
    from rich.console import Console

    from laneway.evals import Suite
    from laneway.settings import Settings

__all__ = [
    "ConfigOpt",
    "DbOpt",
    "JsonOpt",
    "TokensPerDayOpt",
    "console",
    "database_problem",
    "engine_from",
    "errors",
    "fail",
    "out_dir",
    "out_file",
    "settings_from",
    "suite_from",
]

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="laneway.yaml (default: the usual lookup).")
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        "--db",
        envvar="LANEWAY_DATABASE_URL",
        show_envvar=True,
        help="Database URL, e.g. sqlite:///laneway.db (--db is an alias; "
        "default: the config's database.url).",
    ),
]
TokensPerDayOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Your expected traffic in tokens per day: adds the projected $/month per model "
        "(the run's cost per token x this x 30). Default: no projection.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """One ``error:`` line; exit 1 (the work could not be done) or 2 (a wrong command line)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def database_problem(exc: Exception) -> str:
    """One line for a database error (by SQLite error code, not by message text)."""
    orig = getattr(exc, "orig", None)
    code = str(getattr(orig, "sqlite_errorname", ""))
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return "database is locked (another process is writing to it); try again"
    if code == "SQLITE_NOTADB":
        return "not a SQLite database"
    return "database error: " + " ".join(str(orig or exc).split())


@contextlib.contextmanager
def errors(code: int = 1) -> Iterator[None]:
    """Known failures as one ``error:`` line and exit ``code``, never a traceback: 1 for
    work that could not be done, 2 around the parsing of a command-line value."""
    import sqlalchemy as sa

    try:
        yield
    except LanewayError as exc:
        raise fail(exc.message, code) from None
    except sa.exc.SQLAlchemyError as exc:
        raise fail(database_problem(exc), code) from None
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        raise fail(f"{where}{exc.strerror or exc}", code) from None


def out_file(path: Path) -> Path:
    from laneway.evals import check_output_file

    with errors():
        return check_output_file(path)


def out_dir(path: Path) -> Path:
    from laneway.evals import check_output_dir

    with errors():
        return check_output_dir(path)


def console() -> Console:
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def settings_from(config: Path | None) -> Settings:
    from laneway.settings import load_settings

    with errors():
        return load_settings(config)


def engine_from(config: Path | None, db: str | None, *, create: bool = True) -> sa.Engine:
    """The database engine; ``create=False`` (commands that only read) refuses to create
    a missing SQLite file."""
    import sqlalchemy as sa

    from laneway.ledger import open_database

    url = db or settings_from(config).database.url
    try:
        shown = sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        raise fail(f"not a database URL: {url!r}", 2 if db else 1) from None
    try:
        return open_database(url, create=create)
    except LanewayError as exc:
        hint = "" if create else " (pass --database or set LANEWAY_DATABASE_URL)"
        raise fail(exc.message + hint) from None
    except sa.exc.SQLAlchemyError as exc:
        raise fail(f"{shown}: {database_problem(exc)}") from None
    except ImportError as exc:
        raise fail(f"{shown}: the database driver is not installed ({exc.name})") from None


def suite_from(ref: str) -> Suite:
    from laneway.evals import load_suite, packaged_suites

    packaged = packaged_suites()
    path = Path(ref)
    if not path.exists() and ref in packaged:
        path = packaged[ref]
    with errors():
        return load_suite(path)
