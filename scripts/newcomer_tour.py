#!/usr/bin/env python3
"""The README's tour, run as a newcomer runs it, on this checkout.

    python scripts/newcomer_tour.py                      # the `laneway` next to this Python
    python scripts/newcomer_tour.py --laneway .venv/bin/laneway --keep

Every command runs in a fresh temporary directory, with no provider key and no LANEWAY_*
variable in its environment, as on a fresh machine: `laneway --help`; the full example
config refused at once with every missing key named and nothing created;
`laneway serve --config examples/local.yaml` (no keys at all); a first request with the
openai SDK; `model: "auto"` sending an easy and a hard prompt to different tiers;
`usage --by tier` with the saving; `audit` (whole ids, tier, score, one request, an unknown
one); keys refused without a master key, then created, enforced, revoked and listed as
revoked on a gateway with LANEWAY_MASTER_KEY; `policy check`; `catalog list`;
`advise examples/workload.yaml`; `eval run basics` on the embedded model.

It fails (exit 1, naming the step) on any traceback, any step slower than its budget, or
any output that contradicts the README. Needs the `local` extra (the embedded model) and
the `openai` package (the `test` extra).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MASTER_KEY = "lw-master-newcomer-tour"
EASY = "What is 2+2?"
HARD = (
    "Prove that there are infinitely many primes, then write a Python function that "
    "returns the n-th prime efficiently."
)


class TourFailure(Exception):
    """A step failed: what the README promised and what happened instead."""


@dataclass
class Step:
    name: str
    budget_s: float
    seconds: float = 0.0


@dataclass
class Tour:
    laneway: list[str]
    workdir: Path
    slack: float = 1.0
    steps: list[Step] = field(default_factory=list)
    server: subprocess.Popen[bytes] | None = None
    server_log: Path | None = None
    port: int = 0

    # -- running things --------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        """This machine's environment without provider keys or LANEWAY_* variables."""
        keys = ("_API_KEY", "_TOKEN")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("LANEWAY_") and not k.endswith(keys)
        }
        env.update({"COLUMNS": "200", "NO_COLOR": "1", **extra})
        return env

    @contextlib.contextmanager
    def step(self, name: str, budget_s: float) -> Iterator[Step]:
        step = Step(name, budget_s * self.slack)
        start = time.perf_counter()
        print(f"-- {name}", flush=True)
        try:
            yield step
        except TourFailure as exc:
            raise TourFailure(f"{name}: {exc}") from None
        step.seconds = time.perf_counter() - start
        self.steps.append(step)
        if step.seconds > step.budget_s:
            raise TourFailure(f"{name}: took {step.seconds:.1f} s, budget {step.budget_s:.1f} s")

    def laneway_run(
        self, *args: str, code: int = 0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``laneway ARGS`` in the work directory; its exit code must be ``code`` and
        nothing may print a traceback."""
        result = subprocess.run(
            [*self.laneway, *args],
            cwd=self.workdir,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        shown = f"`laneway {' '.join(args)}`"
        output = f"\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        expect(
            "Traceback (most recent call last)" not in result.stdout + result.stderr,
            f"{shown} printed a traceback{output}",
        )
        expect(result.returncode == code, f"{shown} exited {result.returncode}{output}")
        return result

    # -- the gateway -------------------------------------------------------------------
    def start_server(self, config: Path, ready_budget_s: float, **extra_env: str) -> None:
        self.port = free_port()
        self.server_log = self.workdir / f"serve-{self.port}.log"
        log = self.server_log.open("wb")
        self.server = subprocess.Popen(
            [*self.laneway, "serve", "--config", str(config), "--port", str(self.port)],
            cwd=self.workdir,
            env=self.env(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + ready_budget_s * self.slack
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise TourFailure(f"`laneway serve` exited {self.server.returncode}{self.log()}")
            ready = f"http://127.0.0.1:{self.port}/health/ready"
            with contextlib.suppress(OSError), urllib.request.urlopen(ready, timeout=2):
                return
            time.sleep(0.2)
        raise TourFailure(f"/health/ready not ready within {ready_budget_s} s{self.log()}")

    def stop_server(self) -> None:
        if self.server is None:
            return
        self.server.terminate()
        try:
            self.server.wait(20)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait(5)
        self.server = None
        expect("Traceback" not in self.log(), f"`laneway serve` printed a traceback{self.log()}")

    def log(self) -> str:
        if self.server_log is None or not self.server_log.exists():
            return ""
        return "\nserver log:\n" + self.server_log.read_text("utf-8", "replace")[-4000:]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise TourFailure(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def chat(tour: Tour, model: str, prompt: str, api_key: str = "unused") -> Any:
    """One non-streaming request through the official openai SDK; the raw response
    (``.headers``, ``.parse()``)."""
    from openai import OpenAI

    with OpenAI(base_url=tour.base_url, api_key=api_key, max_retries=0, timeout=120) as client:
        return client.chat.completions.with_raw_response.create(
            model=model,
            max_tokens=16,
            temperature=0,
            messages=[{"role": "user", "content": prompt}],
        )


def refused(tour: Tour, api_key: str) -> bool:
    """True when the gateway answers 401 invalid_api_key for this key."""
    import openai

    try:
        chat(tour, "local", EASY, api_key=api_key)
    except openai.AuthenticationError as exc:
        return exc.code == "invalid_api_key"
    return False


def eventually(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
    return True


# -- the tour -------------------------------------------------------------------------------
def first_steps(tour: Tour) -> None:
    with tour.step("laneway --help", 2):
        out = tour.laneway_run("--help").stdout
        for command in ("serve", "usage", "audit", "keys", "eval", "advise"):
            expect(command in out, f"`laneway --help` does not list {command!r}")
    with tour.step("the full example without keys: refused at once, nothing created", 5):
        err = tour.laneway_run(
            "serve", "--config", str(REPO / "examples" / "laneway.yaml"), code=1
        ).stderr
        expect(err.startswith("error: environment variables not set: "), err)
        for named in ("OPENAI_API_KEY (gpt)", "ANTHROPIC_API_KEY (claude)", "TOGETHER_API_KEY"):
            expect(named in err, f"the refusal does not name {named}: {err}")
        expect("Laneway gateway" not in err, f"a banner before the refusal: {err}")
        expect(not (tour.workdir / "laneway.db").exists(), "laneway.db was created")


def requests(tour: Tour) -> list[str]:
    """The first request and two ``auto`` ones; their request ids."""
    with tour.step("laneway serve --config examples/local.yaml (no keys)", 90):
        tour.start_server(REPO / "examples" / "local.yaml", 90)
    with tour.step("first request (openai SDK, model local)", 20):
        raw = chat(tour, "local", EASY)
        answer = raw.parse()
        expect(bool(answer.choices[0].message.content), "an empty answer")
        expect(raw.headers.get("x-laneway-deployment") == "local", str(raw.headers))
        expect(raw.headers.get("x-laneway-cost-usd") == "0", "the embedded model is not $0")
        ids = [raw.headers["x-laneway-request-id"]]
    for prompt, tier in ((EASY, "standard"), (HARD, "complex")):
        with tour.step(f"model auto, {'an easy' if prompt == EASY else 'a hard'} prompt", 20):
            raw = chat(tour, "auto", prompt)
            got = raw.headers.get("x-laneway-tier")
            expect(got == tier, f"auto sent {prompt!r} to tier {got!r}, not {tier!r}")
            score = float(raw.headers["x-laneway-route-score"])
            expect(0 <= score <= 1, f"route score {score}")
            ids.append(raw.headers["x-laneway-request-id"])
    return ids


def reports(tour: Tour, ids: list[str]) -> None:
    config = ("--config", str(REPO / "examples" / "local.yaml"))
    with tour.step("laneway usage --by tier", 5):
        out = tour.laneway_run("usage", "--by", "tier", "--since", "all", *config).stdout
        for tier in ("standard", "complex"):
            expect(f"\n {tier}" in out or f"\n{tier}" in out, f"no {tier} row:\n{out}")
        expect("saved $0.0000" in out, f"no saving line:\n{out}")
        expect("None" not in out, f"'None' in the report:\n{out}")
    with tour.step("laneway audit", 5):
        out = tour.laneway_run("audit", "--since", "all", *config).stdout
        for request_id in ids:
            expect(request_id in out, f"audit does not show the whole id {request_id}:\n{out}")
        header = out.splitlines()[0]
        expect("tier" in header and "score" in header, f"no tier/score columns:\n{out}")
    with tour.step("laneway audit --request (known, unknown)", 5):
        out = tour.laneway_run("audit", "--request", ids[-1], *config).stdout
        expect(ids[-1] in out and "complex" in out, out)
        err = tour.laneway_run("audit", "--request", "nope", *config, code=1).stderr
        expect(err == "error: no request 'nope' in the ledger\n", err)


def keys(tour: Tour) -> None:
    config = ("--config", str(REPO / "examples" / "local.yaml"))
    with tour.step("keys create without LANEWAY_MASTER_KEY: refused", 5):
        err = tour.laneway_run("keys", "create", "--name", "team-a", *config, code=1).stderr
        expect("LANEWAY_MASTER_KEY is not set" in err and "--force" in err, err)
    tour.stop_server()
    master = tour.env(LANEWAY_MASTER_KEY=MASTER_KEY)
    # the same ledger (./laneway.db), one embedded lane: a quicker start
    one_lane = tour.workdir / "laneway.yaml"
    one_lane.write_text(
        "deployments:\n"
        "  - {name: local, model: smollm2-135m-instruct, provider: local, hourly_cost_usd: 0}\n"
        "tiers: {simple: [local]}\n"
    )
    config = ("--config", str(one_lane))
    with tour.step("laneway serve with LANEWAY_MASTER_KEY", 60):
        tour.start_server(one_lane, 60, LANEWAY_MASTER_KEY=MASTER_KEY)
    with tour.step("keys create, enforced", 30):
        created = tour.laneway_run(
            "keys", "create", "--name", "team-a", "--budget-usd", "5", *config, env=master
        )
        secret = created.stdout.strip()
        expect(secret.startswith("lw-"), created.stdout)
        expect(refused(tour, "unused"), "a request without a key was served")
        expect(chat(tour, "local", EASY, api_key=secret).parse().choices[0].message.content,
               "the key was refused")  # fmt: skip
    with tour.step("keys revoke, keys list", 30):
        tour.laneway_run("keys", "revoke", "team-a", *config, env=master)
        expect(eventually(lambda: refused(tour, secret), 5), "a revoked key still works")
        out = tour.laneway_run("keys", "list", *config, env=master).stdout
        row = [line for line in out.splitlines() if "team-a" in line]
        expect(len(row) == 1 and "revoked" in row[0], f"keys list:\n{out}")
    tour.stop_server()


def governance_and_advice(tour: Tour) -> None:
    config = ("--config", str(REPO / "examples" / "local.yaml"))
    with tour.step("laneway policy check", 5):
        out = tour.laneway_run("policy", "check", *config).stdout
        expect("local-brief" in out and "pass" in out, out)
    with tour.step("laneway catalog list", 5):
        out = tour.laneway_run("catalog", "list").stdout
        expect("smollm2-135m-instruct" in out, out[-2000:])
    with tour.step("laneway advise examples/workload.yaml", 15):
        out = tour.laneway_run("advise", str(REPO / "examples" / "workload.yaml")).stdout
        expect("support-platform" in out, out[-2000:])
    with tour.step("laneway eval run basics --models local", 60):
        out_dir = tour.workdir / "evals"
        out = tour.laneway_run(
            "eval", "run", "basics", "--models", "local", "--out", str(out_dir)
        ).stdout
        expect("local" in out, out)
        reports = sorted(p.suffix for p in out_dir.iterdir())
        expect(reports == [".html", ".json"], f"eval run --out wrote {reports}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--laneway",
        default=str(Path(sys.executable).with_name("laneway")),
        help="The laneway command to run (default: the one next to this Python).",
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
    workdir = Path(tempfile.mkdtemp(prefix="laneway-tour-"))
    tour = Tour(laneway=[args.laneway], workdir=workdir, slack=args.slack)
    started = time.perf_counter()
    try:
        first_steps(tour)
        ids = requests(tour)
        reports(tour, ids)
        keys(tour)
        governance_and_advice(tour)
    except TourFailure as exc:
        print(f"FAILED {exc}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(TourFailure):
            tour.stop_server()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.perf_counter() - started
    print(json.dumps({s.name: round(s.seconds, 2) for s in tour.steps}, indent=2))
    print(f"tour passed: {len(tour.steps)} steps in {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
