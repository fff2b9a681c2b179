"""The Raven server process: connectors -> pipeline -> gRPC, with a lifecycle.

`RavenApp` builds every part from one `RavenConfig`, starts them in order,
runs until asked to stop, then shuts down in reverse: stop accepting, tell
clients, drain for the grace period, cancel the connectors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from raven.api.requests import Catalog
from raven.api.server import GrpcServer
from raven.api.service import MarketDataService
from raven.api.streams import StreamRegistry
from raven.config import RavenConfig
from raven.connectors.base import Connector, EventSink
from raven.connectors.binance.connector import BinanceFuturesConnector
from raven.core.bus import Bus
from raven.core.citadel import Citadel
from raven.core.pipeline import Pipeline
from raven.core.state import MarketState
from raven.core.views import BookViews
from raven.model import BookSnapshot
from raven.ops import tracing
from raven.ops.wiring import Operations

if TYPE_CHECKING:
    from raven.storage import Storage

log = logging.getLogger("raven.app")


class StateBooks:
    """The storage layer's view of the live books: a symbol's full canonical book,
    only while it is live and was loaded from a full snapshot."""

    def __init__(self, state: MarketState) -> None:
        self.state = state

    def book_snapshot(self, exchange: str, symbol: str) -> BookSnapshot | None:
        record = self.state.get(exchange, symbol)
        if record is None or not (record.book_live and record.book_full):
            return None
        return record.book_snapshot(0)


class RavenApp:
    def __init__(self, config: RavenConfig) -> None:
        self.config = config
        intervals = config.candles.intervals
        self.state = MarketState(intervals)
        self.bus = Bus()
        self.citadel = Citadel(config.validation, self._increments)
        self.views = BookViews(self.bus)
        self.pipeline = Pipeline(self.state, self.bus, self.citadel, self.views)
        self.pipeline.books.resync = self._request_resync
        # None when [tracing] is off: then the sink and the gRPC server are unwrapped.
        self.tracing = tracing.from_config(config.tracing)
        sink: EventSink = self.pipeline.ingest
        if self.tracing is not None:
            sink = self.tracing.event_sink(sink)
        self.connectors: list[Connector] = []
        self.catalog = Catalog(intervals)
        binance = config.exchanges.binance_futures
        # The metrics, health and validation layers read its stats and instruments.
        self.binance: BinanceFuturesConnector | None = None
        if binance.enabled:
            klines = [s.partition("_")[2] for s in binance.streams if s.startswith("kline_")]
            self.binance = BinanceFuturesConnector(binance, sink)
            self.add_connector(self.binance, binance.symbols, klines)
        self.registry = StreamRegistry(
            self.bus, self.state, self.views, self.catalog, config.server.queue_size
        )
        # History: None when [database] backend = "none". Built once the catalog is known.
        self.storage: Storage | None = None
        if config.database.backend != "none":  # duckdb and pyarrow load only then
            from raven.storage.runtime import Storage

            self.storage = Storage.from_config(
                config.database, config.history, catalog=self.catalog.symbols,
                book_source=StateBooks(self.state),
            )  # fmt: skip
        history = None
        if self.storage is not None:
            from raven.api.history import HistoryService  # with the store, like it

            self.pipeline.recorder = self.storage.recorder
            history = HistoryService(self.storage.reader, self.catalog.symbols, config.history)
        self.service = MarketDataService(config.server, self.registry, history=history)
        interceptors = [] if self.tracing is None else [self.tracing.server_interceptor()]
        self.grpc = GrpcServer(config.server, self.service, interceptors=interceptors)
        self.ops = Operations(self)  # metrics, health, /metrics /health /ready
        self._tasks: list[asyncio.Task[None]] = []

    def add_connector(
        self, connector: Connector, symbols: Iterable[str], klines: Iterable[str] = ()
    ) -> None:
        """Feed the pipeline from `connector` (built with `self.pipeline.ingest` as
        its sink); clients may subscribe to `symbols`. Call before `start()`."""
        self.connectors.append(connector)
        self.catalog.add(connector.name, symbols, klines)

    def _connector(self, exchange: str) -> Connector | None:
        return next((c for c in self.connectors if c.name == exchange), None)

    def _request_resync(self, exchange: str, symbol: str, reason: str) -> None:
        connector = self._connector(exchange)
        if connector is not None:
            connector.request_resync(symbol, reason)

    def _increments(self, exchange: str, symbol: str) -> tuple[str, str] | None:
        """(tick size, step size) from the connector's `instruments`, once it has them."""
        instruments = getattr(self._connector(exchange), "instruments", None)
        instrument = instruments.get(symbol) if instruments else None
        if instrument is None:
            return None
        return str(instrument.tick_size), str(instrument.step_size)

    async def start(self) -> None:
        """Storage first (it writes any old spool), then gRPC and ops, then the feeds.
        A part that fails to start stops the parts already started."""
        started: list[Callable[[], Awaitable[None]]] = []
        try:
            if self.storage is not None:
                await self.storage.start()
                started.append(self.storage.stop)
            await self.grpc.start()
            started.append(lambda: self.grpc.stop(0))
            await self.ops.start()
        except BaseException:
            for stop in reversed(started):
                await stop()
            raise
        for connector in self.connectors:
            task = asyncio.create_task(connector.run(), name=f"connector-{connector.name}")
            self._tasks.append(task)

    async def stop(self) -> None:
        log.info("shutting down")
        await self.ops.stop()
        await self.grpc.stop(self.config.server.shutdown_grace_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.views.close()
        if self.storage is not None:
            await self.storage.stop()  # writes what it can, spools the rest
        if self.tracing is not None:
            self.tracing.shutdown()

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
