"""A circuit breaker: stop calling a dependency that keeps failing, probe it, recover.

Used for every store and for the exchange REST calls. States:

    CLOSED --(failure_threshold failures in a row)--> OPEN
    OPEN --(reset_timeout_s passed; allow() lets one probe through)--> HALF_OPEN
    HALF_OPEN --(probe succeeds)--> CLOSED
    HALF_OPEN --(probe fails)--> OPEN (the timeout starts again)

No I/O and no timers: the caller asks `allow()` before a call and reports
the outcome; the clock is injectable for tests.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class BreakerState(enum.IntEnum):
    """Values are what the `raven_circuit_breaker_state` metric reports."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        reset_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at = 0.0
        self.failures = 0  # totals, for metrics
        self.successes = 0
        self.rejections = 0
        self.last_error = ""

    def allow(self) -> bool:
        """May a call go out now? In OPEN, the first call after the timeout is the probe."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            if self._clock() - self.opened_at >= self.reset_timeout_s:
                self.state = BreakerState.HALF_OPEN
                return True
            self.rejections += 1
            return False
        self.rejections += 1  # HALF_OPEN: a probe is already out
        return False

    def seconds_until_probe(self) -> float:
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.opened_at + self.reset_timeout_s - self._clock())

    def record_success(self) -> None:
        self.successes += 1
        self.consecutive_failures = 0
        self.state = BreakerState.CLOSED

    def record_failure(self, error: str = "") -> None:
        self.failures += 1
        self.consecutive_failures += 1
        self.last_error = error
        if (
            self.state is BreakerState.HALF_OPEN
            or self.consecutive_failures >= self.failure_threshold
        ):
            self.state = BreakerState.OPEN
            self.opened_at = self._clock()
