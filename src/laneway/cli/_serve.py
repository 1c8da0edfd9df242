"""``laneway serve``: run the gateway."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from laneway.settings import Settings

# uvicorn, rich, the settings (pydantic) and the server are imported inside ``serve`` so
# that other commands and ``--help`` start fast.

__all__ = ["register"]


def _banner(settings: Settings, host: str, port: int, workers: int, source: str) -> None:
    from rich.console import Console

    console = Console(stderr=True)
    console.print(f"[bold]Laneway[/bold] gateway on http://{host}:{port}/v1  ({source})")
    for d in settings.deployments:
        console.print(f"  deployment [cyan]{d.name}[/cyan]: {d.model} via {d.provider}")
    for tier, members in settings.tiers.items():
        console.print(f"  tier [magenta]{tier}[/magenta]: {', '.join(members)}")
    console.print(f"  ledger: {settings.database.url}   workers: {workers}")


class _LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def serve(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML config file. Default: $LANEWAY_CONFIG, else ./laneway.yaml, else "
            "built-in defaults (the embedded local model, plus one deployment per provider "
            "key found in the environment).",
        ),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind. Default 127.0.0.1 (local only).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port to bind. Default 4000.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="Worker processes (each loads its own embedded model). Default 1."
        ),
    ] = None,
    log_level: Annotated[_LogLevel, typer.Option(help="Log level.")] = _LogLevel.info,
) -> None:
    """Run the OpenAI-compatible gateway: point any OpenAI SDK at http://HOST:PORT/v1."""
    import logging

    import uvicorn

    from laneway.errors import ConfigError
    from laneway.settings import check_environment, find_config, load_settings

    # Everything is validated before the first side effect: no banner, no database file
    # and no model load for a config that cannot start.
    try:
        path = find_config(config, os.environ)
        settings = load_settings(path)
        check_environment(settings, os.environ)
    except ConfigError as exc:
        raise _config_error(exc) from None
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    workers = workers or settings.server.workers
    app: Any = None
    if workers == 1:
        from laneway.server import create_app

        try:
            app = create_app(settings)
        except ConfigError as exc:
            raise _config_error(exc) from None
    _banner(settings, host, port, workers, f"config {path}" if path else "built-in defaults")
    level = _LogLevel(log_level).value
    logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")
    common = {
        "host": host,
        "port": port,
        "log_level": level,
        "access_log": False,
        # Laneway uses no client address, so X-Forwarded-* rewriting is not needed (and
        # costs ~10 µs a request); no "server: uvicorn" header either.
        "proxy_headers": False,
        "server_header": False,
        "loop": "auto",
        "http": "auto",
        "timeout_graceful_shutdown": settings.server.graceful_shutdown_s,
    }
    if app is None:
        if path is not None:
            os.environ["LANEWAY_CONFIG"] = str(path.resolve())
        uvicorn.run("laneway.server:app_from_environment", factory=True, workers=workers, **common)  # type: ignore[arg-type]
        return
    uvicorn.run(app, **common)  # type: ignore[arg-type]


def _config_error(exc: Any) -> typer.Exit:
    """A config that cannot start: its message on stderr, exit 1 (see README, Exit codes)."""
    typer.echo(f"error: {exc.message}", err=True)
    return typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
