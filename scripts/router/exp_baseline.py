"""Reproduce the shipped recipe's numbers through ``exp_harness`` (sanity check)."""

from __future__ import annotations

from exp_harness import evaluate, linear_fitter, load_all

if __name__ == "__main__":
    d = load_all()
    evaluate(d, d["s"], d["vs"], linear_fitter(), label="shipped: 24 struct, share 0.3")
