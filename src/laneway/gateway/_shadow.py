"""Shadow traffic: a sample of answered requests is copied to candidate deployments after
the primary answered, off the client's path (the client's bytes and latency do not
change), to compare them in ``laneway shadow report``.

``offer`` runs when a request is recorded: a few comparisons, then at most one queue put.
The queue is bounded; a full queue drops the copy (``laneway_shadow_copies{outcome=
"dropped"}``). With ``shadow.process: separate`` (and ``auto``, the default, on a machine
with a core to spare beyond the workers and one more) the gateway's loop only pickles each
queued copy and pipes it to a sender process (``_shadow_link``, ``_shadow_sender``) running
at ``sender_nice`` (19: it gets the CPU time the clients leave), which runs this same mirror
inline; with ``inline`` (and ``auto`` without a spare core, with a database no other process
can open, a gateway built with injected parts, or an embedded candidate, which the sender
would load a second time) the workers below run on the gateway's own loop. Copies on the
gateway's own loop wait while that loop is busy serving clients (its timers late by more
than ``shadow.inline_max_lag_ms``): a copy costs the clients about as much CPU as a request,
so they go first, and what the full queue cannot hold is shed (``outcome="shed"``). Worker
tasks send each copy to the rule's candidates, governed as live traffic would be: a
sensitive request goes only to private candidates (or nowhere, per the rule), policy and
kill switches apply, and each rule has a daily spend cap (per gateway worker process). The
sender reports its outcomes (sent, failed, skipped_*) to the gateway's metrics; the copies a
dead sender held, or a sender killed after ``shadow.drain_s`` at shutdown, are counted
``lost``. Key budgets are never charged. Each copy is a ledger row with ``source=shadow``
and ``mirror_of`` = the primary's request id, and a ``shadow_pairs`` row with both answers
(the prompt stored with detected sensitive values replaced by placeholders).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import os
import pickle
import random
import time
from collections import Counter
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import orjson
import sqlalchemy as sa

from laneway.errors import LanewayError
from laneway.gateway._shadow_link import SenderLink
from laneway.governance import (
    PRIVATE_HOSTING,
    Admission,
    Governance,
    redact_request,
    redact_text,
)
from laneway.ledger import LedgerRow, LedgerWriter, UtcDateTime, check_database_file, usd_to_nusd
from laneway.providers import ChatModel, ChatRequest, ChatResult, Usage
from laneway.resilience import Trace
from laneway.settings import Settings, ShadowRule, ShadowSettings

__all__ = ["SHADOW_PAIRS", "ShadowJob", "ShadowMirror", "loop_lag"]


# What the mirror needs of the gateway and of one request: structural types, so that this
# module depends on neither the HTTP layer nor the request path's concrete classes.
class _Deployment(Protocol):
    hosting: str

    @property
    def adapter(self) -> ChatModel: ...
    @property
    def model_id(self) -> str: ...


class _Metrics(Protocol):
    @property
    def shadow(self) -> MutableMapping[tuple[str, str], int]: ...


class _Gateway(Protocol):
    @property
    def settings(self) -> Settings: ...
    @property
    def deployments(self) -> Mapping[str, _Deployment]: ...
    @property
    def metrics(self) -> _Metrics: ...
    @property
    def governance(self) -> Governance: ...
    @property
    def ledger(self) -> LedgerWriter | None: ...
    def cost_of(self, deployment: str | None, usage: Usage | None) -> Decimal | None: ...
    def new_request_id(self) -> str: ...


class _Resolution(Protocol):
    @property
    def tier(self) -> str | None: ...
    @property
    def reason(self) -> str: ...


class _Context(Protocol):
    @property
    def request_id(self) -> str: ...
    @property
    def started(self) -> float: ...
    @property
    def requested_model(self) -> str: ...
    @property
    def key_id(self) -> str | None: ...
    @property
    def source(self) -> str: ...
    @property
    def resolution(self) -> _Resolution | None: ...
    @property
    def trace(self) -> Trace: ...
    @property
    def request(self) -> ChatRequest | None: ...
    @property
    def admission(self) -> Admission | None: ...
    @property
    def estimated_usage(self) -> Usage | None: ...
    @property
    def task(self) -> str | None: ...


log = logging.getLogger("laneway.shadow")


def _pairs_table() -> sa.Table:
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    return sa.Table(
        "shadow_pairs",
        sa.MetaData(),
        sa.Column("id", big_id, primary_key=True),
        sa.Column("request_id", sa.Text, nullable=False),
        sa.Column("ts", UtcDateTime(), nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("task", sa.Text),
        sa.Column("prompt", sa.JSON, nullable=False),
        sa.Column("primary_deployment", sa.Text),
        sa.Column("primary_model", sa.Text),
        sa.Column("primary_output", sa.Text),
        sa.Column("primary_latency_ms", sa.Float),
        sa.Column("primary_cost_nusd", sa.BigInteger),
        sa.Column("primary_tokens", sa.Integer),
        sa.Column("candidate", sa.Text, nullable=False),
        sa.Column("candidate_model", sa.Text),
        sa.Column("candidate_output", sa.Text),
        sa.Column("candidate_error", sa.Text),
        sa.Column("candidate_latency_ms", sa.Float),
        sa.Column("candidate_cost_nusd", sa.BigInteger),
        sa.Column("candidate_tokens", sa.Integer),
        sa.Column("verdict", sa.Text),
        sa.Column("judge", sa.Text),
        sa.Column("judge_prompt_version", sa.Text),
        sa.Column("human_verdict", sa.Text),  # a person's, from `laneway shadow review`
        sa.Column("human_shown_as", sa.Text),  # the side the candidate was shown on
    )


SHADOW_PAIRS = _pairs_table()
# What a copy writes (the verdicts come later), in the order of ShadowMirror._pair_values.
_PAIR_COLUMNS = (
    "request_id",
    "ts",
    "rule",
    "task",
    "prompt",
    "primary_deployment",
    "primary_model",
    "primary_output",
    "primary_latency_ms",
    "primary_cost_nusd",
    "primary_tokens",
    "candidate",
    "candidate_model",
    "candidate_output",
    "candidate_error",
    "candidate_latency_ms",
    "candidate_cost_nusd",
    "candidate_tokens",
)
_PAIR_INSERT = (  # fixed column names, values bound as parameters
    f"INSERT INTO shadow_pairs ({', '.join(_PAIR_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' for _ in _PAIR_COLUMNS)})"
)


_request_values = operator.attrgetter(*(f.name for f in fields(ChatRequest)))

# What offer() queues: the rule, the request's context, its result, output and cost, and
# when it was answered (perf_counter); the worker turns it into a ShadowJob.
_Offered = tuple[ShadowRule, _Context, ChatResult | None, str | None, Any, float]


@dataclass(slots=True)
class ShadowJob:
    rule: ShadowRule
    request_id: str
    request: ChatRequest
    admission: Admission | None
    key_id: str | None
    task: str | None
    primary_deployment: str | None
    primary_model: str | None
    primary_output: str | None
    primary_latency_ms: float
    primary_cost: Decimal | None
    primary_tokens: int | None


def spare_core(workers: int) -> bool:
    """Whether this machine has a core beyond the gateway's workers and one more (the
    database, the OS): only there does a sender process take the copies' CPU off the
    workers. On 2 cores with one worker it cost the clients more than copies on the worker's
    own loop (benchmarks/shadow.py: +1.37 against +0.79 ms p50 at c=16, 10%)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return cores >= workers + 2


