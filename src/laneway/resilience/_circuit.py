"""Per-deployment circuit breaker: consecutive failures → open for a cooldown →
half-open (one probe) → closed on success, open again on failure."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import Enum

from laneway.settings import CircuitSettings

__all__ = ["CircuitBreaker", "CircuitState"]


class CircuitState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self, settings: CircuitSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = settings.failure_threshold
        self._cooldown = settings.cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()
        self.opened_count = 0

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:  # closed: one attribute read, atomic, no lock needed
            return CircuitState.CLOSED
        with self._lock:
            return self._state()

    def _state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self._cooldown:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def allows(self) -> bool:
        """True when a call may go ahead now (closed, or the half-open probe not yet
        taken); claims nothing (see :meth:`acquire`)."""
        if self._opened_at is None:  # closed: one attribute read, no lock
            return True
        with self._lock:
            state = self._state()
            if state is CircuitState.CLOSED:
                return True
            return state is CircuitState.HALF_OPEN and not self._probing

    def acquire(self) -> bool:
        """Ask to start a call now: always granted while closed; while half-open granted
        to exactly one caller (the probe, which holds the slot until :meth:`success`,
        :meth:`failure` or :meth:`abandon`); refused while open or while the probe is out.
        Check and claim are one step, so concurrent callers cannot all probe."""
        if self._opened_at is None:  # closed: one attribute read, no lock
            return True
        with self._lock:
            state = self._state()
            if state is CircuitState.CLOSED:
                return True
            if state is CircuitState.HALF_OPEN and not self._probing:
                self._probing = True
                return True
            return False

    def retry_after(self) -> float:
        """Seconds until a call may be tried again: 0 while closed, the rest of the
        cooldown while open, 0 once half-open (its probe may be out; it ends soon)."""
        opened = self._opened_at  # one read: another thread may close it meanwhile
        if opened is None:
            return 0.0
        return max(0.0, self._cooldown - (self._clock() - opened))

    def abandon(self) -> None:
        """A call ended with no verdict on the deployment (cancelled: the client left;
        or refused as the client's mistake). Free the probe slot it may hold, so the
        next call can probe; the state is unchanged."""
        if not self._probing:
            return
        with self._lock:
            self._probing = False

    def success(self) -> None:
        if self._opened_at is None and not self._failures and not self._probing:
            return  # already healthy: the usual case needs no lock
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            state = self._state()
            if state is CircuitState.HALF_OPEN or (
                state is CircuitState.CLOSED and self._failures >= self._threshold
            ):
                self._opened_at = self._clock()
                self.opened_count += 1
            self._probing = False
