"""Run records: database rows (``eval_runs``, ``eval_results``, ``eval_pairs``, created by
ledger migration 2; ``served_model`` and ``fingerprint`` added by migration 5) and the
versioned JSON export.

Results are keyed by (run, case, model, repeat). A result is written in its own small
transaction (batched), so a crash mid-run loses at most the unflushed batch and never
leaves a half-written row; a resumed run skips the keys already stored without an error
and replaces the error rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from laneway.errors import ConfigError
from laneway.evals._files import write_atomic
from laneway.ledger import UtcDateTime, nusd_to_usd, usd_to_nusd

__all__ = [
    "EXPORT_FORMAT",
    "FORMAT_VERSION",
    "PAIRS",
    "RESULTS",
    "RUNS",
    "LoadedRun",
    "PairVerdict",
    "ResultRow",
    "RunInfo",
    "RunRecord",
    "load_run",
    "write_export",
]

FORMAT_VERSION = 1
EXPORT_FORMAT = "laneway.eval-run"

_META = sa.MetaData()
RUNS = sa.Table(
    "eval_runs",
    _META,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("suite_name", sa.Text, nullable=False),
    sa.Column("suite_digest", sa.Text, nullable=False),
    sa.Column("suite", sa.JSON, nullable=False),
    sa.Column("models", sa.JSON, nullable=False),
    sa.Column("repeats", sa.Integer, nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("format_version", sa.Integer, nullable=False),
)
RESULTS = sa.Table(
    "eval_results",
    _META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("case_id", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("repeat", sa.Integer, nullable=False),
    sa.Column("ts", UtcDateTime(), nullable=False),
    sa.Column("request_id", sa.Text),
    sa.Column("deployment", sa.Text),
    sa.Column("model_id", sa.Text),
    sa.Column("output", sa.Text),
    sa.Column("error_code", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("passed", sa.Boolean),
    sa.Column("score", sa.Float),
    sa.Column("checks", sa.JSON),
    sa.Column("latency_ms", sa.Float),
    sa.Column("ttft_ms", sa.Float),
    sa.Column("prompt_tokens", sa.Integer),
    sa.Column("completion_tokens", sa.Integer),
    sa.Column("cost_nusd", sa.BigInteger),
    sa.Column("served_model", sa.Text),
    sa.Column("fingerprint", sa.Text),
)
PAIRS = sa.Table(
    "eval_pairs",
    _META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("case_id", sa.Text, nullable=False),
    sa.Column("model_a", sa.Text, nullable=False),
    sa.Column("model_b", sa.Text, nullable=False),
    sa.Column("rater", sa.Text, nullable=False),
    sa.Column("winner", sa.Text, nullable=False),
    sa.Column("detail", sa.JSON),
    sa.Column("ts", UtcDateTime(), nullable=False),
)


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    created_at: datetime
    status: str
    suite: dict[str, Any]
    suite_digest: str
    models: tuple[str, ...]
    repeats: int
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One answer of one candidate to one case (one repeat). ``error_code`` set means
    the call failed (not a completed result: a resumed run calls it again)."""

    case_id: str
    model: str
    repeat: int
    output: str | None
    passed: bool | None
    score: float | None
    checks: tuple[dict[str, Any], ...] = ()
    latency_ms: float | None = None
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: Decimal | None = None
    deployment: str | None = None
    model_id: str | None = None
    request_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    served_model: str | None = None  # the model id the upstream reported
    fingerprint: str | None = None  # the upstream's system_fingerprint

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.case_id, self.model, self.repeat)

    def to_json(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__slots__}
        out["checks"] = list(self.checks)
        out["cost_usd"] = None if self.cost_usd is None else str(self.cost_usd)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResultRow:
        values = dict(data)
        cost = values.get("cost_usd")
        values["cost_usd"] = None if cost is None else Decimal(str(cost))
        values["checks"] = tuple(values.get("checks") or ())
        return cls(**values)


@dataclass(frozen=True, slots=True)
class PairVerdict:
    case_id: str
    model_a: str
    model_b: str
    rater: str  # "judge" or "human"
    winner: str  # "a", "b" or "tie"
    detail: dict[str, Any] = field(default_factory=dict)