async def loop_lag(probe_s: float = 0.005) -> float:
    """How late (seconds) a timer of ``probe_s`` fires on this event loop: about zero on a
    loop with time to spare, most of a turn of the loop on one busy serving clients (its
    timers run only after the callbacks that were ready)."""
    started = time.perf_counter()
    await asyncio.sleep(probe_s)
    return max(0.0, time.perf_counter() - started - probe_s)


class ShadowMirror:
    def __init__(
        self,
        settings: ShadowSettings,
        engine: sa.Engine,
        gateway: _Gateway,
        *,
        portable: bool = True,
    ) -> None:
        """``portable``: another process can build the same gateway from its settings (it
        was built without an injected environment, HTTP client, catalog or local model
        factory); ``process: auto`` sends copies from the gateway's loop when it is not."""
        self.rules = settings.rules
        self._portable = portable
        self._settings = settings
        self._engine = engine
        self._gateway = gateway
        self._queue: asyncio.Queue[_Offered | ShadowJob] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._spent: dict[str, Decimal] = {}
        self._day = -1
        self._random = random.random
        self._pairs: list[tuple[Any, ...]] = []  # written in batches by _flush_pairs
        self._sqlite = engine is not None and engine.dialect.name == "sqlite"
        self._flusher: asyncio.Task[None] | None = None
        self._by_name = {rule.name: rule for rule in self.rules}
        self.done: Counter[str] = Counter()  # copies finished, per rule (the sender reports)
        self.link: SenderLink | None = None  # shadow.process: separate
        self.lag = loop_lag  # inline copies wait while it reads over inline_max_lag_ms
        self.holding = False  # an inline copy is waiting for the worker to be less busy
        self._probe = asyncio.Lock()  # one sending task at a time probes the loop
        self._idle_until = 0.0  # found idle: copies until then go without a probe

    def _sender_boot(self) -> bytes | None:
        """What the sender process builds itself from, or ``None`` when copies cannot be
        sent from another process (no database file it could open: in-memory SQLite)."""
        engine, process = self._engine, self._settings.process
        if engine is None or process == "inline":
            return None
        url = engine.url
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            return None
        settings = self._gateway.settings
        if process == "auto":
            if not self._portable or not spare_core(settings.server.workers):
                return None
            deployments = self._gateway.deployments
            candidates = {name for rule in self.rules for name in rule.candidates}
            if any(deployments[name].hosting == "embedded" for name in candidates):
                return None
        return pickle.dumps((settings, url.render_as_string(hide_password=False)))

    def start(self) -> None:
        if not self.rules or self._workers or self.link is not None:
            return
        self._queue = asyncio.Queue(self._settings.queue)
        boot = self._sender_boot()
        if boot is not None:
            self.link = SenderLink(
                boot, self._queue, self.encode, self._gateway.metrics.shadow,
                self._settings.drain_s,
            )  # fmt: skip
            self.link.start()
            log.info(
                "shadow copies are sent by a sender process at nice %d", self._settings.sender_nice
            )
            return
        self._workers = [
            asyncio.create_task(self._work(), name=f"laneway-shadow-{i}")
            for i in range(self._settings.workers)
        ]
        self._flusher = asyncio.create_task(self._flush_pairs(), name="laneway-shadow-pairs")

    async def stop(self) -> None:
        if self.link is not None:
            link, self.link = self.link, None
            await link.stop()
            self._queue = None
            return
        await self._drain_inline()
        for task in self._workers:
            task.cancel()
        if self._flusher is not None:
            self._flusher.cancel()
        tasks = [*self._workers, *([self._flusher] if self._flusher is not None else [])]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._workers, self._flusher = [], None
        if self._pairs:  # what was still waiting to be written
            batch, self._pairs = self._pairs, []
            await asyncio.to_thread(self._write_pairs, batch)

    async def _drain_inline(self) -> None:
        """At shutdown: ``shadow.drain_s`` for the copies queued on this loop to be sent;
        those still queued after it are counted ``lost``."""
        queue = self._queue
        if queue is None or not self._workers:
            return
        if self._settings.drain_s > 0:  # queued and in flight: join waits for both
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.join(), self._settings.drain_s)
        while not queue.empty():
            left = queue.get_nowait()
            rule = left.rule if isinstance(left, ShadowJob) else left[0]
            self._gateway.metrics.shadow[rule.name, "lost"] += 1
            queue.task_done()

    # -- on the request path -----------------------------------------------------------
    def draw(self, ctx: _Context) -> tuple[ShadowRule, ...]:
        """The rules that sample and match this request: one random draw per rule (the draw
        comes first: most requests are not sampled and stop there). A stream draws once it
        is routed, so that only a sampled stream keeps its text for the copy."""
        if self._queue is None or ctx.source != "api" or ctx.request is None:
            return ()
        return tuple(
            rule
            for rule in self.rules
            if self._random() < rule.sample_rate and self._matches(rule, ctx)
        )

    def offer(
        self,
        ctx: _Context,
        result: ChatResult | None,
        output: str | None,
        cost: Any,
        drawn: tuple[ShadowRule, ...] | None = None,
    ) -> None:
        """Queue copies of an answered request for every rule that samples and matches it
        (``drawn``, when :meth:`draw` already ran for it).

        The client's path pays for the draws, and for a sampled one a clock read and one
        queue put of what the worker needs; the job is built off the path."""
        queue = self._queue
        if queue is None or ctx.source != "api" or ctx.request is None:
            return
        for rule in self.draw(ctx) if drawn is None else drawn:
            try:
                queue.put_nowait((rule, ctx, result, output, cost, time.perf_counter()))
            except asyncio.QueueFull:
                outcome = "shed" if self.holding else "dropped"
                self._gateway.metrics.shadow[rule.name, outcome] += 1

    # -- between the gateway and the sender process ------------------------------------
    def encode(self, offered: _Offered) -> tuple[str, bytes]:
        """A queued copy as the sender's frame: its rule's name and the pickled job, in
        plain values (pickling the request's dataclass itself costs ~4x more), the
        admission reduced to its ``sensitive`` flag (the only part a copy uses)."""
        rule, ctx, result, output, cost, answered = offered
        usage = (result.usage if result is not None else None) or ctx.estimated_usage
        admission = ctx.admission
        wire = (
            rule.name,
            ctx.request_id,
            _request_values(ctx.request),
            admission is not None and admission.sensitive,
            ctx.key_id,
            ctx.task,
            ctx.trace.served_by,
            result.model if result is not None else None,
            output,
            (answered - ctx.started) * 1000.0,
            str(cost) if isinstance(cost, Decimal) else None,
            usage.completion_tokens if usage is not None else None,
        )
        return rule.name, pickle.dumps(wire, pickle.HIGHEST_PROTOCOL)

    def decode(self, frame: bytes) -> ShadowJob:
        """The sender's side of :meth:`encode`."""
        wire = pickle.loads(frame)  # noqa: S301 - from the gateway that started the sender
        rule, request_id, values, sensitive, key_id, task = wire[:6]
        deployment, model, output, latency_ms, cost, tokens = wire[6:]
        return ShadowJob(
            rule=self._by_name[rule],
            request_id=request_id,
            request=ChatRequest(*values),
            admission=Admission(sensitive=True, action="self_hosted_only") if sensitive else None,
            key_id=key_id,
            task=task,
            primary_deployment=deployment,
            primary_model=model,
            primary_output=output,
            primary_latency_ms=latency_ms,
            primary_cost=Decimal(cost) if cost is not None else None,
            primary_tokens=tokens,
        )

    async def submit(self, job: ShadowJob) -> None:
        """Queue a job built elsewhere (the sender process); waits while the queue is full."""
        assert self._queue is not None
        await self._queue.put(job)

    @staticmethod
    def _job(offered: _Offered | ShadowJob) -> ShadowJob:
        if isinstance(offered, ShadowJob):
            return offered
        rule, ctx, result, output, cost, answered = offered
        usage = (result.usage if result is not None else None) or ctx.estimated_usage
        assert ctx.request is not None  # offer() queues only requests that have one
        return ShadowJob(
            rule=rule,
            request_id=ctx.request_id,
            request=ctx.request,
            admission=ctx.admission,
            key_id=ctx.key_id,
            task=ctx.task,
            primary_deployment=ctx.trace.served_by,
            primary_model=result.model if result is not None else None,
            primary_output=output,
            primary_latency_ms=(answered - ctx.started) * 1000.0,
            primary_cost=cost if isinstance(cost, Decimal) else None,
            primary_tokens=usage.completion_tokens if usage is not None else None,
        )

    @staticmethod
    def _matches(rule: ShadowRule, ctx: _Context) -> bool:
        match = rule.match
        resolution = ctx.resolution
        if match.model is not None and ctx.requested_model not in match.model:
            return False
        if match.tier is not None and (resolution is None or resolution.tier not in match.tier):
            return False
        if match.key is not None and ctx.key_id not in match.key:
            return False
        if match.reason is not None:
            reason = resolution.reason if resolution is not None else ""
            if not any(reason.startswith(prefix) for prefix in match.reason):
                return False
        return True

    # -- off the request path ------------------------------------------------------------
    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            offered = await self._queue.get()
            try:
                await self._until_idle()
                job = self._job(offered)
                for candidate in job.rule.candidates:
                    await self._mirror(job, candidate)
            except Exception:  # a shadow copy must never take the worker down
                log.exception("shadow copy failed")
            finally:
                rule = offered.rule if isinstance(offered, ShadowJob) else offered[0]
                self.done[rule.name] += 1
                self._queue.task_done()

    async def _until_idle(self) -> None:
        """Wait while the worker's loop is busy serving clients: two timers in a row late
        by more than ``inline_max_lag_ms`` (a copy on this loop costs its clients about as
        much CPU as a request). One sending task probes at a time, and a probe that finds
        the loop idle lets the copies of the next 10 ms go; the queue holds the rest."""
        limit_ms = self._settings.inline_max_lag_ms
        if limit_ms is None:
            return
        limit = limit_ms / 1000
        async with self._probe:
            if time.monotonic() < self._idle_until:
                return
            while await self.lag() > limit or await self.lag() > limit:
                self.holding = True
                await asyncio.sleep(0.05)
            self.holding = False
            self._idle_until = time.monotonic() + 0.01  # as long as the probe took

    async def drain(self) -> None:
        """Wait until every queued copy was sent (tests, shutdown)."""
        if self.link is not None:
            await self.link.drain()
        elif self._queue is not None:
            await self._queue.join()

    def _skip_reason(self, job: ShadowJob, candidate: str) -> str | None:
        gateway = self._gateway
        deployment = gateway.deployments[candidate]
        admission = job.admission
        sensitive = admission is not None and admission.sensitive
        if sensitive and (
            job.rule.sensitive == "skip" or deployment.hosting not in PRIVATE_HOSTING
        ):
            return "skipped_sensitive"
        probe = Admission(key=None, sensitive=sensitive, action="self_hosted_only")
        try:
            gateway.governance.filter([candidate], None, candidate, probe)
        except LanewayError:
            return "skipped_policy"
        day = int(time.time() // 86400)
        if day != self._day:
            self._day, self._spent = day, {}
        if self._spent.get(job.rule.name, Decimal(0)) >= job.rule.daily_budget_usd:
            return "skipped_budget"
        return None

    async def _mirror(self, job: ShadowJob, candidate: str) -> None:
        gateway = self._gateway
        metrics = gateway.metrics.shadow
        skip = self._skip_reason(job, candidate)
        if skip is not None:
            metrics[job.rule.name, skip] += 1
            return
        deployment = gateway.deployments[candidate]
        request = replace(job.request, stream=False, model=deployment.model_id)
        started = time.perf_counter()
        result: ChatResult | None = None
        error: LanewayError | None = None
        try:
            deployment.adapter.check(request)
            result = await deployment.adapter.complete(request)
        except LanewayError as exc:
            error = exc
        latency = (time.perf_counter() - started) * 1000.0
        cost = gateway.cost_of(candidate, result.usage if result is not None else None)
        if cost is not None:
            self._spent[job.rule.name] = self._spent.get(job.rule.name, Decimal(0)) + cost
        metrics[job.rule.name, "sent" if error is None else "failed"] += 1
        self._ledger(job, candidate, result, error, latency, cost)
        self._pairs.append(self._pair_values(job, candidate, result, error, latency, cost))

    async def _flush_pairs(self) -> None:
        """Write the collected pairs every 0.2 s in one batch, off the event loop (one
        insert per copy on a thread cost the worker's loop more than the copy itself)."""
        while True:
            await asyncio.sleep(0.2)
            if self._pairs:
                batch, self._pairs = self._pairs, []
                await asyncio.to_thread(self._write_pairs, batch)

    def _ledger(
        self,
        job: ShadowJob,
        candidate: str,
        result: ChatResult | None,
        error: LanewayError | None,
        latency: float,
        cost: Decimal | None,
    ) -> None:
        gateway = self._gateway
        if gateway.ledger is None:
            return
        deployment = gateway.deployments[candidate]
        usage = result.usage if result is not None else None
        gateway.ledger.record(
            LedgerRow(
                request_id=gateway.new_request_id(),
                attempt=0,
                ts=datetime.now(UTC),
                key_id=job.key_id,
                source="shadow",
                requested_model=job.request.model,
                deployment=candidate,
                hosting=deployment.hosting,
                model_id=deployment.model_id,
                prompt_tokens=usage.prompt_tokens if usage else None,
                completion_tokens=usage.completion_tokens if usage else None,
                cached_tokens=usage.cached_tokens if usage else None,
                cost_usd=cost,
                latency_ms=latency,
                status=200 if error is None else error.status,
                error_kind=error.code if error is not None else None,
                task=job.task,
                served_model=result.model if result is not None else None,
                mirror_of=job.request_id,
                audit={"shadow_rule": job.rule.name},
            )
        )

    def _pair_values(
        self,
        job: ShadowJob,
        candidate: str,
        result: ChatResult | None,
        error: LanewayError | None,
        latency: float,
        cost: Decimal | None,
    ) -> tuple[Any, ...]:
        """The pair's values in ``_PAIR_COLUMNS`` order; on SQLite already in storage form
        (the text datetime SQLAlchemy writes, JSON text), for the driver's executemany."""
        request = job.request
        primary_output = job.primary_output
        candidate_output = result.content if result is not None else None
        if job.admission is not None and job.admission.sensitive:
            # what is stored for judging and review: the prompt, and both answers (which
            # may repeat the values), with detected values replaced by placeholders
            scanner = self._gateway.governance.scanner
            request = redact_request(request, scanner)[0]
            if primary_output:
                primary_output = redact_text(primary_output, scanner)
            if candidate_output:
                candidate_output = redact_text(candidate_output, scanner)
        usage = result.usage if result is not None else None
        now = datetime.now(UTC)
        prompt = [dict(m) for m in request.messages]
        return (
            job.request_id,
            now.isoformat(" ", "microseconds")[:26] if self._sqlite else now,
            job.rule.name,
            job.task,
            orjson.dumps(prompt).decode() if self._sqlite else prompt,
            job.primary_deployment,
            job.primary_model,
            primary_output,
            job.primary_latency_ms,
            usd_to_nusd(job.primary_cost),
            job.primary_tokens,
            candidate,
            result.model if result is not None else None,
            candidate_output,
            error.code if error is not None else None,
            latency,
            usd_to_nusd(cost),
            usage.completion_tokens if usage else None,
        )

    def _write_pairs(self, batch: list[tuple[Any, ...]]) -> None:
        """One batch in one transaction. On SQLite straight through the driver (as the
        ledger writer does): SQLAlchemy's per-value processing held the interpreter lock,
        which the event loop serving clients needs, for ~40% of a copy's cost."""
        try:
            if not self._sqlite:
                with self._engine.begin() as conn:
                    conn.execute(
                        SHADOW_PAIRS.insert(),
                        [dict(zip(_PAIR_COLUMNS, row, strict=True)) for row in batch],
                    )
                return
            raw = self._engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    cursor.executemany(_PAIR_INSERT, batch)
                    check_database_file(raw)  # not into a deleted or replaced file
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
                cursor.close()
            finally:
                raw.close()
        except Exception as exc:  # a lost pair must never matter to live traffic
            log.error("could not store %d shadow pairs: %s", len(batch), type(exc).__name__)
