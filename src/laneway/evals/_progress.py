"""Progress of a run for people: a live bar on a terminal, plain lines elsewhere.

Without a terminal (CI logs, ``| tee``, cron mail) a live bar prints nothing until the
end; there, a plain line ``NAME: done/total (errors)`` is printed at each tenth of the
work and at least every ``every_s`` seconds, flushed at once. Both phases are shown:
the candidates' answers, then the judge's pairwise verdicts.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, Any, Self

__all__ = ["RunProgress"]


class _Plain:
    def __init__(self, out: IO[str], every_s: float) -> None:
        self.out, self.every_s = out, every_s
        self.last_step: dict[str, int] = {}
        self.last_time: dict[str, float] = {}

    def update(self, label: str, done: int, total: int, errors: int) -> None:
        step = (done * 10) // total if total else 10
        now = time.monotonic()
        first = label not in self.last_time
        if (
            first
            or done >= total
            or step > self.last_step.get(label, -1)
            or now - self.last_time[label] >= self.every_s
        ):
            self.last_step[label], self.last_time[label] = step, now
            tail = f" ({errors} errors)" if errors else ""
            self.out.write(f"{label}: {done}/{total}{tail}\n")
            self.out.flush()


class RunProgress:
    """``answer(error)`` after every answer; ``pair(done, total)`` after every verdict."""

    def __init__(
        self,
        name: str,
        total: int,
        *,
        terminal: bool | None = None,
        out: IO[str] | None = None,
        every_s: float = 10.0,
    ) -> None:
        self.name, self.total = name, total
        self.done = self.errors = 0
        self.out = out if out is not None else sys.stdout
        self.terminal = self.out.isatty() if terminal is None else terminal
        self._plain = _Plain(self.out, every_s)
        self._rich: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> Self:
        if self.terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
            self._rich = Progress(*columns, TimeElapsedColumn(), transient=False)
            self._rich.__enter__()
            self._tasks["answers"] = self._rich.add_task(self.name, total=self.total)
        elif self.total:
            self._plain.update(self.name, 0, self.total, 0)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._rich is not None:
            self._rich.__exit__(kind, exc, tb)
            self._rich = None

    def answer(self, error: bool = False) -> None:
        self.done += 1
        self.errors += error
        if self._rich is not None:
            self._rich.advance(self._tasks["answers"])
        else:
            self._plain.update(self.name, self.done, self.total, self.errors)

    def pair(self, done: int, total: int) -> None:
        label = f"{self.name} judge"
        if self._rich is not None:
            task = self._tasks.get("judge")
            if task is None:
                task = self._tasks["judge"] = self._rich.add_task(label, total=total)
            self._rich.update(task, completed=done, total=total)
        else:
            self._plain.update(label, done, total, 0)
