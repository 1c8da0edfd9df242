"""Named, sourced, overridable assumptions of the cost model, and the GPU data file.

Every number the advisor uses that is not the user's own workload is an ``Assumption``:
a name, a value, a unit and where it comes from (a source article, cited with its URL, and
the quoted figure, or "Laneway default" with the reasoning). ``Assumptions.override``
replaces values and marks their source as the user's.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

from laneway.advisor._sources import cite, expand
from laneway.errors import ConfigError, InvalidRequest

__all__ = [
    "Assumption",
    "Assumptions",
    "GpuSpec",
    "GpuTable",
    "default_assumptions",
    "gpu_table",
]

_S001 = cite("001", url=True)
_S002 = cite("002", url=True)
_S003 = cite("003", url=True)
_S004 = cite("004", url=True)


@dataclass(frozen=True, slots=True)
class Assumption:
    """One input of the model that is not the workload itself."""

    name: str
    value: Decimal | str
    unit: str
    source: str


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """One GPU type: memory, rent (``None``: unknown) and throughput relative to an H100."""

    key: str
    name: str
    memory_gb: Decimal
    memory_source: str
    hourly_usd: Decimal | None
    hourly_source: str
    hourly_date: str | None
    throughput_factor: Decimal
    throughput_factor_source: str


@dataclass(frozen=True, slots=True)
class GpuTable:
    """The packaged ``gpus.yaml``: GPUs, the throughput table, model lists by role."""

    gpus: Mapping[str, GpuSpec]
    buckets: tuple[tuple[Decimal, Decimal], ...]
    throughput_source: str

    def gpu(self, key: str) -> GpuSpec:
        spec = self.gpus.get(key.strip().lower())
        if spec is None:
            close = difflib.get_close_matches(key.strip().lower(), list(self.gpus), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InvalidRequest(
                f"unknown GPU {key!r}: {hint}known GPUs: {', '.join(sorted(self.gpus))}",
                param="gpu",
            )
        return spec

    def output_tps(self, active_b: Decimal, gpu: GpuSpec) -> Decimal:
        """Output tokens/s per GPU for a model with ``active_b`` billion active params."""
        for limit, tps in self.buckets:
            if active_b <= limit:
                return tps * gpu.throughput_factor
        return self.buckets[-1][1] * gpu.throughput_factor


def _dec(value: object, where: str) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where}: {value!r} is not a number") from None


def _gpu(key: str, data: Mapping[str, Any]) -> GpuSpec:
    hourly = data.get("hourly_usd")
    return GpuSpec(
        key=key,
        name=str(data["name"]),
        memory_gb=_dec(data["memory_gb"], f"gpus.{key}.memory_gb"),
        memory_source=str(data["memory_source"]),
        hourly_usd=None if hourly is None else _dec(hourly, f"gpus.{key}.hourly_usd"),
        hourly_source=expand(" ".join(str(data["hourly_source"]).split()), url=True),
        hourly_date=None if data.get("hourly_date") is None else str(data["hourly_date"]),
        throughput_factor=_dec(data["throughput_factor"], f"gpus.{key}.throughput_factor"),
        throughput_factor_source=expand(
            " ".join(str(data["throughput_factor_source"]).split()), url=True
        ),
    )


@functools.cache
def gpu_table() -> GpuTable:
    """The packaged GPU table (read once, on first use)."""
    text = importlib.resources.files("laneway.advisor").joinpath("gpus.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    table = data["throughput_h100"]
    return GpuTable(
        gpus={key: _gpu(key, spec) for key, spec in data["gpus"].items()},
        buckets=tuple(
            (_dec(b["max_active_b"], "max_active_b"), _dec(b["output_tps"], "output_tps"))
            for b in table["buckets"]
        ),
        throughput_source=expand(" ".join(str(table["source"]).split()), url=True),
    )


def _valid_ranges() -> dict[str, tuple[Decimal, bool, Decimal]]:
    """Per assumption: (lowest, whether the lowest itself is allowed, highest). Fractions
    are in (0, 1]; divisors are above 0; every maximum is far beyond any real deployment and
    keeps the sums inside what ``Decimal`` can print."""
    d = Decimal
    return {
        "gpu_hourly_usd": (d(0), False, d(1000)),
        "gpu_memory_gb": (d(8), True, d(10_000)),
        "throughput_tps_per_gpu": (d(0), False, d(10_000_000)),
        "days_per_month": (d(0), False, d(31)),
        "precision_bytes": (d("0.125"), True, d(8)),
        "kv_cache_bytes_per_token": (d(0), True, d(100_000_000)),
        "gpu_memory_usable_fraction": (d(0), False, d(1)),
        "max_gpu_utilisation": (d(0), False, d(1)),
        "input_token_weight": (d(0), True, d(100)),
        "time_in_system_s": (d(0), False, d(86_400)),
        "ml_engineer_usd_per_year": (d(0), True, d(100_000_000)),
        "ops_fte_share": (d(0), True, d(10_000)),
        "update_cycle_usd": (d(0), True, d(1_000_000_000)),
        "update_cycles_per_year": (d(0), True, d(365)),
        "infra_overhead_multiplier": (d(1), True, d(100)),
        "work_hours_per_year": (d(0), False, d(8784)),
        "lora_gpu_hours": (d(0), True, d(10_000_000)),
        "lora_data_prep_hours": (d(0), True, d(10_000_000)),
        "lora_reeval_hours": (d(0), True, d(10_000_000)),
        "vpc_latency_saving_ms_low": (d(0), True, d(10_000)),
        "vpc_latency_saving_ms_high": (d(0), True, d(10_000)),
        "closed_api_below_tokens_per_month": (d(0), True, d(10) ** 15),
    }


def _number(name: str, value: object, where: str, check_range: bool) -> Decimal:
    """``value`` as a finite ``Decimal`` in the valid range of assumption ``name``."""
    try:
        new = Decimal(str(value).strip()) if not isinstance(value, bool) else None
    except InvalidOperation:
        new = None
    if new is None or not new.is_finite():
        raise InvalidRequest(f"{where}{name}: must be a finite number, got {value!r}")
    low, low_allowed, high = _valid_ranges().get(name, (Decimal(0), True, Decimal(10) ** 15))
    if not check_range:
        return new
    if new < low or (new == low and not low_allowed) or new > high:
        bound = "at least" if low_allowed else "above"
        raise InvalidRequest(
            f"{where}{name}: must be {bound} {low} and at most {high:,}, got {value}"
        )
    return new


_MIN_USABLE_GB = Decimal(8)


def _check_usable_memory(a: Assumptions, where: str) -> None:
    """Memory for weights per GPU: below 8 GB a replica of a large model needs thousands of
    GPUs, which no one deploys (and which the sizing search would take minutes over)."""
    usable = a.number("gpu_memory_gb") * a.number("gpu_memory_usable_fraction")
    if usable < _MIN_USABLE_GB:
        raise InvalidRequest(
            f"{where}gpu_memory_gb x gpu_memory_usable_fraction: {usable.normalize():f} GB usable "
            f"per GPU, must be at least {_MIN_USABLE_GB} GB"
        )


class Assumptions:
    """An immutable, ordered set of named assumptions."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Assumption]) -> None:
        self._items = dict(items)

    def __iter__(self) -> Iterator[Assumption]:
        return iter(self._items.values())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def get(self, name: str) -> Assumption:
        try:
            return self._items[name]
        except KeyError:
            raise InvalidRequest(
                f"unknown assumption {name!r}: use one of {', '.join(self._items)}"
            ) from None

    def number(self, name: str) -> Decimal:
        value = self.get(name).value
        if not isinstance(value, Decimal):
            raise InvalidRequest(f"assumption {name!r} is not a number")
        return value

    def maybe_number(self, name: str) -> Decimal | None:
        """The value, or ``None`` when it is ``"unknown"`` (never read as 0)."""
        value = self.get(name).value
        return value if isinstance(value, Decimal) else None

    def text(self, name: str) -> str:
        return str(self.get(name).value)

    def override(
        self,
        values: Mapping[str, object],
        *,
        source: str = "override",
        where: str = "",
        check_range: bool = True,
    ) -> Assumptions:
        """A copy with ``values`` replacing the named assumptions. Unknown names, values that
        are not finite numbers and (with ``check_range``) values outside the assumption's valid
        range raise ``InvalidRequest``; messages start with ``where`` + the name."""
        items = dict(self._items)
        for name, value in values.items():
            if name not in self._items:
                raise InvalidRequest(
                    f"{where}{name}: unknown assumption (use one of {', '.join(self._items)})"
                )
            old = self._items[name]
            new: Decimal | str
            if isinstance(old.value, Decimal) or old.value in ("unknown", "table"):
                new = _number(name, value, where, check_range)
            elif name == "gpu":
                try:
                    spec = gpu_table().gpu(str(value))
                except InvalidRequest as exc:
                    raise InvalidRequest(f"{where}{name}: {exc.message}") from None
                new = spec.key
                items.update(_follow_gpu(items, spec, keep=values))
            else:
                new = str(value)
            items[name] = replace(old, value=new, source=source)
        result = Assumptions(items)
        if check_range and {"gpu_memory_gb", "gpu_memory_usable_fraction"} & set(values):
            _check_usable_memory(result, where)
        return result

    def add(self, item: Assumption) -> Assumptions:
        return Assumptions({**self._items, item.name: item})


