"""Fixtures for simulator tests: real simulators on loopback ports, a real HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from raven.config import SimulatorConfig
from raven.sim.capture import Capture
from raven.sim.limits import Clock
from raven.sim.server import Simulator

StartSim = Callable[..., Awaitable[Simulator]]

# Small books keep REST snapshots and truth rebuilds cheap; rates keep tests to seconds.
DEFAULTS: dict[str, Any] = {"port": 0, "seed": 5, "rate": 400.0, "book_depth": 80}


@pytest.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    """`await start_sim(paused=True, clock=..., capture=..., **config)`: a started simulator,
    stopped at the end of the test."""
    started: list[Simulator] = []

    async def start(
        *, paused: bool = False, clock: Clock | None = None, capture: Capture | None = None,
        **config: Any,
    ) -> Simulator:  # fmt: skip
        sim = Simulator(SimulatorConfig(**{**DEFAULTS, **config}), rest_clock=clock,
                        capture=capture)  # fmt: skip
        if paused:
            sim.feed_enabled.clear()
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
