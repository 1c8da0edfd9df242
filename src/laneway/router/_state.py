"""Where the active router lives: the user's state directory, never the installed package.

``$LANEWAY_DATA_DIR`` if set, else ``$XDG_DATA_HOME/laneway``, else
``~/.local/share/laneway``; the active router is ``router/active`` under it, and the
one it replaced ``router/previous``. ``laneway router promote`` installs a router
there; ``laneway router calibrate`` writes profiles there (copying the shipped router
first when none is active). The package directory is only ever read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from laneway.errors import InvalidRequest
from laneway.router._scorer import default_router_dir

__all__ = [
    "active_router_dir",
    "ensure_active_router",
    "install_router",
    "resolve_router_dir",
    "state_dir",
]


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("LANEWAY_DATA_DIR"):
        return Path(env["LANEWAY_DATA_DIR"]).expanduser()
    if env.get("XDG_DATA_HOME"):
        return Path(env["XDG_DATA_HOME"]).expanduser() / "laneway"
    home = env.get("HOME")
    base = Path(home) if home else Path.home()
    return base / ".local" / "share" / "laneway"


def active_router_dir(environ: Mapping[str, str] | None = None) -> Path:
    return state_dir(environ) / "router" / "active"


def resolve_router_dir(path: Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """``path`` if given, else the active router if one is installed, else the shipped one."""
    if path is not None:
        return path
    active = active_router_dir(environ)
    return active if (active / "router.json").is_file() else default_router_dir()


def install_router(source: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Copy the router directory ``source`` in as the active router; the one it
    replaces becomes ``previous``. The swap is two renames, so a reader sees the old
    router or the new one, never half of either."""
    active = active_router_dir(environ)
    parent = active.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        incoming = Path(tempfile.mkdtemp(prefix=".incoming-", dir=parent))
        shutil.copytree(source, incoming, dirs_exist_ok=True)
        previous = parent / "previous"
        if active.exists():
            if previous.exists():
                shutil.rmtree(previous)
            active.rename(previous)
        incoming.rename(active)
    except OSError as exc:
        raise InvalidRequest(f"cannot install the router in {parent}: {exc}") from exc
    return active


def ensure_active_router(environ: Mapping[str, str] | None = None) -> Path:
    """The active router's directory, made from a copy of the shipped router when
    none is installed yet (so that calibrating never writes into the package)."""
    active = active_router_dir(environ)
    if (active / "router.json").is_file():
        return active
    return install_router(default_router_dir(), environ)
