"""The command line starts fast: ``laneway --help`` and every group's ``--help`` import only
typer, rich and the standard library; each command imports what it needs when it runs.

Measured on a quiet 2-core machine these take ~0.2-0.3 s; the budget here is generous
and counts CPU time, because CI machines are loaded.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from laneway.cli import build_app

# Never imported by building the CLI: each costs 50-400 ms, and --help needs none of them.
HEAVY = (
    "aiohttp",
    "asyncio",
    "jinja2",
    "jsonschema",
    "laneway.advisor",
    "laneway.catalog",
    "laneway.evals",
    "laneway.governance",
    "laneway.ledger",
    "laneway.router",
    "laneway.server",
    "laneway.settings",
    "llama_cpp",
    "matplotlib",
    "numpy",
    "pydantic",
    "rich",  # help is plain (rich_markup_mode=None); tables import it when they print
    "sqlalchemy",
    "starlette",
    "uvicorn",
    "yaml",
)

# CPU seconds (user + system) of the whole process, not wall time: on a loaded machine
# (CI, or eight engineers on two cores) wall time measures the neighbours. 0.22-0.29 s were
# measured at a load average of 16 on 2 cores (1.4-1.7 s before the imports were made
# lazy); the budget is generous, and a run over it is repeated once.
BUDGET_CPU_S = 0.8
TRIES = 2


def _command_line() -> list[str]:
    script = Path(sys.executable).with_name("laneway")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "laneway.cli"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANEWAY_")}
    env["COLUMNS"] = "120"
    return env


def test_building_the_cli_imports_nothing_heavy() -> None:
    probe = (
        "import json, sys, typer\n"
        "from laneway.cli import build_app\n"
        "typer.main.get_command(build_app())\n"  # every command and option, as --help does
        f"print(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=_env(), check=True
    )
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("args", [["--help"], ["keys", "create", "--help"], ["router", "--help"]])
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    """Not even pydantic: typer would build a validator for an unset --help of a group."""
    probe = (
        "import json, sys\n"
        f"sys.argv = ['laneway', *{args!r}]\n"
        "from laneway.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert exit.code in (0, None), exit.code\n"
        f"print(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=_env(), check=True
    )
    assert json.loads(result.stdout.splitlines()[-1]) == []


def _commands() -> list[list[str]]:
    """``[]`` (the root) and every top-level command and group (a sub-command loads the
    same module as its group)."""
    root = typer.main.get_command(build_app())
    found: list[list[str]] = [[], *([name] for name in _subcommands(root))]
    assert len(found) > 10
    return found


def _subcommands(command: Any) -> dict[str, Any]:
    """A group's commands (typer bundles its own click: no isinstance check)."""
    return dict(getattr(command, "commands", None) or {})


def _help_cpu_seconds(args: list[str]) -> float:
    best = float("inf")
    for _ in range(TRIES):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run(
            [*_command_line(), *args, "--help"], capture_output=True, text=True, env=_env()
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout and "Traceback" not in result.stderr
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, cpu)
        if best <= BUDGET_CPU_S:
            break
    return best


def test_every_command_help_starts_fast() -> None:
    slow = {}
    for args in _commands():
        seconds = _help_cpu_seconds(args)
        if seconds > BUDGET_CPU_S:
            slow[" ".join(args) or "(root)"] = round(seconds, 2)
    assert slow == {}


def test_every_option_and_argument_has_help() -> None:
    root = typer.main.get_command(build_app())
    missing: list[str] = []

    seen = 0

    def walk(command: Any, path: list[str]) -> None:
        nonlocal seen
        for param in command.params:
            seen += 1
            if param.name != "help" and not (getattr(param, "help", None) or "").strip():
                missing.append(f"laneway {' '.join(path)} {param.name}")
        for name, sub in _subcommands(command).items():
            walk(sub, [*path, name])

    walk(root, [])
    assert seen > 100
    assert missing == []


def test_the_holdout_default_of_router_train_is_the_routers() -> None:
    """``router train --holdout-every`` spells its default out (importing the router for
    it would cost --help ~0.3 s); it must stay the router's own."""
    from laneway.router._promote import DEFAULT_HOLDOUT_MODULUS

    router = _subcommands(typer.main.get_command(build_app()))["router"]
    (option,) = [p for p in _subcommands(router)["train"].params if p.name == "holdout_every"]
    assert option.default == DEFAULT_HOLDOUT_MODULUS
