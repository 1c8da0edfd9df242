#!/usr/bin/env python3
"""The README's first-hour tour, run as a newcomer runs it: every ``$`` command of the
```console blocks between ``<!-- tour:start -->`` and ``<!-- tour:end -->`` in README.md,
in order, in one shell session (``export`` carries over), so the tour cannot drift from
the README.

    python scripts/newcomer_tour.py                  # the `laneway` next to this Python
    python scripts/newcomer_tour.py --fresh          # a fresh clone of HEAD, installed by
                                                     # the README's own install command
    python scripts/newcomer_tour.py --slack 3 --keep # a loaded machine; keep the work dir

It fails (exit 1, naming the command) on any traceback, any command slower than its
budget, an exit code other than 0 (or the ``# exits N`` the README writes after the
command), or output that contradicts the README: every output line the README shows
after a command must appear in the command's output (stdout and stderr, as a terminal
shows them), in that order, with runs of spaces equal and ``…`` standing for any text;
lines the README leaves out may be there, and a table's rule lines are not compared.

``laneway serve`` runs in the background, as from a second terminal: its step is the time
until ``/health/ready`` answers, its output is what it printed by then, and the next
``laneway serve`` (or the end of the tour) stops it with Ctrl-C. ``localhost:4000`` is
rewritten to a free port. Without ``--fresh``, the install and ``. .venv/bin/activate``
lines are skipped and the work directory is an empty temporary one with a copy of
``examples/``. Every command runs with no provider key and no ``LANEWAY_*`` variable of
this machine's environment. Needs ``curl`` and ``git`` (``--fresh``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
START, END = "<!-- tour:start -->", "<!-- tour:end -->"
README_PORT = "4000"
_RULES = "─━═┄┈-+┏┓┗┛┃│┡┩╇┳┻┯┷┼╋ "

# Seconds each kind of command may take on a quiet 2-core machine (first match wins);
# --slack multiplies them. `laneway serve`: until /health/ready (model loaded, warmed up).
BUDGETS: tuple[tuple[str, float], ...] = (
    (r"\bpip install\b", 180),
    (r"\blaneway serve\b", 60),
    (r"\blaneway eval run\b", 120),
    (r"\blaneway advise\b", 20),
    (r"^curl\b", 30),
    (r"\blaneway --help\b", 2),
    (r"\blaneway\b", 8),
    (r"", 2),
)


class TourFailure(Exception):
    """What the README promised and what happened instead."""


@dataclass
class Command:
    text: str
    expected: list[str]
    code: int = 0
    line: int = 0

    @property
    def shown(self) -> str:
        return " ".join(self.text.split())

    @property
    def budget(self) -> float:
        return next(s for pattern, s in BUDGETS if re.search(pattern, self.text))

    @property
    def is_install(self) -> bool:
        return "pip install" in self.text

    @property
    def is_activate(self) -> bool:
        return bool(re.match(r"(\.|source)\s+\S*activate\b", self.text))

    @property
    def is_serve(self) -> bool:
        return self.code == 0 and bool(re.search(r"\blaneway serve\b", self.text))


def tour_commands(readme: str) -> list[Command]:
    """The ``$`` commands of the tour's console blocks, with the output shown after each."""
    try:
        start = readme.index(START)
        end = readme.index(END, start)
    except ValueError:
        raise TourFailure(f"README.md has no {START} … {END} section") from None
    first_line = readme.count("\n", 0, start) + 1
    lines = readme[start:end].splitlines()
    commands: list[Command] = []
    in_block = False
    current: Command | None = None
    for number, line in enumerate(lines, first_line):
        if line.startswith("```"):
            in_block = line.strip() == "```console" if not in_block else False
            current = None
            continue
        if not in_block:
            continue
        if line.startswith("$ "):
            current = Command(line[2:], [], line=number)
            commands.append(current)
        elif current is not None and current.text.endswith("\\") and not current.expected:
            current.text = current.text[:-1].rstrip() + " " + line.strip()
        elif current is not None:
            current.expected.append(line)
    for command in commands:
        exits = re.search(r"\s+#\s*exits\s+(\d+)\s*$", command.text)
        if exits:
            command.code = int(exits.group(1))
            command.text = command.text[: exits.start()]
    if not commands:
        raise TourFailure("the tour section has no ```console block with `$ ` commands")
    return commands


