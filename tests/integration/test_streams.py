"""Every stream type the simulator serves, through the real connector: each
payload the simulator sent arrives exactly once as a normalized event, none
is skipped or taken for a duplicate, books stay true, and each kline bar
ends with one final push."""

from __future__ import annotations

import collections
import contextlib

from raven.connectors.binance.streams import Route
from raven.model import (
    BookDelta,
    BookSnapshot,
    Candle,
    Event,
    Funding,
    Liquidation,
    Quote,
    Trade,
)
from tests.connectors.binance.running import make_connector, running
from tests.helpers import wait_until
from tests.integration.conftest import StartSim, all_live
from tests.integration.truth import TruthBooks

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
PARTIAL = {5: "depth5", 10: "depth10@100ms", 20: "depth20@500ms"}
STREAMS = [
    "aggTrade", "trade", "bookTicker", "depth@100ms", *PARTIAL.values(),
    "kline_1s", "kline_1m", "markPrice@1s", "forceOrder",
]  # fmt: skip


EVERY = {f"{s.lower()}@{t}" for s in SYMBOLS for t in STREAMS if t != "depth@100ms"}


def stream_of(event: Event) -> str | None:
    """The stream an event came from (None: book deltas, statuses)."""
    name = event.symbol.lower()
    match event:
        case Trade():
            return f"{name}@{'aggTrade' if event.first_trade_id else 'trade'}"
        case Quote():
            return f"{name}@bookTicker"
        case BookSnapshot() if event.depth:
            return f"{name}@{PARTIAL[event.depth]}"
        case Candle():
            return f"{name}@kline_{event.interval}"
        case Funding():
            return f"{name}@markPrice@1s"
        case Liquidation():
            return f"{name}@forceOrder"
    return None


async def test_every_stream_arrives_exactly_once(start_sim: StartSim) -> None:
    sim = await start_sim(symbols=tuple(SYMBOLS), rate=300.0, liquidation_share=0.3,
                          record_frames=200_000)  # fmt: skip
    books = TruthBooks(sim.truth)
    connector = make_connector(sim.ws_url, sim.rest_url, SYMBOLS, STREAMS, books)

    def finals(symbol: str) -> int:
        return sum(
            isinstance(e, Candle) and e.closed and e.interval == "1s" and e.symbol == symbol
            for e in books.events
        )

    def received() -> collections.Counter[str]:
        return collections.Counter(s for e in books.events if (s := stream_of(e)) is not None)

    def sent() -> collections.Counter[str]:
        counts: collections.Counter[str] = collections.Counter()
        for conn in sim.hub.connections:
            counts.update(s.stream for s in conn.sent if "@depth@" not in s.stream)
        return counts

    async with running(connector):
        await wait_until(lambda: all_live(connector), what="both books live")
        await wait_until(lambda: all(finals(s) >= 3 for s in SYMBOLS), what="three 1s bars each")
        await wait_until(
            lambda: {stream_of(e) for e in books.events} >= EVERY, what="every stream's events"
        )
        sim.feed_enabled.clear()  # what is on the way arrives; nothing new is sent
        with contextlib.suppress(AssertionError):  # the assertion below says what differs
            await wait_until(lambda: received() == sent(), what="what was sent to arrive")
        assert received() == sent(), "each payload sent arrives once as an event"
    books.assert_ok()
    for conn in connector.connections:
        assert sum(conn.decoder.stats.skipped.values()) == 0, conn.decoder.stats
        assert conn.dedup.duplicates == 0, "no event is taken for a repeat"
        assert (conn.stats.connects, conn.stats.disconnects) == (1, 0)
    assert {c.route for c in connector.connections} == {Route.PUBLIC, Route.MARKET}
    assert all(books.deltas[s] > 0 for s in SYMBOLS)
    assert books.stale() == []
    for symbol in SYMBOLS:
        bars: dict[int, list[bool]] = collections.defaultdict(list)
        for e in books.events:
            if isinstance(e, Candle) and e.symbol == symbol and e.interval == "1s":
                assert not e.from_trades
                bars[e.open_time].append(e.closed)
        *done, last = sorted(bars)
        assert len(done) >= 2
        for open_time in done:  # updates, then exactly one final push
            assert bars[open_time][-1], bars[open_time]
            assert bars[open_time].count(True) == 1, bars[open_time]
        assert bars[last].count(True) == bars[last][-1], "the open bar, or a final one"
    assert not any(isinstance(e, BookDelta) and e.depth for e in books.events)