def _follow_gpu(
    items: Mapping[str, Assumption], spec: GpuSpec, keep: Mapping[str, object]
) -> dict[str, Assumption]:
    """The figures of the GPU ``items`` name that are still its defaults (not set by the
    user, not in ``keep``), as ``spec``'s: another GPU is another price and memory."""
    before = {x.name: x for x in _gpu_defaults(gpu_table().gpu(str(items["gpu"].value)))}
    return {
        x.name: x
        for x in _gpu_defaults(spec)[1:]
        if x.name not in keep and items.get(x.name) == before[x.name]
    }


def _a(name: str, value: str, unit: str, source: str) -> Assumption:
    return Assumption(name, Decimal(value), unit, source)


def _defaults_ops() -> list[Assumption]:
    return [
        _a(
            "ml_engineer_usd_per_year",
            "145000",
            "USD/year",
            f'{_S003}: "ML engineering for optimisation ... averages $145,000 per year"',
        ),
        _a(
            "ops_fte_share",
            "1",
            "FTE",
            f'{_S004}: "Real ops cost: 1-3 FTE for production-grade serving" (lower end); '
            f'{_S002}: "This is not a part-time responsibility"',
        ),
        _a(
            "update_cycle_usd",
            "12000",
            "USD/cycle",
            f'{_S003}: "Model update cycles cost approximately $12,000 in engineering time"',
        ),
        _a(
            "update_cycles_per_year",
            "7.43",
            "cycles/year",
            f'{_S003}: "per six-to-eight week cycle" -> 52 weeks / 7 weeks (the midpoint)',
        ),
        _a(
            "infra_overhead_multiplier",
            "1.10",
            "x GPU rent",
            f"Laneway default: {_S003} says networking, load balancing, monitoring and "
            'incident response "adds further multipliers" without a figure; 10% is assumed',
        ),
        _a(
            "work_hours_per_year",
            "2080",
            "hours",
            "Laneway default: 52 weeks x 40 hours, to turn a salary into an hourly rate",
        ),
    ]


