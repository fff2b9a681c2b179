"""The Raven server process: connectors -> pipeline -> gRPC, with a lifecycle.

`RavenApp` builds every part from one `RavenConfig`, starts them in order,
runs until asked to stop, then shuts down in reverse: stop accepting, tell
clients, drain for the grace period, cancel the connectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from raven.api.server import GrpcServer
from raven.api.service import MarketDataService
from raven.api.streams import StreamRegistry
from raven.config import RavenConfig
from raven.connectors.base import Connector
from raven.connectors.binance.connection import EXCHANGE
from raven.connectors.binance.connector import BinanceFuturesConnector
from raven.core.bus import Bus
from raven.core.pipeline import Pipeline
from raven.core.state import MarketState

log = logging.getLogger("raven.app")


class RavenApp:
    def __init__(self, config: RavenConfig) -> None:
        self.config = config
        self.state = MarketState()
        self.bus = Bus()
        self.pipeline = Pipeline(self.state, self.bus)
        self.connectors: list[Connector] = []
        catalog: dict[str, frozenset[str]] = {}
        binance = config.exchanges.binance_futures
        # The metrics, health and validation layers read its stats and instruments.
        self.binance: BinanceFuturesConnector | None = None
        if binance.enabled:
            self.binance = BinanceFuturesConnector(binance, self.pipeline.ingest)
            self.connectors.append(self.binance)
            catalog[EXCHANGE] = frozenset(s.upper() for s in binance.symbols)
        self.registry = StreamRegistry(self.bus, self.state, catalog)
        self.service = MarketDataService(config.server, self.registry)
        self.grpc = GrpcServer(config.server, self.service)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.grpc.start()
        for connector in self.connectors:
            task = asyncio.create_task(connector.run(), name=f"connector-{connector.name}")
            self._tasks.append(task)

    async def stop(self) -> None:
        log.info("shutting down")
        await self.grpc.stop(self.config.server.shutdown_grace_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def run(self, stop: asyncio.Event) -> None:
        """Start, serve until `stop` is set or a connector fails, then shut down."""
        await self.start()
        waiter = asyncio.create_task(stop.wait(), name="stop-signal")
        try:
            done, _ = await asyncio.wait(
                [waiter, *self._tasks], return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task is not waiter and task.exception() is not None:
                    log.error("connector failed", exc_info=task.exception())
        finally:
            waiter.cancel()
            await self.stop()
