"""Measuring event-loop stalls inside the test session's own process.

A gateway under test shares its process with the whole pytest session. Late in a full run
that heap holds ~450,000 objects, and a full (generation 2) garbage collection of it stops
every thread for 0.1-0.3 s on CI's 2-core machine (over a second on a loaded one): a stall
that no gateway code caused, and that a gateway's own process, with its small heap, never
has. Tests that bound a stall wrap their measurement in :func:`session_heap_frozen`.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["session_heap_frozen"]


@contextlib.contextmanager
def session_heap_frozen() -> Iterator[None]:
    """Collect once, then leave every object alive now out of garbage collection until
    the block ends: the collector still runs, but only over what the block allocates."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
