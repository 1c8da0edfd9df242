"""The ``eval`` command group on its own Typer app, for CLI tests."""

from __future__ import annotations

import typer

from laneway.cli import _eval


def eval_cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    _eval.register(app)
    return app
