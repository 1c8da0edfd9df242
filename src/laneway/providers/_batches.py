"""Embedding inputs split into the upstream's batch size, the batches sent concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["in_batches"]

_T = TypeVar("_T")


async def in_batches(
    texts: Sequence[str], size: int, call: Callable[[Sequence[str]], Awaitable[_T]]
) -> list[_T]:
    """``call`` on each run of at most ``size`` texts, concurrently, results in order.
    The first failure cancels the other calls and is raised as itself (not wrapped in
    an exception group)."""
    size = max(1, size)
    batches = [texts[i : i + size] for i in range(0, len(texts), size)]
    if len(batches) == 1:
        return [await call(batches[0])]

    async def run(batch: Sequence[str]) -> _T:
        return await call(batch)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(run(batch)) for batch in batches]
    except BaseExceptionGroup as failed:
        first: BaseException = failed
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return [task.result() for task in tasks]
