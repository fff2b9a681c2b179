"""A stalled stream: the connector notices the silence and reconnects the one
connection that carries it; the other connection never notices anything."""

from __future__ import annotations

from raven.connectors.binance.streams import Route
from raven.model import Trade
from tests.connectors.binance.running import make_connector, running
from tests.helpers import wait_until
from tests.integration.conftest import SYMBOLS, StartSim, all_live
from tests.integration.truth import TruthBooks


async def test_a_stalled_busy_stream_reconnects_its_connection_only(start_sim: StartSim) -> None:
    sim = await start_sim()
    books = TruthBooks(sim.truth)
    connector = make_connector(
        sim.ws_url, sim.rest_url, list(SYMBOLS), ["depth@0ms", "aggTrade"], books,
        busy_streams=["depth", "aggTrade"], silence_timeout_s=2.0,  # wide: stalls under load
    )  # fmt: skip
    public = next(c for c in connector.connections if c.route is Route.PUBLIC)
    market = next(c for c in connector.connections if c.route is Route.MARKET)
    async with running(connector):
        await wait_until(lambda: all_live(connector), what="every book live")
        trades = sum(isinstance(e, Trade) for e in books.events)
        sim.faults.stall(3.0, ["btcusdt@depth@0ms"])
        await wait_until(lambda: public.stats.silence_reconnects >= 1, what="a silence reconnect")
        await wait_until(
            lambda: all_live(connector) and connector.books.stats["BTCUSDT"].snapshots >= 2,
            what="BTCUSDT live again after the stall",
        )
        count = books.deltas["BTCUSDT"]
        await wait_until(lambda: books.deltas["BTCUSDT"] > count + 10, what="BTCUSDT flowing")
    books.assert_ok()
    assert public.stats.disconnects == public.stats.silence_reconnects >= 1
    assert "silent" in public.stats.last_error
    assert (market.stats.connects, market.stats.disconnects) == (1, 0), "untouched"
    assert sum(isinstance(e, Trade) for e in books.events) > trades, "trades went on"
    for symbol in SYMBOLS:  # every book on the reconnected connection was resynced
        assert connector.books.stats[symbol].resyncs >= 1
