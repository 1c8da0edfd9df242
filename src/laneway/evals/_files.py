"""Reading the files a user names, within limits; writing output files whole or not at all,
never creating missing folders.

A file the user names is read with a bound (``laneway.settings.read_user_text``, or
``limited_lines`` a line at a time): never more
than its limit plus one byte, whatever its size (a 2 GB file costs one bounded read, not
2 GB of memory), and one over the limit is a one-line ``ConfigError`` naming it and the
limit. The ``check_*`` functions are called before any work, so a bad output path fails at
once (one ``ConfigError`` line) rather than after a long run.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

from laneway.errors import ConfigError

__all__ = [
    "check_output_dir",
    "check_output_file",
    "limited_lines",
    "write_atomic",
]

MIB = 1 << 20

_FILE_SUFFIXES = (".json", ".jsonl", ".html", ".htm", ".yaml", ".yml")


def _size(n: int) -> str:
    return f"{n // MIB} MiB" if n % MIB == 0 else f"{n} bytes"


def _check_input(path: Path, what: str) -> None:
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a {what}")
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")


def _too_big(path: Path, what: str, limit: int) -> ConfigError:
    return ConfigError(f"{path}: the {what} is larger than its limit of {_size(limit)}")


def _decode(path: Path, data: bytes, offset: int = 0, where: str = "") -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start : exc.start + 1].hex()
        at = offset + exc.start
        raise ConfigError(
            f"{path}{where}: not UTF-8 text (byte 0x{byte} at offset {at}); save it as UTF-8"
        ) from None


def limited_lines(path: Path, what: str, limit: int, line_limit: int) -> Iterator[tuple[int, str]]:
    """The lines of a file the user named, numbered from 1, read one at a time: at most
    ``limit`` bytes in all and ``line_limit`` bytes a line (a one-line ``ConfigError``
    past either, as for ``laneway.settings.read_user_text``)."""
    _check_input(path, what)
    total = 0
    try:
        with path.open("rb") as f:
            for number in itertools.count(1):
                line = f.readline(line_limit + 1)
                if not line:
                    return
                if len(line) > line_limit and not line.endswith(b"\n"):
                    raise ConfigError(
                        f"{path}:{number}: a line longer than its limit of {_size(line_limit)}"
                    )
                if total + len(line) > limit:
                    raise _too_big(path, what, limit)
                yield number, _decode(path, line, total, f":{number}")
                total += len(line)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None


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