def _result_params(run_id: str, row: ResultRow) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "case_id": row.case_id,
        "model": row.model,
        "repeat": row.repeat,
        "ts": datetime.now(UTC),
        "request_id": row.request_id,
        "deployment": row.deployment,
        "model_id": row.model_id,
        "output": row.output,
        "error_code": row.error_code,
        "error": row.error,
        "passed": row.passed,
        "score": row.score,
        "checks": list(row.checks),
        "latency_ms": row.latency_ms,
        "ttft_ms": row.ttft_ms,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "cost_nusd": usd_to_nusd(row.cost_usd),
        "served_model": row.served_model,
        "fingerprint": row.fingerprint,
    }


def _row_from(values: Any) -> ResultRow:
    return ResultRow(
        case_id=values["case_id"],
        model=values["model"],
        repeat=values["repeat"],
        output=values["output"],
        passed=values["passed"],
        score=values["score"],
        checks=tuple(values["checks"] or ()),
        latency_ms=values["latency_ms"],
        ttft_ms=values["ttft_ms"],
        prompt_tokens=values["prompt_tokens"],
        completion_tokens=values["completion_tokens"],
        cost_usd=nusd_to_usd(values["cost_nusd"]),
        deployment=values["deployment"],
        model_id=values["model_id"],
        request_id=values["request_id"],
        error_code=values["error_code"],
        error=values["error"],
        served_model=values.get("served_model"),
        fingerprint=values.get("fingerprint"),
    )


class RunRecord:
    """The stored record of one run in the database."""

    def __init__(self, engine: sa.Engine, run_id: str) -> None:
        self.engine = engine
        self.run_id = run_id

    @classmethod
    def create(cls, engine: sa.Engine, info: RunInfo) -> RunRecord:
        """Insert the run's row; ``ConfigError`` when the id is taken."""
        now = datetime.now(UTC)
        try:
            cls._insert(engine, info, now)
        except sa.exc.IntegrityError:
            raise ConfigError(run_exists_message(info.run_id)) from None
        return cls(engine, info.run_id)

    @staticmethod
    def _insert(engine: sa.Engine, info: RunInfo, now: datetime) -> None:
        with engine.begin() as conn:
            conn.execute(
                RUNS.insert().values(
                    run_id=info.run_id,
                    created_at=now,
                    updated_at=now,
                    status=info.status,
                    suite_name=str(info.suite.get("name", "")),
                    suite_digest=info.suite_digest,
                    suite=info.suite,
                    models=list(info.models),
                    repeats=info.repeats,
                    config=info.config,
                    format_version=FORMAT_VERSION,
                )
            )

    def exists(self) -> bool:
        query = sa.select(RUNS.c.run_id).where(RUNS.c.run_id == self.run_id)
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def info(self) -> RunInfo:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(RUNS).where(RUNS.c.run_id == self.run_id)).first()
        if row is None:
            raise ConfigError(f"no eval run {self.run_id!r} in this database")
        m = row._mapping
        return RunInfo(
            run_id=m["run_id"],
            created_at=m["created_at"],
            status=m["status"],
            suite=m["suite"],
            suite_digest=m["suite_digest"],
            models=tuple(m["models"]),
            repeats=m["repeats"],
            config=m["config"],
        )

    def set_status(self, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                RUNS.update()
                .where(RUNS.c.run_id == self.run_id)
                .values(status=status, updated_at=datetime.now(UTC))
            )

    def completed_keys(self) -> set[tuple[str, str, int]]:
        """Keys of results stored without an error (not to be run again)."""
        query = sa.select(RESULTS.c.case_id, RESULTS.c.model, RESULTS.c.repeat).where(
            RESULTS.c.run_id == self.run_id, RESULTS.c.error_code.is_(None)
        )
        with self.engine.connect() as conn:
            return {(r[0], r[1], r[2]) for r in conn.execute(query)}

    def write_results(self, rows: Sequence[ResultRow]) -> None:
        """Store ``rows`` in one transaction, replacing earlier rows with the same key."""
        if not rows:
            return
        connect = self.engine.connect().execution_options(laneway_begin="IMMEDIATE")
        with connect as conn, conn.begin():
            for row in rows:
                conn.execute(
                    RESULTS.delete().where(
                        RESULTS.c.run_id == self.run_id,
                        RESULTS.c.case_id == row.case_id,
                        RESULTS.c.model == row.model,
                        RESULTS.c.repeat == row.repeat,
                    )
                )
            conn.execute(RESULTS.insert(), [_result_params(self.run_id, r) for r in rows])

    def results(self, *, with_output: bool = True) -> Iterator[ResultRow]:
        """Stored results in key order, streamed from the database."""
        cols = [c for c in RESULTS.c if with_output or c.name != "output"]
        query = (
            sa.select(*cols)
            .where(RESULTS.c.run_id == self.run_id)
            .order_by(RESULTS.c.model, RESULTS.c.case_id, RESULTS.c.repeat)
        )
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=500).execute(query):
                values = dict(row._mapping)
                values.setdefault("output", None)
                yield _row_from(values)

    def save_pair(self, verdict: PairVerdict) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                PAIRS.delete().where(
                    PAIRS.c.run_id == self.run_id,
                    PAIRS.c.case_id == verdict.case_id,
                    PAIRS.c.model_a == verdict.model_a,
                    PAIRS.c.model_b == verdict.model_b,
                    PAIRS.c.rater == verdict.rater,
                )
            )
            conn.execute(
                PAIRS.insert().values(
                    run_id=self.run_id,
                    case_id=verdict.case_id,
                    model_a=verdict.model_a,
                    model_b=verdict.model_b,
                    rater=verdict.rater,
                    winner=verdict.winner,
                    detail=verdict.detail,
                    ts=datetime.now(UTC),
                )
            )

    def pairs(self, rater: str | None = None) -> list[PairVerdict]:
        query = sa.select(PAIRS).where(PAIRS.c.run_id == self.run_id).order_by(PAIRS.c.id)
        if rater is not None:
            query = query.where(PAIRS.c.rater == rater)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            PairVerdict(
                r["case_id"], r["model_a"], r["model_b"], r["rater"], r["winner"], r["detail"] or {}
            )
            for r in rows
        ]


