"""LiteLLM's proxy for the benchmark, in a throw-away virtualenv of its own.

The virtualenv lives under ``~/.cache/laneway-bench/litellm-venv`` (``$LANEWAY_BENCH_CACHE``
moves it) and is reused when it already holds a working ``litellm``. LiteLLM never enters
Laneway's own environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

__all__ = ["VERSIONS", "ensure_litellm", "litellm_argv", "litellm_env", "write_litellm_config"]

# Tried in order. Later patch releases of 1.105-1.109 need a certifi newer than some
# mirrors carry; these resolve against a PyPI snapshot of late 2026.
VERSIONS = ("1.106.0", "1.104.0", "1.95.0")


def _cache_dir() -> Path:
    root = os.environ.get("LANEWAY_BENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "laneway-bench"


def _installed_version(venv: Path) -> str | None:
    python = venv / "bin" / "python"
    if not (venv / "bin" / "litellm").exists() or not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure_litellm(timeout: float = 900.0, log: Path | None = None) -> tuple[Path, str]:
    """The virtualenv's path and LiteLLM's version, installing ``litellm[proxy]`` first
    when needed. Raises RuntimeError with the reason when that fails."""
    venv = _cache_dir() / "litellm-venv"
    version = _installed_version(venv)
    if version:
        return venv, version
    if not (venv / "bin" / "pip").exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    errors = []
    for candidate in VERSIONS:
        print(f"  installing litellm[proxy]=={candidate} into {venv} ...", flush=True)
        try:
            done = subprocess.run(
                [str(venv / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={candidate}"],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"pip install took longer than {timeout:.0f} s") from None
        if log is not None:
            with log.open("a") as handle:
                handle.write(done.stdout + done.stderr)
        if done.returncode == 0:
            version = _installed_version(venv)
            if version:
                return venv, version
        lines = [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")]
        errors.append(f"{candidate}: {lines[-1] if lines else 'pip failed'}")
    raise RuntimeError("; ".join(errors))


def write_litellm_config(path: Path, models: dict[str, str]) -> None:
    """``models`` maps a model name to the upstream's base URL (``.../v1``)."""
    config = {
        "model_list": [
            {
                "model_name": name,
                "litellm_params": {
                    "model": "openai/fake-model",
                    "api_base": api_base,
                    "api_key": "sk-bench",
                },
            }
            for name, api_base in models.items()
        ],
        "litellm_settings": {"telemetry": False, "drop_params": True},
        "general_settings": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def litellm_argv(venv: Path, config: Path, port: int) -> Sequence[str]:
    return [
        str(venv / "bin" / "litellm"),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]


def litellm_env(base: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if k not in ("DATABASE_URL", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    env.update(
        {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "LITELLM_MODE": "PRODUCTION",
            "DISABLE_ADMIN_UI": "True",
            # 1.10x refuses to start without a master key; like the bare passthrough and
            # Laneway here, it runs without client auth (loopback only).
            "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
        }
    )
    return env