def _defaults_serving() -> list[Assumption]:
    return [
        _a(
            "days_per_month",
            "30",
            "days",
            f'{_S003}: "1 million tokens per day (roughly 30 million tokens per month)"',
        ),
        _a(
            "precision_bytes",
            "2",
            "bytes/param",
            "Laneway default: BF16 weights (FP8 = 1, INT4 = 0.5)",
        ),
        _a(
            "kv_cache_bytes_per_token",
            "327680",
            "bytes/token",
            "Laneway default: 2 (K,V) x 80 layers x 8 KV heads x 128 head dim x 2 bytes "
            "(Llama 3 70B geometry, BF16 cache)",
        ),
        _a(
            "gpu_memory_usable_fraction",
            "0.9",
            "fraction",
            "vLLM default --gpu-memory-utilization 0.9",
        ),
        _a(
            "max_gpu_utilisation",
            "0.8",
            "fraction",
            "Laneway default: headroom at the peak hour so latency holds (20% spare)",
        ),
        _a(
            "input_token_weight",
            "0.2",
            "output-token equivalents",
            "Laneway default: prefill is batched and compute-bound, about 5x cheaper per "
            "token than decode",
        ),
        _a(
            "time_in_system_s",
            "30",
            "seconds",
            "Laneway default when the workload has no latency SLO: how long a request holds "
            "its KV cache (Little's law: concurrency = peak rate x time in system)",
        ),
    ]


