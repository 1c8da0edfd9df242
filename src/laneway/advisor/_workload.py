"""The workload profile: what the advisor is asked about (from YAML or from the ledger)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from laneway.errors import InvalidRequest

__all__ = [
    "NEEDS",
    "OPS_CAPACITIES",
    "SENSITIVITIES",
    "TIERS",
    "Constraints",
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
Need = Literal["frontier_reasoning", "video", "computer_use"]
SENSITIVITIES: tuple[Sensitivity, ...] = ("none", "regulated", "on_prem")
OPS_CAPACITIES: tuple[OpsCapacity, ...] = ("none", "partial", "full")
NEEDS: tuple[Need, ...] = ("frontier_reasoning", "video", "computer_use")
TIERS = ("simple", "standard", "complex", "frontier")
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Quality:
    """An eval's verdict on the open-weight candidate: its score against the bar."""

    open_weight_score: Decimal | None = None
    required_score: Decimal | None = None
    eval_run: str | None = None

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

    @property
    def tokens_per_day(self) -> Decimal:
        return self.requests_per_day * (self.input_tokens + self.output_tokens)


@dataclass(frozen=True, slots=True)
class Traffic:
    """Traffic shape: the peak hour over the mean hour (from a 24-hour profile if given)."""

    peak_to_mean: Decimal
    hourly: tuple[Decimal, ...] | None = None


@dataclass(frozen=True, slots=True)
class Constraints:
    allowed_licenses: tuple[str, ...] = ()  # license tiers or ids; empty = any
    denied_origins: tuple[str, ...] = ()


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

    @property
    def tokens_per_day(self) -> Decimal:
        return sum((t.tokens_per_day for t in self.tasks), _ZERO)

    def tiers(self) -> dict[str, tuple[Task, ...]]:
        """Tasks grouped by tier, in the order tiers first appear."""
        groups: dict[str, list[Task]] = {}
        for task in self.tasks:
            groups.setdefault(task.tier, []).append(task)
        return {tier: tuple(tasks) for tier, tasks in groups.items()}

    def quality_for(self, task: Task) -> Quality:
        return task.quality if task.quality is not None else self.quality


def _num(data: Mapping[str, Any], key: str, where: str, default: str | None = None) -> Decimal:
    raw = data.get(key, default)
    if raw is None or isinstance(raw, bool):
        raise InvalidRequest(f"{where}.{key}: a number is required")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise InvalidRequest(f"{where}.{key}: {raw!r} is not a number") from None
    if value < 0 or not value.is_finite():
        raise InvalidRequest(f"{where}.{key}: must be a finite number >= 0, got {raw}")
    return value


def _opt_num(data: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    return None if data.get(key) is None else _num(data, key, where)


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


def _quality(raw: object, where: str) -> Quality:
    data = _mapping(raw, where)
    _check_keys(data, {"open_weight_score", "required_score", "eval_run"}, where)
    run = data.get("eval_run")
    return Quality(
        open_weight_score=_opt_num(data, "open_weight_score", where),
        required_score=_opt_num(data, "required_score", where),
        eval_run=None if run is None else str(run),
    )


_TASK_KEYS = {
    "name",
    "tier",
    "category",
    "requests_per_day",
    "input_tokens",
    "output_tokens",
    "cached_fraction",
    "needs",
    "narrow",
    "models",
    "quality",
}


def _task(raw: object, index: int) -> Task:
    where = f"tasks[{index}]"
    data = _mapping(raw, where)
    _check_keys(data, _TASK_KEYS, where)
    name = str(data.get("name") or f"task-{index + 1}")
    tier = str(data.get("tier") or (name if name in TIERS else "standard"))
    needs = _strings(data.get("needs"), f"{where}.needs")
    for need in needs:
        if need not in NEEDS:
            raise InvalidRequest(f"{where}.needs: {need!r} is not one of {', '.join(NEEDS)}")
    cached = _num(data, "cached_fraction", where, "0")
    if cached > 1:
        raise InvalidRequest(f"{where}.cached_fraction: must be between 0 and 1")
    return Task(
        name=name,
        tier=tier,
        requests_per_day=_num(data, "requests_per_day", where),
        input_tokens=_num(data, "input_tokens", where),
        output_tokens=_num(data, "output_tokens", where),
        cached_fraction=cached,
        category=None if data.get("category") is None else str(data["category"]),
        needs=cast("tuple[Need, ...]", needs),
        narrow=bool(data.get("narrow", False)),
        models=_strings(data.get("models"), f"{where}.models"),
        quality=None if data.get("quality") is None else _quality(data["quality"], where),
    )


def _traffic(raw: object) -> Traffic:
    data = _mapping(raw, "traffic")
    _check_keys(data, {"peak_to_mean", "hourly"}, "traffic")
    hourly_raw = data.get("hourly")
    if hourly_raw is not None:
        if not isinstance(hourly_raw, list) or len(hourly_raw) != 24:
            raise InvalidRequest("traffic.hourly: expected 24 numbers, one per hour of the day")
        hourly = tuple(_num({"h": v}, "h", "traffic.hourly") for v in hourly_raw)
        mean = sum(hourly, _ZERO) / 24
        if mean == 0:
            raise InvalidRequest("traffic.hourly: all hours are zero")
        return Traffic(peak_to_mean=max(hourly) / mean, hourly=hourly)
    ratio = _num(data, "peak_to_mean", "traffic", "1")
    if ratio < 1:
        raise InvalidRequest("traffic.peak_to_mean: the peak cannot be below the mean (>= 1)")
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
}


def workload_from_dict(data: Mapping[str, Any]) -> Workload:
    """A validated ``Workload`` from parsed YAML/JSON; raises ``InvalidRequest``."""
    data = _mapping(data, "workload")
    _check_keys(data, _TOP_KEYS, "workload")
    tasks_raw = data.get("tasks")
    if not isinstance(tasks_raw, list) or not tasks_raw:
        raise InvalidRequest("tasks: at least one task is required")
    cons = _mapping(data.get("constraints"), "constraints")
    _check_keys(cons, {"allowed_licenses", "denied_origins"}, "constraints")
    return Workload(
        name=str(data.get("name") or "workload"),
        tasks=tuple(_task(raw, i) for i, raw in enumerate(tasks_raw)),
        traffic=_traffic(data.get("traffic")),
        latency_slo_ms=_opt_num(data, "latency_slo_ms", "workload"),
        data_sensitivity=cast(
            "Sensitivity", _choice(data, "data_sensitivity", SENSITIVITIES, "none")
        ),
        ops_capacity=cast("OpsCapacity", _choice(data, "ops_capacity", OPS_CAPACITIES, "none")),
        constraints=Constraints(
            allowed_licenses=tuple(
                x.lower() for x in _strings(cons.get("allowed_licenses"), "allowed_licenses")
            ),
            denied_origins=tuple(
                x.upper() for x in _strings(cons.get("denied_origins"), "denied_origins")
            ),
        ),
        quality=_quality(data.get("quality"), "quality"),
        assumptions=dict(_mapping(data.get("assumptions"), "assumptions")),
    )


def load_workload(path: Path) -> Workload:
    """Read and validate a workload YAML file."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"{path} is not valid YAML: {exc}".splitlines()[0]) from None
    return workload_from_dict(data if data is not None else {})
