"""The ``eval`` command group on its own Typer app, for CLI tests; ``laneway`` in a child
process (for signals)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

from laneway.cli import _eval


def eval_cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    _eval.register(app)
    return app


def cli_process(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """``laneway ARGS`` in a child process in ``cwd``, its stdout and stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-c", "from laneway.cli import main; main()", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
