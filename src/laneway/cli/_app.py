"""Assembles the command groups into one Typer application."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from laneway.cli import (
    _advise,
    _catalog,
    _drift,
    _eval,
    _keys,
    _policy,
    _router,
    _serve,
    _shadow,
    _usage,
)

__all__ = ["build_app", "main"]

_GROUPS = (_serve, _catalog, _usage, _keys, _policy, _router, _eval, _drift, _shadow, _advise)


class _WrongCommandLine(UsageError):
    """A wrong command line as one ``error:`` line on stderr, naming the help to read
    (the README's rule; click prints three lines: usage, a hint, ``Error: …``)."""

    def __init__(self, error: UsageError) -> None:
        super().__init__(error.format_message(), error.ctx)

    def show(self, file: Any = None) -> None:
        where = self.ctx.command_path if self.ctx is not None else "laneway"
        typer.echo(f"error: {self.format_message()} (see `{where} --help`)", err=True)


class _Group(TyperGroup):
    """A command group whose ``--help``, when not given, is ``False`` rather than unset:
    typer then takes it as a plain flag instead of building a pydantic validator for it,
    so that ``laneway GROUP [COMMAND] --help`` does not import pydantic (~0.15 s).

    A wrong command line below it (an unknown option, a missing or unreadable value) is
    one ``error:`` line; a group called with no command still prints its help."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        with _one_line():
            return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        with _one_line():
            return super().invoke(ctx)


@contextlib.contextmanager
def _one_line() -> Iterator[None]:
    try:
        yield
    except (NoArgsIsHelpError, _WrongCommandLine):
        raise
    except UsageError as exc:
        raise _WrongCommandLine(exc) from None


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="laneway",
        cls=_Group,
        help="Laneway: one OpenAI-compatible gateway over closed, open-weight, self-hosted and "
        "embedded models, with routing, governance, evals and cost advice.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        # Plain help for every command: formatting it with rich (markdown, syntax
        # highlighting, rich tracebacks) costs ~0.15 s of a ~0.35 s `laneway --help`.
        rich_markup_mode=None,
    )
    for group in _GROUPS:
        group.register(app)
    for info in app.registered_groups:
        info.cls = _Group
    return app


def main() -> None:
    build_app()()
