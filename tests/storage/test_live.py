"""A live feed (the simulator, over the real Binance connector) recorded and read back."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from raven import codec
from raven.api.history import HistoryService
from raven.config import HistoryConfig
from raven.connectors.binance.connection import EXCHANGE
from raven.connectors.binance.connector import BinanceFuturesConnector
from raven.model import Event
from raven.sim.server import Simulator
from raven.storage.embedded import DuckDBStore
from raven.storage.runtime import Storage
from raven.types import Kind
from raven.v1 import market_data_pb2 as pb
from tests.conftest import server_config
from tests.helpers import wait_until
from tests.storage.grpc_history import events_of, fetch, serve_history
from tests.storage.test_history import database_config


async def test_what_went_live_comes_back_from_history(sim: Simulator, tmp_path: Path) -> None:
    binance = server_config(sim).exchanges.binance_futures
    storage = Storage([DuckDBStore(tmp_path / "live.duckdb")], database_config(tmp_path),
                      HistoryConfig())  # fmt: skip
    await storage.start()
    live: list[Event] = []

    def sink(event: Event) -> None:  # the pipeline: accepted events, then the recorder
        live.append(event)
        storage.recorder.record(event)

    connector = BinanceFuturesConnector(binance, sink)
    task = asyncio.create_task(connector.run())
    try:
        await wait_until(lambda: all(c.connected for c in connector.connections), what="connected")
        sim.feed_enabled.set()
        await wait_until(lambda: len(live) >= 300, what="300 live events")
    finally:
        sim.feed_enabled.clear()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await wait_until(lambda: storage.writers[0].pending == 0, what="everything written")
    assert {e.kind for e in live} >= {Kind.TRADE, Kind.QUOTE}

    catalog = {EXCHANGE: frozenset(binance.symbols)}
    service = HistoryService(storage.reader, catalog, HistoryConfig())
    request = pb.HistoricalDataRequest(
        symbols=list(binance.symbols), kinds=[int(k) for k in Kind],  # type: ignore[misc]
        start_time_ns=live[0].receive_time, end_time_ns=storage.recorder.last_ts + 1,
    )  # fmt: skip
    async with serve_history(service) as stub:
        got = events_of(await fetch(stub, request))
    await storage.stop()
    assert got == [codec.to_proto(e) for e in live]
