"""An assumption ``gpu`` set by name (``--set gpu=…``, a workload file's ``assumptions:``)
is that GPU, with its own price and memory, as ``--gpu`` is; figures the user set stay."""

from __future__ import annotations

import json

from typer.testing import CliRunner, Result

from laneway.advisor import default_assumptions
from laneway.cli import build_app


def _run(*args: str) -> Result:
    return CliRunner().invoke(build_app(), list(args))


def test_a_gpu_set_by_name_brings_its_own_price_and_memory() -> None:
    # --set gpu=l40s kept the H100's $2.50 and 80 GB under the L40S's name (2 GPUs, where
    # an L40S's 48 GB needs 4 for 70B at BF16).
    base = ("tco", "--tokens-per-day", "1e6", "--model", "llama-3.3-70b", "--json")
    by_option = json.loads(_run(*base, "--gpu", "l40s").stdout)
    by_set = json.loads(_run(*base, "--set", "gpu=l40s").stdout)
    assert by_set["gpus"] == by_option["gpus"] == 4
    assert by_set["monthly_usd"] == by_option["monthly_usd"]
    # a price the user gives stays, in either order
    for sets in (["gpu=l40s", "gpu_hourly_usd=1"], ["gpu_hourly_usd=1", "gpu=l40s"]):
        data = json.loads(_run(*base, *[x for s in sets for x in ("--set", s)]).stdout)
        assert data["monthly_usd"]["gpu_rent"] == "2880.00"  # 4 x $1 x 24 x 30
    a = default_assumptions().override({"gpu": "l40s"})
    assert a.number("gpu_memory_gb") == default_assumptions("l40s").number("gpu_memory_gb")
    kept = default_assumptions().override({"gpu_hourly_usd": "1"}, source="workload file")
    assert kept.override({"gpu": "h200"}).number("gpu_hourly_usd") == 1
