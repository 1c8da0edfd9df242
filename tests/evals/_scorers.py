"""Python scorers for tests: one that always fails with an exception."""

from __future__ import annotations

from typing import Any


def boom(text: str, case: Any) -> bool:
    raise ValueError(f"cannot score {text[:10]!r}")


def length_ok(text: str, case: Any) -> bool:
    return len(text) < 100
