"""Writing output files: whole or not at all, never creating missing folders.

The ``check_*`` functions are called before any work, so a bad output path fails at
once (one ``ConfigError`` line) rather than after a long run.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from laneway.errors import ConfigError

__all__ = ["check_output_dir", "check_output_file", "write_atomic"]

_FILE_SUFFIXES = (".json", ".jsonl", ".html", ".htm", ".yaml", ".yml")


def _check_parent(path: Path) -> None:
    parent = path.parent
    if not parent.is_dir():
        state = "is not a directory" if parent.exists() else "does not exist"
        raise ConfigError(f"directory {parent} {state}")


def check_output_file(path: Path) -> Path:
    """``path`` if a file can be written there: not a directory, and its directory
    exists (it is never created)."""
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a file")
    _check_parent(path)
    return path


def check_output_dir(path: Path) -> Path:
    """``path`` if it is a directory, or can be made one (its parent exists; a name
    with a file suffix such as ``.json`` is taken for a mistake)."""
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{path} is a file; --out takes a directory")
        return path
    if path.suffix.lower() in _FILE_SUFFIXES:
        raise ConfigError(
            f"--out {path}: --out takes a directory, not a file name "
            "(the run writes RUN_ID.json and RUN_ID.html in it)"
        )
    _check_parent(path)
    return path


def write_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, renamed
    over ``path`` once complete (a failure leaves no partial file). The folder must
    exist: a missing one raises ``FileNotFoundError`` rather than being created."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path