def _norm(line: str) -> str:
    return " ".join(line.replace("\r", "").split())


def unmatched(expected: list[str], output: str) -> str | None:
    """The first README line not found (in order) in ``output``, or ``None``."""
    lines = [_norm(x) for x in output.splitlines()]
    at = 0
    for wanted in expected:
        want = _norm(wanted)
        if want in ("", "…") or not want.strip(_RULES):
            continue  # a table's rules change width with its cells
        pattern = re.compile(".*".join(re.escape(part.strip()) for part in want.split("…")))
        while at < len(lines) and not pattern.fullmatch(lines[at]):
            at += 1
        if at == len(lines):
            return wanted
        at += 1
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Step:
    command: Command
    seconds: float
    budget: float


@dataclass
class Tour:
    workdir: Path
    env: dict[str, str]
    fresh: bool
    slack: float
    port: int
    state: Path = field(init=False)
    steps: list[Step] = field(default_factory=list)
    server: subprocess.Popen[bytes] | None = None
    server_log: Path | None = None

    def __post_init__(self) -> None:
        self.state = self.workdir.parent / f"{self.workdir.name}.env"
        self.state.write_text("")

    def port_of(self, text: str) -> str:
        return re.sub(rf"(localhost|127\.0\.0\.1):{README_PORT}\b", rf"\1:{self.port}", text)

    def script(self, text: str) -> str:
        """The command in a shell that first takes the earlier commands' exports and
        afterwards saves them."""
        state = shlex.quote(str(self.state))
        return f". {state}\n{text}\nrc=$?\nexport -p > {state}\nexit $rc\n"

    def run(self, command: Command) -> None:
        if not self.fresh and (command.is_install or command.is_activate):
            print(f"-- (skipped without --fresh) $ {command.shown}", flush=True)
            return
        print(f"-- $ {command.shown}", flush=True)
        budget = command.budget * self.slack
        started = time.perf_counter()
        run = self.serve if command.is_serve else self.shell
        output = run(command, budget)
        seconds = time.perf_counter() - started
        self.steps.append(Step(command, seconds, budget))
        where = f"README.md:{command.line} `{command.shown}`"
        if "Traceback (most recent call last)" in output:
            raise TourFailure(f"{where} printed a traceback:\n{output[-4000:]}")
        missing = unmatched([self.port_of(x) for x in command.expected], output)
        if missing is not None:
            raise TourFailure(
                f"{where}: the README shows {missing!r}, the output has no such line "
                f"(after the lines before it):\n{output[-4000:]}"
            )
        if seconds > budget:
            raise TourFailure(f"{where} took {seconds:.1f} s, budget {budget:.0f} s")

    def shell(self, command: Command, budget: float) -> str:
        try:
            result = subprocess.run(
                ["bash", "-c", self.script(self.port_of(command.text))],
                cwd=self.workdir,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=max(budget * 3, 30),
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise TourFailure(f"`{command.shown}` still running after {budget * 3:.0f} s") from None
        output = result.stdout.decode("utf-8", "replace")
        if result.returncode != command.code:
            raise TourFailure(
                f"README.md:{command.line} `{command.shown}` exited {result.returncode}, "
                f"not {command.code}:\n{output[-4000:]}"
            )
        return output

    def serve(self, command: Command, budget: float) -> str:
        self.stop_server()
        self.server_log = self.workdir.parent / f"{self.workdir.name}-serve-{len(self.steps)}.log"
        text = f"exec {self.port_of(command.text)} --port {self.port}"
        with self.server_log.open("wb") as log:
            self.server = subprocess.Popen(
                ["bash", "-c", f". {shlex.quote(str(self.state))}\n{text}"],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + max(budget * 3, 30)
        ready = f"http://127.0.0.1:{self.port}/health/ready"
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise TourFailure(
                    f"`{command.shown}` exited {self.server.returncode}:\n{self.log()}"
                )
            with contextlib.suppress(OSError), urllib.request.urlopen(ready, timeout=2):
                return self.log()
            time.sleep(0.2)
        raise TourFailure(f"`{command.shown}`: not ready after {budget * 3:.0f} s\n{self.log()}")

    def log(self) -> str:
        if self.server_log is None or not self.server_log.exists():
            return ""
        return self.server_log.read_text("utf-8", "replace")

    def stop_server(self) -> None:
        """Ctrl-C, as a person stops it; it must exit without a traceback."""
        if self.server is None:
            return
        server, self.server = self.server, None
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
            log = self.log()[-4000:]
            raise TourFailure(f"`laneway serve` did not stop on Ctrl-C:\n{log}") from None
        if "Traceback (most recent call last)" in self.log():
            raise TourFailure(f"`laneway serve` printed a traceback:\n{self.log()[-4000:]}")


def clean_env(bindir: Path | None) -> dict[str, str]:
    """This machine's environment without provider keys or LANEWAY_* variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LANEWAY_", "VIRTUAL_ENV")) and not k.endswith(("_API_KEY", "_TOKEN"))
    }
    if bindir is not None:
        env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
    return env


def prepare(args: argparse.Namespace, root: Path) -> tuple[Path, Path | None]:
    """The work directory, and the directory of the `laneway` to use (None: the README's)."""
    workdir = root / "tour"
    if args.fresh:
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(workdir)], check=True)
        return workdir, None
    workdir.mkdir()
    shutil.copytree(REPO / "examples", workdir / "examples")
    laneway = Path(args.laneway)
    if not laneway.is_file():
        raise TourFailure(f"no laneway command at {laneway} (pass --laneway or --fresh)")
    return workdir, laneway.parent


def report(tour: Tour, total: float) -> None:
    """Each command's time against its budget, as a Markdown table."""
    print("\n| README line | command | seconds | budget |\n| --- | --- | --- | --- |")
    for s in tour.steps:
        shown = s.command.shown if len(s.command.shown) <= 60 else s.command.shown[:57] + "..."
        print(f"| {s.command.line} | `{shown}` | {s.seconds:.1f} | {s.budget:.0f} |")
    with contextlib.suppress(OSError):
        print(f"load average at the end: {Path('/proc/loadavg').read_text().split()[:3]}")
    print(f"tour passed: {len(tour.steps)} commands in {total:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--laneway",
        default=str(Path(sys.executable).with_name("laneway")),
        help="The laneway command to run (default: the one next to this Python).",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="Clone this repository's HEAD into the work directory and run the README's "
        "install command there (timed like every other command).",
    )
    parser.add_argument(
        "--slack",
        type=float,
        default=1.0,
        help="Multiply every time budget by this (a loaded machine), default 1.",
    )
    parser.add_argument(
        "--keep", action="store_true", help="Keep the temporary directory and print its path."
    )
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="laneway-tour-"))
    started = time.perf_counter()
    tour: Tour | None = None
    try:
        commands = tour_commands(README.read_text("utf-8"))
        workdir, bindir = prepare(args, root)
        tour = Tour(workdir, clean_env(bindir), args.fresh, args.slack, free_port())
        for command in commands:
            tour.run(command)
        tour.stop_server()
    except TourFailure as exc:
        print(f"FAILED {exc}", file=sys.stderr)
        return 1
    finally:
        if tour is not None:
            with contextlib.suppress(TourFailure):
                tour.stop_server()
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    report(tour, time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
