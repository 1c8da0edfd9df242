"""Assembles the command groups into one Typer application."""

from __future__ import annotations

from typing import Any

import typer
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


class _Group(TyperGroup):
    """A command group whose ``--help``, when not given, is ``False`` rather than unset:
    typer then takes it as a plain flag instead of building a pydantic validator for it,
    so that ``laneway GROUP [COMMAND] --help`` does not import pydantic (~0.15 s)."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


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
