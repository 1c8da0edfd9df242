"""The cost model: pure functions over a load, a model size and the assumptions.

* API paths (closed and serverless open-weight): tokens x catalog price, cached input at
  the cached price (the full input price when the cached one is unknown: an upper bound).
* Self-hosted: GPUs for memory (weights at ``precision_bytes`` + KV cache for the
  concurrency Little's law gives at the peak, bytes per token from the model's geometry) and
  for throughput (peak load over ``output_tps_per_gpu x max_gpu_utilisation``, by *active*
  parameters), rounded to whole replicas of 1, 2, 4 or 8 GPUs (tensor parallel) or whole
  8-GPU nodes (8-way tensor parallel x pipeline stages); monthly cost =
  GPU rent x ``infra_overhead_multiplier`` + ops staff (FTE share x salary) + model update
  cycles. Utilisation is the mean load over the provisioned capacity.
* Crossover: the smallest volume (tokens/day, same mix) where self-hosting costs no more
  than the API path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from laneway.advisor._assumptions import Assumptions, gpu_table
from laneway.advisor._workload import Task
from laneway.catalog import Price

__all__ = [
    "Load",
    "ModelSize",
    "SelfHostedCost",
    "Sizing",
    "api_cost_per_day",
    "crossover_tokens_per_day",
    "fixed_ops_monthly",
    "output_tps_per_gpu",
    "ownership_cost",
    "self_hosted_at_utilisation",
    "self_hosted_monthly",
    "size_gpus",
]

MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
_DAY_S = Decimal(86_400)


@dataclass(frozen=True, slots=True)
class Load:
    """Daily volume and shape of the traffic one deployment serves."""

    requests_per_day: Decimal
    input_tokens_per_day: Decimal
    output_tokens_per_day: Decimal
    cached_tokens_per_day: Decimal
    peak_to_mean: Decimal
    time_in_system_s: Decimal

    @classmethod
    def of(cls, tasks: Iterable[Task], peak_to_mean: Decimal, time_in_system_s: Decimal) -> Load:
        tasks = tuple(tasks)
        return cls(
            requests_per_day=sum((t.requests_per_day for t in tasks), _ZERO),
            input_tokens_per_day=sum((t.requests_per_day * t.input_tokens for t in tasks), _ZERO),
            output_tokens_per_day=sum((t.requests_per_day * t.output_tokens for t in tasks), _ZERO),
            cached_tokens_per_day=sum(
                (t.requests_per_day * t.input_tokens * t.cached_fraction for t in tasks), _ZERO
            ),
            peak_to_mean=peak_to_mean,
            time_in_system_s=time_in_system_s,
        )

    @property
    def tokens_per_day(self) -> Decimal:
        return self.input_tokens_per_day + self.output_tokens_per_day

    def plus(self, other: Load) -> Load:
        """Two loads served by one deployment (same shape)."""
        return Load(
            self.requests_per_day + other.requests_per_day,
            self.input_tokens_per_day + other.input_tokens_per_day,
            self.output_tokens_per_day + other.output_tokens_per_day,
            self.cached_tokens_per_day + other.cached_tokens_per_day,
            max(self.peak_to_mean, other.peak_to_mean),
            max(self.time_in_system_s, other.time_in_system_s),
        )

    def times(self, k: Decimal) -> Load:
        """The same mix and shape at ``k`` times the volume."""
        return Load(
            self.requests_per_day * k,
            self.input_tokens_per_day * k,
            self.output_tokens_per_day * k,
            self.cached_tokens_per_day * k,
            self.peak_to_mean,
            self.time_in_system_s,
        )

    def scaled_to(self, tokens_per_day: Decimal) -> Load:
        """The same mix and shape at another daily volume."""
        if self.tokens_per_day == 0:
            return self
        k = tokens_per_day / self.tokens_per_day
        return Load(
            self.requests_per_day * k,
            self.input_tokens_per_day * k,
            self.output_tokens_per_day * k,
            self.cached_tokens_per_day * k,
            self.peak_to_mean,
            self.time_in_system_s,
        )


@dataclass(frozen=True, slots=True)
class ModelSize:
    """Billions of parameters: total (memory) and active per token (throughput); KV-cache
    bytes per token from the model's geometry (``None``: the ``kv_cache_bytes_per_token``
    assumption)."""

    total_b: Decimal
    active_b: Decimal
    kv_bytes_per_token: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Sizing:
    gpus: int
    gpus_per_replica: int  # 1, 2, 4, 8, or 8 x pipeline stages
    replicas: int
    weights_gb: Decimal
    kv_cache_gb: Decimal
    output_tps_per_gpu: Decimal
    mean_load_tps: Decimal
    peak_load_tps: Decimal
    utilisation: Decimal


@dataclass(frozen=True, slots=True)
class SelfHostedCost:
    """Monthly USD. ``multiple_of_gpu_rent`` = total / raw GPU rent."""

    gpu_rent: Decimal
    infra_overhead: Decimal
    ops_staff: Decimal
    model_updates: Decimal
    total: Decimal
    multiple_of_gpu_rent: Decimal
    sizing: Sizing | None


def api_cost_per_day(load: Load, price: Price) -> Decimal | None:
    """USD per day at ``price``; ``None`` when the input or output price is unknown."""
    if price.input_per_mtok is None or price.output_per_mtok is None:
        return None
    cached_rate = price.cached_input_per_mtok
    if cached_rate is None:
        cached_rate = price.input_per_mtok
    fresh = load.input_tokens_per_day - load.cached_tokens_per_day
    total = (
        fresh * price.input_per_mtok
        + load.cached_tokens_per_day * cached_rate
        + load.output_tokens_per_day * price.output_per_mtok
    )
    return total / MILLION


def output_tps_per_gpu(size: ModelSize, a: Assumptions) -> Decimal:
    """Throughput per GPU: the ``throughput_tps_per_gpu`` override, else the table."""
    measured = a.maybe_number("throughput_tps_per_gpu")
    if measured is not None:
        return measured
    table = gpu_table()
    return table.output_tps(size.active_b, table.gpu(a.text("gpu")))


def _weighted_tps(load: Load, a: Assumptions) -> Decimal:
    weighted = load.output_tokens_per_day + a.number("input_token_weight") * (
        load.input_tokens_per_day
    )
    return weighted / _DAY_S


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


#: GPUs per replica: tensor parallel within a node (1, 2, 4, 8), then whole 8-GPU nodes.
REPLICA_SIZES = (1, 2, 4, 8, *(8 * k for k in range(2, 129)))


def _replica_sizes(weights: Decimal, usable: Decimal) -> list[int]:
    """The three smallest replica sizes whose memory holds the weights with 5% of a GPU to
    spare (activations, some KV cache)."""
    fits = [n for n in REPLICA_SIZES if n * usable - weights >= usable * Decimal("0.05")]
    return fits[:3] or [REPLICA_SIZES[-1]]


def kv_bytes_per_token(size: ModelSize, a: Assumptions) -> Decimal:
    if size.kv_bytes_per_token is not None:
        return size.kv_bytes_per_token
    return a.number("kv_cache_bytes_per_token")


def size_gpus(load: Load, size: ModelSize, a: Assumptions) -> Sizing:
    """GPUs to serve ``load`` at its peak: memory first, then throughput, whole replicas."""
    usable = a.number("gpu_memory_gb") * a.number("gpu_memory_usable_fraction")
    weights = size.total_b * a.number("precision_bytes")  # 1e9 params x bytes = GB
    peak_rps = load.requests_per_day / _DAY_S * load.peak_to_mean
    context = (
        (load.input_tokens_per_day + load.output_tokens_per_day) / load.requests_per_day
        if load.requests_per_day
        else _ZERO
    )
    kv_gb = (peak_rps * load.time_in_system_s * context * kv_bytes_per_token(size, a)) / Decimal(
        1_000_000_000
    )
    tps = output_tps_per_gpu(size, a)
    mean = _weighted_tps(load, a)
    peak = mean * load.peak_to_mean
    for_throughput = _ceil(peak / (tps * a.number("max_gpu_utilisation"))) if tps else 0
    best: tuple[int, int] | None = None  # (gpus, per replica): the fewest GPUs wins
    for size_tp in _replica_sizes(weights, usable):
        spare = size_tp * usable - weights
        count = max(1, math.ceil(for_throughput / size_tp), _ceil(kv_gb / spare))
        if best is None or count * size_tp < best[0]:
            best = (count * size_tp, size_tp)
    assert best is not None
    gpus, per_replica = best
    replicas = gpus // per_replica
    return Sizing(
        gpus=gpus,
        gpus_per_replica=per_replica,
        replicas=replicas,
        weights_gb=weights,
        kv_cache_gb=kv_gb,
        output_tps_per_gpu=tps,
        mean_load_tps=mean,
        peak_load_tps=peak,
        utilisation=mean / (gpus * tps) if tps else _ZERO,
    )


def fixed_ops_monthly(a: Assumptions) -> tuple[Decimal, Decimal]:
    """(ops staff, model update cycles) per month."""
    staff = a.number("ops_fte_share") * a.number("ml_engineer_usd_per_year") / 12
    updates = a.number("update_cycle_usd") * a.number("update_cycles_per_year") / 12
    return staff, updates


def ownership_cost(rent: Decimal, a: Assumptions, sizing: Sizing | None = None) -> SelfHostedCost:
    """Monthly total from monthly raw GPU rent: overhead, ops staff and update cycles added,
    so the multiple of GPU rent is an output of those inputs, never an input itself."""
    overhead = rent * (a.number("infra_overhead_multiplier") - 1)
    staff, updates = fixed_ops_monthly(a)
    total = rent + overhead + staff + updates
    return SelfHostedCost(
        gpu_rent=rent,
        infra_overhead=overhead,
        ops_staff=staff,
        model_updates=updates,
        total=total,
        multiple_of_gpu_rent=total / rent if rent else _ZERO,
        sizing=sizing,
    )


def self_hosted_monthly(load: Load, size: ModelSize, a: Assumptions) -> SelfHostedCost | None:
    """Monthly cost provisioned for the peak; ``None`` when the GPU price is unknown."""
    hourly = a.maybe_number("gpu_hourly_usd")
    if hourly is None:
        return None
    sizing = size_gpus(load, size, a)
    rent = sizing.gpus * hourly * 24 * a.number("days_per_month")
    return ownership_cost(rent, a, sizing)


def self_hosted_at_utilisation(
    load: Load, size: ModelSize, a: Assumptions, utilisation: Decimal
) -> SelfHostedCost | None:
    """Monthly cost if the fleet ran at ``utilisation`` on average (fractional GPUs above
    one replica): the curve behind "crossover as a function of utilisation"."""
    hourly = a.maybe_number("gpu_hourly_usd")
    if hourly is None or utilisation <= 0:
        return None
    floor = size_gpus(load.scaled_to(_ZERO), size, a)
    tps = floor.output_tps_per_gpu
    needed = _weighted_tps(load, a) / (tps * utilisation) if tps else _ZERO
    gpus = max(Decimal(floor.gpus_per_replica), needed)
    sizing = Sizing(
        gpus=_ceil(gpus),
        gpus_per_replica=floor.gpus_per_replica,
        replicas=max(1, _ceil(gpus / floor.gpus_per_replica)),
        weights_gb=floor.weights_gb,
        kv_cache_gb=_ZERO,
        output_tps_per_gpu=tps,
        mean_load_tps=_weighted_tps(load, a),
        peak_load_tps=_weighted_tps(load, a) * load.peak_to_mean,
        utilisation=_weighted_tps(load, a) / (gpus * tps) if tps else _ZERO,
    )
    return ownership_cost(gpus * hourly * 24 * a.number("days_per_month"), a, sizing)


def _first_true(test: Callable[[Decimal], bool], low: Decimal, high: Decimal) -> Decimal | None:
    """Smallest volume on a doubling grid from ``low`` where ``test`` holds, refined by
    bisection to 0.1%; ``None`` when it never holds up to ``high``."""
    previous, volume = _ZERO, low
    while volume <= high:
        if test(volume):
            break
        previous, volume = volume, volume * 2
    else:
        return None
    lo, hi = previous, volume
    while hi - lo > hi * Decimal("0.001"):
        mid = (lo + hi) / 2
        if test(mid):
            hi = mid
        else:
            lo = mid
    return hi


def crossover_tokens_per_day(
    load: Load,
    api_per_day: Decimal,
    size: ModelSize,
    a: Assumptions,
    *,
    utilisation: Decimal | None = None,
) -> Decimal | None:
    """Tokens/day (``load``'s mix and shape) above which self-hosting costs no more than
    the API path whose cost at ``load`` is ``api_per_day``. With ``utilisation`` the fleet
    runs at that average utilisation instead of being provisioned for the peak. ``None``:
    no crossover below 10^13 tokens/day (or the GPU price is unknown)."""
    if load.tokens_per_day == 0 or a.maybe_number("gpu_hourly_usd") is None:
        return None
    per_token = api_per_day / load.tokens_per_day
    days = a.number("days_per_month")

    def self_hosting_wins(volume: Decimal) -> bool:
        scaled = load.scaled_to(volume)
        cost = (
            self_hosted_monthly(scaled, size, a)
            if utilisation is None
            else self_hosted_at_utilisation(scaled, size, a, utilisation)
        )
        return cost is not None and cost.total <= per_token * volume * days

    found = _first_true(self_hosting_wins, Decimal(1000), Decimal(10) ** 13)
    return None if found is None else found.quantize(Decimal(1), rounding=ROUND_CEILING)
