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

__all__ = ["MAX_CONCURRENCY", "register"]

MAX_CONCURRENCY = 2048
"""``server.max_concurrency``'s default: connections and requests one worker holds at once
before uvicorn answers ``503 Service Unavailable`` (its ``limit_concurrency``; idle
keep-alive connections count). Twice the upstream connection pool (1000), past which a
request would only wait for a connection: a normal deployment never reaches it, and a
flood stops there instead of growing the worker's memory and open files without end."""

# Open files one worker may need besides its clients' connections: the upstream pool
# (1000), the database, logs, the embedded model's files.
_OTHER_FILES = 1024 + 128


def _banner(settings: Settings, host: str, port: int, workers: int, source: str) -> None:
    from rich.console import Console

    console = Console(stderr=True)
    console.print(f"[bold]Laneway[/bold] gateway on http://{host}:{port}/v1  ({source})")
    for d in settings.deployments:
        console.print(f"  deployment [cyan]{d.name}[/cyan]: {d.model} via {d.provider}")
    for tier, members in settings.tiers.items():
        console.print(f"  tier [magenta]{tier}[/magenta]: {', '.join(members)}")
    console.print(f"  ledger: {settings.database.url}   workers: {workers}")


# What each embedded runtime imports and the extra that installs it. The model itself is
# loaded in the worker, after uvicorn started; these are checked before the banner so that
# a missing extra is one line and exit 1, not a start-up traceback after a banner and a new
# database file. (providers/_local.py raises the same errors when it loads.)
_RUNTIMES = {
    "numpy": (("tokenizers", "jinja2", "threadpoolctl"), "local"),
    "llama_cpp": (("llama_cpp",), "llamacpp"),
}


def _installed(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None


def embedded_problems(settings: Settings) -> list[str]:
    """What the config's embedded deployments need and this Python lacks: a runtime's
    packages (naming the extra) or the model file, one line each, each once."""
    from laneway.errors import ConfigError
    from laneway.providers import default_gguf_path
    from laneway.settings import LocalModelSettings

    problems: list[str] = []
    for d in settings.deployments:
        if d.provider != "local":
            continue
        local = d.local or LocalModelSettings()
        runtime: str = local.runtime
        if runtime == "auto":
            runtime = "llama_cpp" if _installed("llama_cpp") else "numpy"
        modules, extra = _RUNTIMES[runtime]
        missing = [m for m in modules if not _installed(m)]
        if missing:
            problems.append(
                f"the {runtime} runtime of the embedded model ({d.name}) needs "
                f"{', '.join(missing)}: pip install 'laneway[{extra}]'"
            )
        if local.model_path:
            if not Path(local.model_path).is_file():
                problems.append(f"local model file not found: {local.model_path} ({d.name})")
            continue
        try:
            default_gguf_path()
        except ConfigError as exc:
            problems.append(exc.message)
    return list(dict.fromkeys(problems))


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
    max_concurrency: Annotated[
        int | None,
        typer.Option(
            min=16,
            max=1_000_000,
            help="Connections and requests each worker holds at once; past it new requests "
            "get 503 Service Unavailable (uvicorn's limit_concurrency; clients retry), so a "
            f"flood cannot exhaust memory or open files. Default {MAX_CONCURRENCY} "
            "(server.max_concurrency).",
        ),
    ] = None,
) -> None:
    """Run the OpenAI-compatible gateway: point any OpenAI SDK at http://HOST:PORT/v1."""
    import logging

    import uvicorn

    from laneway.errors import ConfigError

    path, settings = _checked_settings(config)
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    workers = workers or settings.server.workers
    max_concurrency = max_concurrency or settings.server.max_concurrency
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
    _raise_open_file_limit(max_concurrency + _OTHER_FILES)
    common = _uvicorn_options(host, port, level, settings.server.graceful_shutdown_s)
    common["limit_concurrency"] = max_concurrency
    if app is None:
        if path is not None:
            os.environ["LANEWAY_CONFIG"] = str(path.resolve())
        _run_workers(workers, common)
        return
    uvicorn.run(app, **common)


def _run_workers(workers: int, options: dict[str, Any]) -> None:
    """``uvicorn.run``'s multi-worker branch with one change: told to stop, the supervisor
    closes its own copy of the listening socket before it signals the workers, which close
    theirs as they start draining. Otherwise the socket stayed open in the supervisor for
    the whole drain (up to ``server.graceful_shutdown_s``): new connections were accepted
    by the kernel and answered by no one, each client waiting out its own timeout instead
    of being refused at once (and retrying elsewhere)."""
    import contextlib

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        def terminate_all(self) -> None:
            for sock in self.sockets:
                sock.close()
            super().terminate_all()

    config = uvicorn.Config(
        "laneway.server:app_from_environment", factory=True, workers=workers, **options
    )
    sock = config.bind_socket()
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: a second Ctrl-C
        Supervisor(config, sockets=[sock]).run()


def _uvicorn_options(host: str, port: int, level: str, grace: float) -> dict[str, Any]:
    return {
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
        "timeout_graceful_shutdown": grace,
    }


def _checked_settings(config: Path | None) -> tuple[Path | None, Settings]:
    """The config file found and its settings, everything validated before the first side
    effect: no banner, no database file and no model load for a config that cannot start
    (one ``error:`` line each, exit 1)."""
    from laneway.errors import ConfigError
    from laneway.settings import check_environment, find_config, load_settings

    try:
        path = find_config(config, os.environ)
        settings = load_settings(path)
        check_environment(settings, os.environ)
    except ConfigError as exc:
        raise _config_error(exc) from None
    problems = embedded_problems(settings)
    if problems:
        for problem in problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)
    return path, settings


def _raise_open_file_limit(needed: int) -> None:
    """Lift the soft limit on open files to ``needed`` where the hard limit allows (the
    workers inherit it): a common soft default of 1024 would have a busy worker fail to
    accept connections long before its concurrency limit."""
    try:
        import resource
    except ImportError:  # not a Unix
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # macOS caps it below an infinite hard limit
            return


def _config_error(exc: Any) -> typer.Exit:
    """A config that cannot start: its message on stderr, exit 1 (see README, Exit codes)."""
    typer.echo(f"error: {exc.message}", err=True)
    return typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
