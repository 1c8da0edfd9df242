"""The ``laneway`` command line: one module per command group."""

from laneway.cli._app import build_app, main

__all__ = ["build_app", "main"]
