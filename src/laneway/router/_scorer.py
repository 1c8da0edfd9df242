"""The scorer: conversation (+ task) → features → per-tier estimates.

A router directory holds ``router.json`` (tiers, training mapping, feature set, the
task names), ``model.npz`` (the logistic heads, the per-task offsets and, when
trained on answers, the answer verifier) and optionally ``embeddings.npz`` +
``vocab.json`` (the static token table); without them, the table shipped in the
package is used. Everything is read once at load; scoring does no I/O. The token
table (~13 MiB in memory) is loaded only by a router that uses the embedding.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from laneway.errors import ConfigError
from laneway.router._conversation import Conversation
from laneway.router._features import STRUCTURAL_NAMES, StaticEmbedder, structural_features
from laneway.router._linear import LinearHeads, sigmoid
from laneway.router._tasks import TaskOffsets
from laneway.router._tokenizer import WordPieceTokenizer
from laneway.router._verifier import Verifier

__all__ = ["FORMAT_VERSION", "Scorer", "default_router_dir", "load_embedder"]

# 2: tier heads only (the score is computed: the expected gain of the strongest tier
# over the cheapest), per-task offsets, optional verifier. 1: + a difficulty head.
FORMAT_VERSION = 2


def default_router_dir() -> Path:
    return Path(__file__).resolve().parent / "default"


def load_embedder(directory: Path, max_tokens: int = 256) -> StaticEmbedder:
    """The static embedder in ``directory``, else the one shipped in the package."""
    if not (directory / "embeddings.npz").is_file():
        directory = default_router_dir()
    vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
    with np.load(io.BytesIO((directory / "embeddings.npz").read_bytes())) as data:
        table = np.asarray(data["table"])
    return StaticEmbedder(WordPieceTokenizer(vocab), table, max_tokens)


@dataclass(frozen=True, slots=True)
class Scorer:
    """Per-tier probabilities of a good answer, with per-task offsets."""

    tiers: tuple[str, ...]
    tier_models: Mapping[str, tuple[str, ...]]
    use_embedding: bool
    embedder: StaticEmbedder | None  # None unless use_embedding
    heads: LinearHeads  # one head per tier
    tasks: TaskOffsets
    verifier: Verifier | None
    meta: Mapping[str, Any]

    def features(self, conv: Conversation) -> npt.NDArray[np.float64]:
        structural = np.asarray(structural_features(conv), dtype=np.float64)
        if not self.use_embedding or self.embedder is None:
            return structural
        return np.concatenate([structural, self.embedder.embed(conv).astype(np.float64)])

    def predict(self, conv: Conversation, task: str | None = None) -> dict[str, float]:
        """P(the tier answers well) per tier for one conversation."""
        h = self.heads
        z = ((self.features(conv) - h.mean) / h.scale) @ h.weights + h.bias
        offset = self.tasks.get(task)
        if offset is not None:
            z = z + offset
        out = self._fill_missing(sigmoid(z)[None, :])[0]
        return {t: float(out[i]) for i, t in enumerate(self.tiers)}

    def predict_matrix(
        self, x: npt.NDArray[np.float64], tasks: Sequence[str | None] | None = None
    ) -> npt.NDArray[np.float64]:
        """Per-tier estimates for a feature matrix, one column per tier."""
        h = self.heads
        z = ((x - h.mean) / h.scale) @ h.weights + h.bias
        if tasks is not None:
            z = z + self.tasks.for_rows(tasks)
        return self._fill_missing(sigmoid(z))

    def _fill_missing(self, out: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """A tier trained on no model takes the estimate of the next cheaper one."""
        trained = self.meta.get("trained_tiers", list(self.tiers))
        if len(trained) == len(self.tiers):
            return out
        out = out.copy()
        for i, tier in enumerate(self.tiers):
            if tier not in trained:
                j = i - 1
                while j >= 0 and self.tiers[j] not in trained:
                    j -= 1
                out[:, i] = out[:, j] if j >= 0 else 0.0
        return out

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        meta = dict(self.meta)
        meta.update(
            format=FORMAT_VERSION,
            tiers=list(self.tiers),
            tier_models={t: list(m) for t, m in self.tier_models.items()},
            structural=list(STRUCTURAL_NAMES),
            use_embedding=self.use_embedding,
            embedding_dim=self.embedder.dim if self.embedder is not None else 0,
            tasks=list(self.tasks.names),
            task_counts=list(self.tasks.counts),
            verifier=self.verifier is not None,
            verifier_tasks=list(self.verifier.tasks.names) if self.verifier else [],
        )
        (directory / "router.json").write_text(json.dumps(meta, indent=2) + "\n", "utf-8")
        arrays: dict[str, Any] = dict(self.heads.to_arrays(""))
        arrays["task_offsets"] = self.tasks.offsets
        if self.verifier is not None:
            arrays.update(self.verifier.to_arrays())
        np.savez(directory / "model.npz", **arrays)

    @classmethod
    def load(cls, directory: Path) -> Scorer:
        try:
            meta = json.loads((directory / "router.json").read_text(encoding="utf-8"))
            if meta.get("format") != FORMAT_VERSION:
                raise ConfigError(
                    f"{directory}: router format {meta.get('format')} is not supported by this "
                    f"Laneway (format {FORMAT_VERSION}): retrain it with `laneway router train`"
                )
            if tuple(meta["structural"]) != STRUCTURAL_NAMES:
                raise ConfigError(
                    f"{directory}: router built for another feature set "
                    f"({len(meta['structural'])} signals; this Laneway computes "
                    f"{len(STRUCTURAL_NAMES)}): retrain it with `laneway router train`"
                )
            # Read the bytes first: np.load leaks its file handle on a corrupt archive.
            with np.load(io.BytesIO((directory / "model.npz").read_bytes())) as data:
                arrays = {k: data[k] for k in data.files}
            heads = LinearHeads.from_arrays(arrays, "")
            names = tuple(str(t) for t in meta.get("tasks", []))
            offsets = np.asarray(arrays["task_offsets"], dtype=np.float64)
            counts = tuple(float(c) for c in meta.get("task_counts", [0.0] * len(names)))
            tasks = TaskOffsets(names, offsets.reshape(len(names), heads.weights.shape[1]), counts)
            verifier = (
                Verifier.from_arrays(arrays, [str(t) for t in meta.get("verifier_tasks", [])])
                if meta.get("verifier")
                else None
            )
            embedder = load_embedder(directory) if meta["use_embedding"] else None
        except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
            raise ConfigError(f"cannot load router from {directory}: {exc}") from exc
        tiers: Sequence[str] = meta["tiers"]
        if heads.weights.shape[1] != len(tiers):
            raise ConfigError(f"cannot load router from {directory}: heads do not match tiers")
        return cls(
            tuple(tiers),
            {t: tuple(m) for t, m in meta["tier_models"].items()},
            bool(meta["use_embedding"]),
            embedder,
            heads,
            tasks,
            verifier,
            meta,
        )
