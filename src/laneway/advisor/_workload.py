"""The workload profile: what the advisor is asked about (from YAML or from the ledger)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from laneway.advisor._assumptions import default_assumptions
from laneway.advisor._reference import check_country, check_license, check_model
from laneway.catalog import Catalog, default_catalog
from laneway.errors import ConfigError, InvalidRequest
from laneway.settings import read_user_text, yaml_line, yaml_problem

__all__ = [
    "MAX_TOKENS_PER_DAY",
    "NEEDS",
    "OPS_CAPACITIES",
    "SENSITIVITIES",
    "TIERS",
    "Constraints",
    "Evidence",
    "Need",
    "OpsCapacity",
    "Quality",
    "Sensitivity",
    "Task",
    "Traffic",
    "Workload",
    "load_workload",
    "workload_from_dict",
]

Sensitivity = Literal["none", "regulated", "on_prem"]
OpsCapacity = Literal["none", "partial", "full"]
Need = Literal["frontier_reasoning", "video", "computer_use", "coding"]
SENSITIVITIES: tuple[Sensitivity, ...] = ("none", "regulated", "on_prem")
OPS_CAPACITIES: tuple[OpsCapacity, ...] = ("none", "partial", "full")
NEEDS: tuple[Need, ...] = ("frontier_reasoning", "video", "computer_use", "coding")
#: Task categories that count as coding (Digital Applied's question 3, ``_sources`` 000).
CODING_CATEGORIES = frozenset(
    {"coding", "code", "code_review", "autocomplete", "test_generation", "bug_fixing"}
)
TIERS = ("simple", "standard", "complex", "frontier")
MAX_TOKENS_PER_DAY = Decimal(10) ** 14  # a sane ceiling: about three times Google's 2025 volume
_ZERO = Decimal(0)
_MAX_REQUESTS_PER_DAY = Decimal(10) ** 12
_MAX_TOKENS_PER_REQUEST = Decimal(10) ** 8
_MAX_SLO_MS = Decimal(86_400_000)  # one day


@dataclass(frozen=True, slots=True)
class Evidence:
    """One eval result: ``model`` scored ``score`` against the bar ``required_score`` on
    ``task`` (``None``: every task). ``model`` ``None`` is the old, unattributed form: it is
    read as the score of every open-weight candidate (a miss blocks them all)."""

    model: str | None
    score: Decimal
    required_score: Decimal
    task: str | None = None
    eval_run: str | None = None

    @property
    def passed(self) -> bool:
        return self.score >= self.required_score

    def describe(self) -> str:
        run = f", eval run {self.eval_run}" if self.eval_run else ""
        sign = "≥" if self.passed else "<"
        return f"{self.score} {sign} {self.required_score}{run}"


@dataclass(frozen=True, slots=True)
class Quality:
    """An eval's verdict: ``model``'s score against the bar (``model`` ``None``: the old,
    unattributed form, read as every open-weight candidate's score)."""

    open_weight_score: Decimal | None = None
    required_score: Decimal | None = None
    eval_run: str | None = None
    model: str | None = None

    @property
    def measured(self) -> bool:
        return self.open_weight_score is not None and self.required_score is not None

    @property
    def meets_bar(self) -> bool | None:
        if self.open_weight_score is None or self.required_score is None:
            return None
        return self.open_weight_score >= self.required_score


@dataclass(frozen=True, slots=True)
class Task:
    """One category of requests: volume and tokens per request."""

    name: str
    tier: str
    requests_per_day: Decimal
    input_tokens: Decimal
    output_tokens: Decimal
    cached_fraction: Decimal = _ZERO
    category: str | None = None
    needs: tuple[Need, ...] = ()
    narrow: bool = False
    models: tuple[str, ...] = ()
    quality: Quality | None = None
    sensitive: bool = False  # this task's data never leaves our infrastructure

    @property
    def tokens_per_day(self) -> Decimal:
        return self.requests_per_day * (self.input_tokens + self.output_tokens)

    @property
    def coding(self) -> bool:
        return "coding" in self.needs or (self.category or "").lower() in CODING_CATEGORIES


@dataclass(frozen=True, slots=True)
class Traffic:
    """Traffic shape: the peak hour over the mean hour (from a 24-hour profile if given)."""

    peak_to_mean: Decimal
    hourly: tuple[Decimal, ...] | None = None


@dataclass(frozen=True, slots=True)
class Constraints:
    allowed_licenses: tuple[str, ...] = ()  # licence classes or ids; empty = any
    denied_origins: tuple[str, ...] = ()  # ISO 3166-1 alpha-2 codes


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    tasks: tuple[Task, ...]
    traffic: Traffic
    latency_slo_ms: Decimal | None = None
    data_sensitivity: Sensitivity = "none"
    ops_capacity: OpsCapacity = "none"
    constraints: Constraints = field(default_factory=Constraints)
    quality: Quality = field(default_factory=Quality)
    assumptions: Mapping[str, object] = field(default_factory=dict)
    observed: Mapping[str, object] = field(default_factory=dict)  # ledger facts, if any
    residency: tuple[str, ...] = ()  # ISO codes where inference must run; empty = anywhere
    compliance_documented: bool = False  # compliance documentation covers vendor APIs
    api_latency_p95_ms: Decimal | None = None  # measured p95 of the API path, if known
    evals: tuple[Evidence, ...] = ()

    @property
    def tokens_per_day(self) -> Decimal:
        return sum((t.tokens_per_day for t in self.tasks), _ZERO)

    def tiers(self) -> dict[str, tuple[Task, ...]]:
        """Tasks grouped by tier, in the order tiers first appear; sensitive tasks form
        their own lane, ``<tier>:sensitive``."""
        groups: dict[str, list[Task]] = {}
        for task in self.tasks:
            key = f"{task.tier}:sensitive" if task.sensitive else task.tier
            groups.setdefault(key, []).append(task)
        return {tier: tuple(tasks) for tier, tasks in groups.items()}

    def quality_for(self, task: Task) -> Quality:
        return task.quality if task.quality is not None else self.quality

    def evidence(self) -> tuple[Evidence, ...]:
        """Every eval result, the ``quality:`` blocks included (a task's own block is
        scoped to that task)."""
        found = list(self.evals)
        blocks = [(None, self.quality)] + [(t.name, t.quality) for t in self.tasks if t.quality]
        for task, q in blocks:
            if q is not None and q.open_weight_score is not None and q.required_score is not None:
                found.append(
                    Evidence(q.model, q.open_weight_score, q.required_score, task, q.eval_run)
                )
        return tuple(found)


def _num(
    data: Mapping[str, Any],
    key: str,
    where: str,
    default: str | None = None,
    maximum: Decimal | None = None,
) -> Decimal:
    """A finite number in ``[0, maximum]`` at ``data[key]``; raises ``InvalidRequest``
    naming ``where.key``."""
    raw = data.get(key, default)
    if raw is None or isinstance(raw, bool):
        raise InvalidRequest(f"{where}.{key}: a number is required")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise InvalidRequest(f"{where}.{key}: {raw!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise InvalidRequest(f"{where}.{key}: must be a finite number >= 0, got {raw}")
    if maximum is not None and value > maximum:
        raise InvalidRequest(f"{where}.{key}: must be at most {maximum:,}, got {raw}")
    return value


def _opt_num(data: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    return None if data.get(key) is None else _num(data, key, where)


def _latency(data: Mapping[str, Any]) -> Decimal | None:
    slo = None if data.get("latency_slo_ms") is None else _num(data, "latency_slo_ms", "workload")
    if slo is not None and not 0 < slo <= _MAX_SLO_MS:
        raise InvalidRequest(
            f"latency_slo_ms: must be above 0 and at most {_MAX_SLO_MS:,} (one day), got {slo}"
        )
    return slo


def _check_volume(tasks: tuple[Task, ...]) -> None:
    total = sum((t.tokens_per_day for t in tasks), _ZERO)
    if total == 0:
        raise InvalidRequest(
            "tasks: the total volume is 0 tokens/day, so there is nothing to advise on "
            "(give requests_per_day, input_tokens and output_tokens)"
        )
    if total > MAX_TOKENS_PER_DAY:
        raise InvalidRequest(
            f"tasks: {total:,.0f} tokens/day in all is above the limit of "
            f"{MAX_TOKENS_PER_DAY:,} tokens/day"
        )


def _mapping(raw: object, where: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidRequest(f"{where}: expected a mapping")
    return raw


def _strings(raw: object, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise InvalidRequest(f"{where}: expected a list of strings")
    return tuple(raw)


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidRequest(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )


def _quality(raw: object, where: str, catalog: Catalog) -> Quality:
    data = _mapping(raw, where)
    _check_keys(data, {"open_weight_score", "required_score", "eval_run", "model"}, where)
    run, model = data.get("eval_run"), data.get("model")
    return Quality(
        open_weight_score=_opt_num(data, "open_weight_score", where),
        required_score=_opt_num(data, "required_score", where),
        eval_run=None if run is None else str(run),
        model=None if model is None else check_model(str(model), catalog, f"{where}.model").id,
    )


def _evals(raw: object, tasks: tuple[Task, ...], catalog: Catalog) -> tuple[Evidence, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidRequest("evals: expected a list of {model, score, required_score}")
    names = {t.name for t in tasks}
    found = []
    for i, item in enumerate(raw):
        where = f"evals[{i}]"
        data = _mapping(item, where)
        _check_keys(data, {"model", "score", "required_score", "task", "eval_run"}, where)
        if data.get("model") is None:
            raise InvalidRequest(f"{where}.model: name the model the eval measured")
        model = check_model(str(data["model"]), catalog, f"{where}.model")
        task = None if data.get("task") is None else str(data["task"])
        if task is not None and task not in names:
            raise InvalidRequest(
                f"{where}.task: no task is named {task!r} (tasks: {', '.join(sorted(names))})"
            )
        run = data.get("eval_run")
        found.append(
            Evidence(
                model.id,
                _num(data, "score", where),
                _num(data, "required_score", where),
                task,
                None if run is None else str(run),
            )
        )
    return tuple(found)


_TASK_KEYS = {
    "name",
    "tier",
    "category",
    "requests_per_day",
    "tokens_per_day",
    "tokens_per_month",
    "input_tokens",
    "output_tokens",
    "cached_fraction",
    "needs",
    "narrow",
    "models",
    "quality",
    "sensitive",
}


_VOLUME_KEYS = ("requests_per_day", "tokens_per_day", "tokens_per_month")


def _requests_per_day(data: Mapping[str, Any], where: str, inp: Decimal, out: Decimal) -> Decimal:
    """A task's volume, given as exactly one of ``requests_per_day``, ``tokens_per_day`` or
    ``tokens_per_month`` (input plus output, 30 days a month as RTSN, Jun 2026: "1 million
    tokens per day (roughly 30 million tokens per month)"); a token volume becomes requests
    of ``input_tokens + output_tokens`` each."""
    given = [k for k in _VOLUME_KEYS if data.get(k) is not None]
    if len(given) > 1:
        raise InvalidRequest(
            f"{where}.{given[1]}: give one volume, not both {given[0]} and {given[1]}"
        )
    if not given:
        raise InvalidRequest(
            f"{where}.requests_per_day: a number is required (or the task's volume as "
            "tokens_per_day or tokens_per_month)"
        )
    key = given[0]
    if key == "requests_per_day":
        return _num(data, key, where, None, _MAX_REQUESTS_PER_DAY)
    days = Decimal(30) if key == "tokens_per_month" else Decimal(1)
    tokens = _num(data, key, where, None, MAX_TOKENS_PER_DAY * days) / days
    if inp + out == 0:
        raise InvalidRequest(
            f"{where}.{key}: input_tokens and output_tokens per request are both 0, so "
            f"{key} cannot be turned into requests"
        )
    return tokens / (inp + out)


def _task(raw: object, index: int, catalog: Catalog) -> Task:
    where = f"tasks[{index}]"
    data = _mapping(raw, where)
    _check_keys(data, _TASK_KEYS, where)
    name = str(data.get("name") or f"task-{index + 1}")
    tier = str(data.get("tier") or (name if name in TIERS else "standard"))
    if tier not in TIERS:
        raise InvalidRequest(f"{where}.tier: {tier!r} is not one of {', '.join(TIERS)}")
    needs = _strings(data.get("needs"), f"{where}.needs")
    for need in needs:
        if need not in NEEDS:
            raise InvalidRequest(f"{where}.needs: {need!r} is not one of {', '.join(NEEDS)}")
    cached = _num(data, "cached_fraction", where, "0")
    if cached > 1:
        raise InvalidRequest(f"{where}.cached_fraction: must be between 0 and 1")
    volume = next((k for k in _VOLUME_KEYS[1:] if data.get(k) is not None), None)
    for key in ("input_tokens", "output_tokens"):
        if volume is not None and data.get(key) is None:
            raise InvalidRequest(
                f"{where}.{key}: a number is required: with {volume}, give input_tokens and "
                "output_tokens per request (they split the volume and size the requests)"
            )
    inp = _num(data, "input_tokens", where, None, _MAX_TOKENS_PER_REQUEST)
    out = _num(data, "output_tokens", where, None, _MAX_TOKENS_PER_REQUEST)
    task = Task(
        name=name,
        tier=tier,
        requests_per_day=_requests_per_day(data, where, inp, out),
        input_tokens=inp,
        output_tokens=out,
        cached_fraction=cached,
        category=None if data.get("category") is None else str(data["category"]),
        needs=cast("tuple[Need, ...]", needs),
        narrow=bool(data.get("narrow", False)),
        sensitive=_flag(data, "sensitive"),
        models=tuple(
            check_model(m, catalog, f"{where}.models").id
            for m in _strings(data.get("models"), f"{where}.models")
        ),
        quality=None
        if data.get("quality") is None
        else _quality(data["quality"], f"{where}.quality", catalog),
    )
    if task.tokens_per_day > MAX_TOKENS_PER_DAY:
        raise InvalidRequest(
            f"{where}: {task.tokens_per_day:,.0f} tokens/day (requests_per_day x tokens per "
            f"request) is above the limit of {MAX_TOKENS_PER_DAY:,} tokens/day"
        )
    return task


def _traffic(raw: object) -> Traffic:
    data = _mapping(raw, "traffic")
    _check_keys(data, {"peak_to_mean", "hourly"}, "traffic")
    hourly_raw = data.get("hourly")
    if hourly_raw is not None:
        if not isinstance(hourly_raw, list) or len(hourly_raw) != 24:
            raise InvalidRequest("traffic.hourly: expected 24 numbers, one per hour of the day")
        hourly = tuple(
            _num({f"hourly[{i}]": v}, f"hourly[{i}]", "traffic", None, _MAX_REQUESTS_PER_DAY)
            for i, v in enumerate(hourly_raw)
        )
        mean = sum(hourly, _ZERO) / 24
        if mean == 0:
            raise InvalidRequest("traffic.hourly: all hours are zero")
        return Traffic(peak_to_mean=max(hourly) / mean, hourly=hourly)
    ratio = _num(data, "peak_to_mean", "traffic", "1")
    if ratio < 1:
        raise InvalidRequest("traffic.peak_to_mean: the peak cannot be below the mean (>= 1)")
    if ratio > 24:
        raise InvalidRequest(
            f"traffic.peak_to_mean: the busiest hour cannot exceed 24 x the mean hour, got {ratio}"
        )
    return Traffic(peak_to_mean=ratio)


def _choice(data: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = str(data.get(key, default))
    if value not in choices:
        raise InvalidRequest(f"{key}: {value!r} is not one of {', '.join(choices)}")
    return value


_TOP_KEYS = {
    "name",
    "tasks",
    "traffic",
    "latency_slo_ms",
    "data_sensitivity",
    "ops_capacity",
    "constraints",
    "quality",
    "assumptions",
    "residency",
    "compliance_documented",
    "api_latency_p95_ms",
    "evals",
}


def _assumptions(raw: object) -> dict[str, object]:
    """The ``assumptions:`` block, checked now (names, finite, in range) so that errors
    point at the file; applied by ``advise``."""
    block = dict(_mapping(raw, "assumptions"))
    default_assumptions().override(block, source="workload file", where="assumptions.")
    return block


def _constraints(raw: object, catalog: Catalog) -> Constraints:
    cons = _mapping(raw, "constraints")
    _check_keys(cons, {"allowed_licenses", "denied_origins"}, "constraints")
    licences = _strings(cons.get("allowed_licenses"), "constraints.allowed_licenses")
    origins = _strings(cons.get("denied_origins"), "constraints.denied_origins")
    return Constraints(
        allowed_licenses=tuple(
            check_license(x, catalog, f"constraints.allowed_licenses[{i}]")
            for i, x in enumerate(licences)
        ),
        denied_origins=tuple(
            check_country(x, f"constraints.denied_origins[{i}]") for i, x in enumerate(origins)
        ),
    )


def _residency(raw: object) -> tuple[str, ...]:
    values = [raw] if isinstance(raw, str) else _strings(raw, "residency")
    return tuple(check_country(x, f"residency[{i}]") for i, x in enumerate(values))


def _flag(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise InvalidRequest(f"{key}: must be true or false, got {value!r}")
    return value


def workload_from_dict(data: Mapping[str, Any], catalog: Catalog | None = None) -> Workload:
    """A validated ``Workload`` from parsed YAML/JSON; raises ``InvalidRequest``. Model ids,
    licences and country codes are checked against ``catalog`` (default: the packaged one)
    and ISO 3166-1, with suggestions for near misses."""
    catalog = catalog or default_catalog()
    data = _mapping(data, "workload")
    _check_keys(data, _TOP_KEYS, "workload")
    tasks_raw = data.get("tasks")
    if not isinstance(tasks_raw, list) or not tasks_raw:
        raise InvalidRequest("tasks: at least one task is required")
    tasks = tuple(_task(raw, i, catalog) for i, raw in enumerate(tasks_raw))
    seen: set[str] = set()
    for i, task in enumerate(tasks):
        if task.name in seen:  # a pasted-twice task doubled the volume without a word
            raise InvalidRequest(
                f"tasks[{i}].name: {task.name!r} names an earlier task too (each task "
                "needs its own name: evals refer to tasks by name)"
            )
        seen.add(task.name)
    _check_volume(tasks)
    p95 = (
        None
        if data.get("api_latency_p95_ms") is None
        else _num(data, "api_latency_p95_ms", "workload")
    )
    return Workload(
        name=str(data.get("name") or "workload"),
        tasks=tasks,
        traffic=_traffic(data.get("traffic")),
        latency_slo_ms=_latency(data),
        data_sensitivity=cast(
            "Sensitivity", _choice(data, "data_sensitivity", SENSITIVITIES, "none")
        ),
        ops_capacity=cast("OpsCapacity", _choice(data, "ops_capacity", OPS_CAPACITIES, "none")),
        constraints=_constraints(data.get("constraints"), catalog),
        quality=_quality(data.get("quality"), "quality", catalog),
        assumptions=_assumptions(data.get("assumptions")),
        residency=_residency(data.get("residency")),
        compliance_documented=_flag(data, "compliance_documented"),
        api_latency_p95_ms=p95,
        evals=_evals(data.get("evals"), tasks, catalog),
    )


def _read(path: Path) -> str:
    try:
        return read_user_text(path, "workload file")
    except ConfigError as exc:  # bad input to the advisor: InvalidRequest (exit 2)
        raise InvalidRequest(exc.message) from None


def _yaml_error(path: Path, exc: yaml.YAMLError) -> InvalidRequest:
    line, problem = yaml_problem(exc)
    where = f"{path}:{line}" if line is not None else str(path)
    return InvalidRequest(f"{where}: not valid YAML: {problem}")


def _loc(message: str) -> list[int | str]:
    """The YAML location a validation message starts with: ``tasks[0].tier`` ->
    ``["tasks", 0, "tier"]`` (top-level keys such as ``latency_slo_ms`` as they are)."""
    head = message.split(":", 1)[0]
    loc: list[int | str] = []
    for part in head.split("."):
        name, _, rest = part.partition("[")
        if not name.isidentifier():
            return []
        loc.append(name)
        for index in rest.rstrip("]").split("]["):
            if index.isdigit():
                loc.append(int(index))
    return loc[1:] if loc[:1] == ["workload"] else loc


def load_workload(path: Path, catalog: Catalog | None = None) -> Workload:
    """Read and validate a workload YAML file; errors name ``file:line``."""
    text = _read(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None
    except RecursionError:
        raise InvalidRequest(f"{path}: not valid YAML: nested too deeply") from None
    try:
        return workload_from_dict(data if data is not None else {}, catalog)
    except InvalidRequest as exc:
        line = yaml_line(node, _loc(exc.message)) if node is not None else 1
        raise InvalidRequest(f"{path}:{line}: {exc.message}", param=exc.param) from None