def _export_dict(
    info: RunInfo, results: Iterable[ResultRow], pairs: Iterable[PairVerdict]
) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "version": FORMAT_VERSION,
        "run": {
            "run_id": info.run_id,
            "created_at": info.created_at.isoformat().replace("+00:00", "Z"),
            "status": info.status,
            "suite_digest": info.suite_digest,
            "models": list(info.models),
            "repeats": info.repeats,
            "config": info.config,
        },
        "suite": info.suite,
        "results": [r.to_json() for r in results],
        "pairs": [
            {
                "case_id": p.case_id,
                "model_a": p.model_a,
                "model_b": p.model_b,
                "rater": p.rater,
                "winner": p.winner,
                "detail": p.detail,
            }
            for p in pairs
        ],
    }


def run_exists_message(run_id: str) -> str:
    return (
        f"run {run_id!r} already exists: continue it with --resume {run_id}, "
        "or pick another --run-id"
    )


def write_export(record: RunRecord, path: Path) -> Path:
    """Write the run's JSON export (atomically: a temporary file, then renamed; the
    folder must exist)."""
    payload = _export_dict(record.info(), record.results(), record.pairs())
    return write_atomic(path, orjson.dumps(payload, option=orjson.OPT_INDENT_2))


@dataclass(frozen=True, slots=True)
class LoadedRun:
    info: RunInfo
    results: tuple[ResultRow, ...]
    pairs: tuple[PairVerdict, ...]


def load_run(ref: str, engine: sa.Engine | None) -> LoadedRun:
    """A run from its JSON export (a path) or its id in ``engine``'s database."""
    path = Path(ref)
    if path.suffix == ".json" or path.is_file():
        if not path.is_file():
            raise ConfigError(f"run export not found: {path}")
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
            raise ConfigError(f"{path}: not a Laneway eval run export")
        if data.get("version") != FORMAT_VERSION:
            raise ConfigError(f"{path}: export version {data.get('version')} is not supported")
        try:
            return _loaded_from_export(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"no field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ConfigError(f"{path}: a damaged eval run export ({detail})") from None
    if engine is None:
        raise ConfigError(f"{ref!r} is not a file and no database was given")
    record = RunRecord(engine, ref)
    return LoadedRun(record.info(), tuple(record.results()), tuple(record.pairs()))


def _loaded_from_export(data: dict[str, Any]) -> LoadedRun:
    run = data["run"]
    info = RunInfo(
        run_id=run["run_id"],
        created_at=datetime.fromisoformat(run["created_at"].replace("Z", "+00:00")),
        status=run["status"],
        suite=data["suite"],
        suite_digest=run["suite_digest"],
        models=tuple(run["models"]),
        repeats=run["repeats"],
        config=run["config"],
    )
    results = tuple(ResultRow.from_json(r) for r in data["results"])
    pairs = tuple(PairVerdict(**p) for p in data["pairs"])
    return LoadedRun(info, results, pairs)
