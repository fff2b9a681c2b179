"""How late the event loop runs what is due: a sampled measure of loop stalls.

Everything the server does for a client runs on one event loop, so anything
that holds it (a long callback, a garbage collection, the process waiting
for a CPU the machine's other work has taken) delays every stream by as
much. `LoopLag` asks for a wake-up every `interval_s` and records how much
later than asked it ran, into a histogram exported as
`raven_event_loop_lag_seconds`. Samples at times that don't depend on the
load give a fair picture of the lag any event meets; at 10 per second it
costs nothing measurable. There is no event that says "the loop was late",
so this one task wakes on a timer.

uvloop's timers have millisecond granularity: lags under ~1 ms are noise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from raven.core.latency import Histogram

INTERVAL_S = 0.1
# Upper bounds in seconds, 1 ms to 1 s (below 1 ms is the timer's own rounding).
LAG_BOUNDS: tuple[float, ...] = (
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip


class LoopLag:
    """Samples the event loop's lag while `run()` runs (its owner cancels it)."""

    def __init__(
        self, interval_s: float = INTERVAL_S, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.lag = Histogram(LAG_BOUNDS)
        self.longest = 0.0  # seconds

    async def run(self) -> None:
        clock, interval = self.clock, self.interval_s
        while True:
            due = clock() + interval
            await asyncio.sleep(interval)
            self.observe(clock() - due)

    def observe(self, lag: float) -> None:
        lag = max(lag, 0.0)  # a timer may fire a hair early
        self.lag.observe(lag)
        if lag > self.longest:
            self.longest = lag
