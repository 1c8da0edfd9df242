"""Training targets and helpers shared by ``laneway router train`` and the build scripts.

An outcome row has per-model scores in [0, 1]. Models map to tiers; a tier's
target is the mean score of its models on the prompt (the probability that "the
tier's models answer well"). Nothing else is fitted: the routing score is the
expected gain of the strongest tier over the cheapest, P(strongest ok) − P(cheapest
ok), and the difficulty 1 − the mean of the tier estimates; both are computed from
the tier heads (the model card has the history: a learned difficulty score sent
prompts that every tier fails to the strongest tier, which buys nothing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "ANSWERS_TIER_MODELS",
    "DEFAULT_TIERS",
    "DEFAULT_TIER_MODELS",
    "MMLU_PRO_TIER_MODELS",
    "dev_mask",
    "pca_sif_table",
    "targets_for",
    "tiers_with_data",
]

DEFAULT_TIERS: tuple[str, ...] = ("simple", "standard", "complex", "frontier")

# By price and size class (2024 list prices per 1M tokens, blended):
#   simple   ≤ ~$0.6: 7-8B dense models, phi-3-mini, mixtral-8x7b (~13B active)
#   standard ~$0.3-2: 70B-class chat models of 2024 and cheap MoE APIs
#   complex  ~$0.3-1 but strong: llama-3.1-70b, gemini-1.5-flash (fast 2nd-tier closed)
#   frontier ≥ ~$5: gpt-4o, gemini-1.5-pro
MMLU_PRO_TIER_MODELS: Mapping[str, tuple[str, ...]] = {
    "simple": (
        "mistral-7b-instruct-v0.2",
        "phi-3-mini-4k-instruct",
        "llama-3.1-8b-instruct",
        "mixtral-8x7b-instruct-v0.1",
    ),
    "standard": ("qwen1.5-72b-chat", "jamba-1.5-large", "deepseek-coder-v2"),
    "complex": ("llama-3.1-70b-instruct", "gemini-1.5-flash-002"),
    "frontier": ("gpt-4o-2024-05-13", "gemini-1.5-pro-002"),
}
# The shared answers data's models (their ids do not overlap the MMLU-Pro file's), same classes.
ANSWERS_TIER_MODELS: Mapping[str, tuple[str, ...]] = {
    "simple": (
        "Meta-Llama-3.1-8B-Instruct", "Meta-Llama-3-8B-Instruct", "Qwen2.5-7B-Instruct",
        "Qwen2-7B-Instruct", "Qwen2.5-3B-Instruct", "gemma-2-9b-it", "gemma-2-2b-it",
        "Phi-3-mini-4k-instruct", "Phi-3.5-mini-instruct", "Mistral-7B-Instruct-v0.1",
        "Yi-1.5-9B-Chat", "Mixtral-8x7B-Instruct-v0.1", "gpt-3.5-turbo-0125",
        "claude-3-haiku-20240307", "Starling-LM-7B-alpha", "openchat_3.5",
    ),
    "standard": (
        "Meta-Llama-3-70B-Instruct", "Qwen2-72B-Instruct", "Yi-1.5-34B-Chat", "gemma-2-27b-it",
        "gpt-4o-mini-2024-07-18", "gemini-1.5-flash", "claude-3-5-haiku-20241022",
        "Qwen2.5-32B-Instruct",
    ),
    "complex": (
        "Meta-Llama-3.1-70B-Instruct", "Qwen2.5-72B-Instruct", "deepseek-v2.5-0908",
        "Athene-70B", "Mistral-Large-2",
    ),
    "frontier": (
        "gpt-4o-2024-08-06", "gpt-4o-2024-05-13", "claude-3-5-sonnet-20241022",
        "gemini-1.5-pro", "Meta-Llama-3.1-405B-Instruct", "chatgpt-4o-latest-24-09-07",
    ),
}  # fmt: skip
# `laneway router train` without --tiers or a config: both shared data sets map.
DEFAULT_TIER_MODELS: Mapping[str, tuple[str, ...]] = {
    t: MMLU_PRO_TIER_MODELS[t] + ANSWERS_TIER_MODELS[t] for t in DEFAULT_TIERS
}


def dev_mask(ids: Sequence[Any], modulus: int = 10) -> npt.NDArray[np.bool_]:
    """The fixed dev split (one id in ``modulus`` by hash): never trained on."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=4).digest()) % modulus == 0
            for i in ids
        ]
    )


def tiers_with_data(
    tiers: Sequence[str], tier_models: Mapping[str, Sequence[str]], models: set[str]
) -> list[str]:
    return [t for t in tiers if any(m in models for m in tier_models.get(t, ()))]


def _tier_mean(outcomes: Mapping[str, float], models: Sequence[str]) -> float:
    vals = [float(outcomes[m]) for m in models if m in outcomes and outcomes[m] is not None]
    return float(np.mean(vals)) if vals else float("nan")


def targets_for(
    rows: Sequence[Mapping[str, Any]],
    tier_models: Mapping[str, Sequence[str]],
    tiers: Sequence[str] = DEFAULT_TIERS,
) -> npt.NDArray[np.float64]:
    """Soft targets, shape ``(rows, len(tiers))``: each tier's mean outcome.

    Missing values are NaN (the caller drops or masks them).
    """
    present = {m for r in rows for m in r["outcomes"]}
    active = tiers_with_data(tiers, tier_models, present)
    if len(active) < 2:
        raise ValueError("outcomes cover fewer than two tiers: nothing to route between")
    out = np.empty((len(rows), len(tiers)))
    for i, row in enumerate(rows):
        outcomes = row["outcomes"]
        for j, tier in enumerate(tiers):
            out[i, j] = _tier_mean(outcomes, tier_models.get(tier, ()))
    return out


def pca_sif_table(
    raw: npt.NDArray[np.floating], dims: int, sif: float = 1e-4
) -> npt.NDArray[np.float32]:
    """model2vec's post-processing: PCA to ``dims``, then Zipf/SIF token weights."""
    x = np.asarray(raw, dtype=np.float64)
    x = x - x.mean(axis=0)
    cov = x.T @ x / (len(x) - 1)
    vals, vecs = np.linalg.eigh(cov)
    top = vecs[:, np.argsort(vals)[::-1][:dims]]
    # Deterministic sign: largest-magnitude loading of each component positive.
    signs = np.sign(top[np.abs(top).argmax(axis=0), np.arange(top.shape[1])])
    reduced = x @ (top * signs)
    inv_rank = 1.0 / np.arange(2, len(x) + 2)
    weight = sif / (sif + inv_rank / inv_rank.sum())
    result: npt.NDArray[np.float32] = (reduced * weight[:, None]).astype(np.float32)
    return result
