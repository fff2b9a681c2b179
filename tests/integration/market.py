"""Driving the simulator's market by hand (its feed paused), one transaction at a time.

With the feed paused nothing happens unless the test makes it happen:
`step()` makes one transaction and sends its real-time events (`@depth@0ms`
at once), `tick()` ends the current window of an aggregated depth speed
(`@depth@100ms`, bare `@depth`) and sends its event. So a test chooses
exactly which events exist when a snapshot is taken.
"""

from __future__ import annotations

import time

from raven.sim.faults import Speed
from raven.sim.feed import LiveFeed, wall_ms
from raven.sim.market import Step
from raven.sim.server import Simulator

# Diff depth stream suffix -> (the fault API's speed name, the window in ms; 0: per event)
SPEEDS: dict[str, tuple[Speed, int]] = {
    "depth@0ms": ("0ms", 0),
    "depth@100ms": ("100ms", 100),
    "depth": ("250ms", 250),
}


class Market:
    def __init__(self, sim: Simulator, stream: str) -> None:
        assert sim.feed is not None, "a live simulator (not a replay)"
        self.sim = sim
        self.feed: LiveFeed = sim.feed
        self.stream = stream
        self.speed, self.period = SPEEDS[stream]

    def name(self, symbol: str) -> str:
        return f"{symbol.lower()}@{self.stream}"

    def step(self) -> Step:
        return self.feed.step()

    def tick(self) -> None:
        """End the window of an aggregated speed (no-op for @depth@0ms)."""
        if self.period:
            self.feed.tick(self.period, wall_ms())

    def run(self, steps: int, tick_every: int = 1) -> None:
        for n in range(1, steps + 1):
            self.step()
            if n % tick_every == 0:
                self.tick()


class FastMinutes:
    """A wall clock (for the simulator's REST limiter) whose minutes last
    `minute_s` real seconds, aligned with `WeightLimiter(window_s=minute_s)`."""

    def __init__(self, minute_s: float) -> None:
        self.factor = 60.0 / minute_s

    def time(self) -> float:
        return time.time() * self.factor
