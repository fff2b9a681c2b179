"""Fixtures: a real simulator, a real Raven server and a real client, on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest

from raven.app import RavenApp
from raven.client import AsyncRavenClient
from raven.config import RavenConfig, SimulatorConfig, config_from_dict
from raven.sim.server import Simulator
from tests.helpers import wait_until


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimulatorConfig(port=0, rate=200.0, seed=11))
    simulator.feed_enabled.clear()  # tests start the feed when their clients are ready
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def server_config(sim: Simulator, **sections: dict[str, object]) -> RavenConfig:
    """A config for a server on a free port, fed by `sim`."""
    raw: dict[str, dict[str, object]] = {
        "server": {"port": 0, "shutdown_grace_s": 0.5},
        "exchanges": {
            "binance_futures": {
                "ws_url": sim.ws_url,
                "rest_url": sim.rest_url,
                "symbols": list(sim.config.symbols),
                "streams": ["aggTrade", "bookTicker"],
                "reconnect_initial_s": 0.05,
                "reconnect_max_s": 0.2,
            }
        },
        "monitoring": {"metrics_port": 0, "health_check_port": 0},
        "database": {"backend": "none"},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return config_from_dict(msgspec.to_builtins(raw), "test")


@pytest.fixture
async def app(sim: Simulator) -> AsyncIterator[RavenApp]:
    server = RavenApp(server_config(sim))
    await server.start()
    try:
        await wait_until(
            lambda: all(c.connected for c in server.connectors[0].connections),  # type: ignore[attr-defined]
            what="connector connections",
        )
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def client(app: RavenApp) -> AsyncIterator[AsyncRavenClient]:
    async with AsyncRavenClient(f"127.0.0.1:{app.grpc.port}") as c:
        yield c
