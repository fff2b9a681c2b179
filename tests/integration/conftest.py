"""Fixtures and helpers: a real simulator per test, real connectors against it.

Every test here runs the real `BinanceFuturesConnector` against the real
`Simulator` over WebSockets and HTTP on loopback, and checks books against
the simulator's truth (`tests.integration.truth.TruthBooks`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from raven.config import SimulatorConfig
from raven.connectors.binance.book_sync import BookState
from raven.connectors.binance.connector import BinanceFuturesConnector
from raven.sim.limits import Clock
from raven.sim.server import Simulator

StartSim = Callable[..., Awaitable[Simulator]]

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")

# Small books keep snapshots and truth rebuilds cheap; a 1000-level snapshot holds
# the whole book, so a connector's book can equal the truth level for level.
DEFAULTS: dict[str, Any] = {
    "port": 0,
    "seed": 3,
    "rate": 400.0,
    "book_depth": 60,
    "symbols": SYMBOLS,
}


async def new_sim(*, paused: bool = False, clock: Clock | None = None, **config: Any) -> Simulator:
    """A started simulator (paused: the feed waits for `sim.feed_enabled`); stop it."""
    sim = Simulator(SimulatorConfig(**{**DEFAULTS, **config}), rest_clock=clock)
    if paused:
        sim.feed_enabled.clear()
    await sim.start()
    return sim


@pytest.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    """`await start_sim(paused=..., clock=..., **config)`: `new_sim`, stopped after the test."""
    started: list[Simulator] = []

    async def start(**kwargs: Any) -> Simulator:
        sim = await new_sim(**kwargs)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


def all_live(connector: BinanceFuturesConnector, symbols: tuple[str, ...] | list[str] = ()) -> bool:
    stats = connector.books.stats
    return all(stats[s].state is BookState.LIVE for s in symbols or list(stats))


def connected(connector: BinanceFuturesConnector) -> bool:
    return all(c.connected for c in connector.connections)
