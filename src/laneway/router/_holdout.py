"""Which outcome rows a router was trained on, and which it never saw.

``router train`` holds out one row in ``modulus`` by a hash of its id (of its prompt
when it has none). The same prompt logged under several ids (a shadow export writes
one row per request) would then be trained on and held out at once, so the rows of a
prompt that appears more than once are held out or not together, by a hash of the
prompt: no held-out prompt has been seen in training. Rows with no outcome of a mapped
model say nothing about any tier; they are left out before the split and counted.

The training prompts' fingerprints (8 bytes of BLAKE2b of the system prompt and the
last user message, sorted) are saved beside the router in ``trained_prompts.npy``.
``router promote`` checks the candidate on every given row whose prompt is not among
them (the rows it held out, and a half the team kept aside), never on one it was
fitted on — nor on one the active router was fitted on, which would flatter it. A
router without the file (trained before it existed) falls back to the hash rule
recorded in ``router.json``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from laneway.errors import ConfigError, InvalidRequest
from laneway.router._promote import held_out

__all__ = [
    "TRAINED_PROMPTS_FILE",
    "OutcomeSplit",
    "coverage_problem",
    "prompt_fingerprint",
    "rows_not_trained_on",
    "save_trained_prompts",
    "split_outcomes",
]

TRAINED_PROMPTS_FILE = "trained_prompts.npy"


def prompt_fingerprint(row: Mapping[str, Any]) -> int:
    """8 bytes of BLAKE2b of the row's system prompt and last user message."""
    conv = row["conversation"]
    text = f"{conv.system}\x00{conv.last_user}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest())


def _has_tier_outcome(row: Mapping[str, Any], mapped: set[str]) -> bool:
    return any(m in mapped and v is not None for m, v in row["outcomes"].items())


@dataclass(frozen=True, slots=True)
class OutcomeSplit:
    train: list[dict[str, Any]]
    held: list[dict[str, Any]]
    unmapped: int  # rows with no outcome of a mapped model: left out
    repeated: int  # rows whose prompt appears more than once: split by the prompt's hash


def _prompt_held_out(fingerprint: int, modulus: int) -> bool:
    return fingerprint % modulus == 0


def split_outcomes(
    rows: Sequence[dict[str, Any]], tier_models: Mapping[str, Sequence[str]], modulus: int
) -> OutcomeSplit:
    """The rows to train on and those held out (see the module docstring)."""
    mapped = {m for models in tier_models.values() for m in models}
    usable = [r for r in rows if _has_tier_outcome(r, mapped)]
    prints = [prompt_fingerprint(r) for r in usable]
    copies = Counter(prints)
    train: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    for row, key in zip(usable, prints, strict=True):
        repeated = copies[key] > 1
        side = _prompt_held_out(key, modulus) if repeated else held_out(row, modulus)
        (held if side else train).append(row)
    repeated_rows = sum(n for n in copies.values() if n > 1)
    return OutcomeSplit(train, held, len(rows) - len(usable), repeated_rows)


def coverage_problem(
    rows: Sequence[Mapping[str, Any]], tier_models: Mapping[str, Sequence[str]]
) -> str | None:
    """Why ``rows`` cannot train a router under ``tier_models`` — fewer than two tiers
    have an outcome in them —, naming the tiers left empty and the models the rows do
    name (a typo in ``--tiers``, or the shipped mapping for a team's own model names)."""
    named = Counter(m for r in rows for m, v in r["outcomes"].items() if v is not None)
    empty = [t for t, models in tier_models.items() if not any(m in named for m in models)]
    if len(tier_models) - len(empty) >= 2:
        return None
    seen = ", ".join(m for m, _ in named.most_common(6)) or "none"
    more = f" and {len(named) - 6} more" if len(named) > 6 else ""
    return (
        f"outcomes cover fewer than two tiers: no row has an outcome of a model of tier(s) "
        f"{', '.join(empty)}; the rows name {seen}{more} (map them with --tiers "
        "'cheap=MODEL,...;strong=MODEL,...')"
    )


def save_trained_prompts(directory: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    keys = np.array(sorted({prompt_fingerprint(r) for r in rows}), dtype=np.uint64)
    np.save(directory / TRAINED_PROMPTS_FILE, keys, allow_pickle=False)


def _trained_prompts(directory: Path) -> set[int] | None:
    path = directory / TRAINED_PROMPTS_FILE
    if not path.is_file():
        return None
    try:
        keys = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return {int(k) for k in np.asarray(keys, dtype=np.uint64)}


def rows_not_trained_on(
    rows: Sequence[dict[str, Any]], directory: Path, modulus: int, *, required: bool = True
) -> tuple[list[dict[str, Any]], int]:
    """The rows of ``rows`` the router in ``directory`` was not fitted on, and how many
    were left out: by its saved fingerprints, else by its hold-out rule (``modulus``).
    ``required=False``: a router recording neither (the shipped one) leaves all rows."""
    trained = _trained_prompts(directory)
    if trained is not None:
        kept = [r for r in rows if prompt_fingerprint(r) not in trained]
    elif modulus >= 2:
        kept = [r for r in rows if held_out(r, modulus)]
    elif not required:
        kept = list(rows)
    else:
        raise InvalidRequest(
            f"{directory} records neither its training prompts nor its hold-out rule: "
            "cannot tell the rows it was trained on (retrain it with `laneway router train`)"
        )
    return kept, len(rows) - len(kept)
