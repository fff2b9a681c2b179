"""Broken frames from the real simulator: counted by reason and skipped, on the
connection they came on; nothing reconnects, the feed goes on, books stay true."""

from __future__ import annotations

from raven.connectors.binance.streams import Route
from raven.model import Trade
from tests.connectors.binance.running import make_connector, running
from tests.helpers import wait_until
from tests.integration.conftest import SYMBOLS, StartSim, all_live
from tests.integration.truth import TruthBooks


async def test_bad_frames_are_counted_by_reason_and_skipped(start_sim: StartSim) -> None:
    sim = await start_sim()
    books = TruthBooks(sim.truth)
    connector = make_connector(
        sim.ws_url, sim.rest_url, list(SYMBOLS), ["depth@0ms", "aggTrade"], books
    )
    public = next(c for c in connector.connections if c.route is Route.PUBLIC)
    market = next(c for c in connector.connections if c.route is Route.MARKET)
    async with running(connector):
        await wait_until(lambda: all_live(connector), what="every book live")
        injected = [
            sim.faults.malformed("btcusdt@depth@0ms", "truncated"),
            sim.faults.malformed("ethusdt@depth@0ms", "not_json"),
            sim.faults.malformed("solusdt@depth@0ms", "invalid_utf8"),
            sim.faults.malformed("btcusdt@depth@0ms", "unknown_event"),  # {"e":"futureEvent"}
            sim.faults.malformed("ethusdt@depth@0ms", "oversized"),  # 8 MiB, past 4 MiB
            sim.faults.malformed("btcusdt@aggTrade", "unknown_event"),
            sim.faults.malformed("solusdt@aggTrade", "oversized"),
        ]
        assert injected == [1] * 7, "each went to the one connection carrying its stream"
        deltas = dict(books.deltas)
        trades = sum(isinstance(e, Trade) for e in books.events)
        # The frames were queued behind the bad ones: these prove the feed went on.
        await wait_until(
            lambda: all(books.deltas[s] > deltas[s] + 10 for s in SYMBOLS), what="deltas after"
        )
        await wait_until(
            lambda: sum(isinstance(e, Trade) for e in books.events) > trades + 10,
            what="trades after",
        )
    books.assert_ok()
    assert public.decoder.stats.skipped == {
        "malformed": 3, "unknown_event": 1, "unknown_stream": 0, "oversized": 1, "error_reply": 0,
    }  # fmt: skip
    assert market.decoder.stats.skipped == {
        "malformed": 0, "unknown_event": 1, "unknown_stream": 0, "oversized": 1, "error_reply": 0,
    }  # fmt: skip
    for conn in (public, market):
        assert (conn.stats.connects, conn.stats.disconnects) == (1, 0), "no frame cost a connection"
    for symbol in SYMBOLS:
        stats = connector.books.stats[symbol]
        assert (stats.snapshots, stats.resyncs, stats.gaps) == (1, 0, 0)