def _defaults_finetune() -> list[Assumption]:
    return [
        _a(
            "lora_gpu_hours",
            "32",
            "GPU-hours",
            f"Laneway default: the LoRA recipe of {_S001} (4 GPUs, 3 epochs) for about 8 hours",
        ),
        _a(
            "lora_data_prep_hours",
            "80",
            "engineer-hours",
            "Laneway default: two weeks to collect, clean and label a narrow-task training set",
        ),
        _a(
            "lora_reeval_hours",
            "16",
            "engineer-hours/cycle",
            "Laneway default: retrain and re-run the eval suite after each model update "
            f"({_S001}: a fine-tune needs re-evaluation; {_S003}: update cycles)",
        ),
    ]


def _defaults_decision() -> list[Assumption]:
    return [
        _a(
            "closed_api_below_tokens_per_month",
            "5000000",
            "tokens/month",
            f'{_S003}: "Below approximately 5 million tokens per month: closed API, no further '
            'analysis required"',
        ),
        _a(
            "vpc_latency_saving_ms_low",
            "50",
            "ms",
            f'{_S004}: "Self-hosting in your VPC eliminates the round-trip; latency drops by '
            '50-200ms" (low end)',
        ),
        _a(
            "vpc_latency_saving_ms_high",
            "200",
            "ms",
            f'{_S004}: "latency drops by 50-200ms" (high end)',
        ),
    ]


def _gpu_defaults(spec: GpuSpec) -> list[Assumption]:
    """``gpu`` and the figures that belong to it (rent, memory, throughput), as defaults."""
    return [
        Assumption("gpu", spec.key, "", f"Laneway default: {spec.name}"),
        Assumption(
            "gpu_hourly_usd",
            spec.hourly_usd if spec.hourly_usd is not None else "unknown",
            "USD/GPU-hour",
            f"{spec.hourly_source} ({spec.hourly_date})"
            if spec.hourly_date
            else spec.hourly_source,
        ),
        Assumption("gpu_memory_gb", spec.memory_gb, "GB", spec.memory_source),
        Assumption(
            "throughput_tps_per_gpu",
            "table",
            "output tokens/s/GPU",
            f"gpus.yaml table by active parameters x {spec.key} factor "
            f"{spec.throughput_factor} ({spec.throughput_factor_source}); table: "
            f"{gpu_table().throughput_source}",
        ),
    ]


def default_assumptions(gpu: str = "h100") -> Assumptions:
    """The defaults, with the GPU-dependent ones taken from ``gpus.yaml`` for ``gpu``."""
    items: list[Assumption] = [
        *_gpu_defaults(gpu_table().gpu(gpu)),
        *_defaults_serving(),
        *_defaults_ops(),
        *_defaults_finetune(),
        *_defaults_decision(),
    ]
    return Assumptions({item.name: item for item in items})
