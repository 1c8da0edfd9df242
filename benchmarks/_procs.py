"""Starting, pinning, probing and stopping the benchmark's processes.

Every process is started in its own session (process group) and pinned to a CPU set
before it executes anything; :class:`Processes` stops all of them (SIGTERM, then SIGKILL)
when its ``with`` block ends, on an exception or Ctrl-C too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["Processes", "free_port", "rss_mb", "wait_http"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _status_kb(pid: int, key: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(p) for p in task.read_text().split())
        except OSError:
            continue
    return found


def rss_mb(pid: int, *, peak: bool = False) -> float:
    """Resident memory (``VmRSS``, or ``VmHWM`` with ``peak``) of ``pid`` and its
    descendants, in MB (10^6 bytes)."""
    key = "VmHWM" if peak else "VmRSS"
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += _status_kb(current, key)
        todo.extend(_children(current))
    return total * 1024 / 1e6


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    """Poll ``url`` until it answers any HTTP status; fail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"process exited ({proc.returncode}) before {url}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - http://127.0.0.1 only
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s (log: {log})")


class Processes:
    """The benchmark's child processes; a context manager that stops them all on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpus: set[int] | None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        capture_stdout: bool = False,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` pinned to ``cpus``; stderr (and stdout unless captured) go to
        ``<log_dir>/<name>.log``."""
        log = self.log_dir / f"{name}.log"
        handle = log.open("ab")

        def pin() -> None:
            if cpus:
                os.sched_setaffinity(0, cpus)

        proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE if capture_stdout else handle,
            stderr=handle,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            preexec_fn=pin,
            start_new_session=True,
        )
        handle.close()
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        with contextlib.suppress(
            ProcessLookupError, PermissionError
        ):  # leftovers of its process group (uvicorn workers)
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_pid(self, pid: int) -> None:
        for proc in [p for p in self._procs if p.pid == pid]:
            self.stop(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self._procs)):
            self.stop(proc)

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()
