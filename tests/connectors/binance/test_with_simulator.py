"""The connector against Raven's own simulator (aggTrade and bookTicker today).

These take only the simulator's URLs; once the simulator serves depth and
the REST endpoints, the book tests in test_books.py can be run against it
the same way (build the connector with `sim.ws_url`, `sim.rest_url`).
"""

from __future__ import annotations

import collections

from raven.connectors.binance.streams import Route
from raven.model import Event, Quote, Status, Trade
from raven.sim.instruments import instrument
from raven.sim.server import Simulator
from raven.types import StatusKind
from tests.connectors.binance.running import make_connector, running
from tests.helpers import wait_until

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def trades_by_symbol(events: list[Event]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = collections.defaultdict(list)
    for e in events:
        if isinstance(e, Trade):
            out[e.symbol].append(e.trade_id)
    return out


async def test_instruments_come_from_the_simulators_exchange_info(sim: Simulator) -> None:
    connector = make_connector(sim.ws_url, sim.rest_url, SYMBOLS, ["aggTrade"], lambda e: None)
    async with running(connector):
        await wait_until(lambda: connector.connections[0].connected, what="the connection")
    for symbol in SYMBOLS:
        spec = connector.instruments[symbol]
        assert (spec.tick_size, spec.step_size) == (
            instrument(symbol).tick_size,
            instrument(symbol).step_size,
        )
    assert connector.instruments["BTCUSDT"].tick_size == "0.10"
    assert connector.limiter.stats.weight_sent == 1


async def test_dropping_one_connection_leaves_the_other_running(sim: Simulator) -> None:
    events: list[Event] = []
    connector = make_connector(
        sim.ws_url, sim.rest_url, SYMBOLS, ["aggTrade", "bookTicker"], events.append
    )
    market = next(c for c in connector.connections if c.route is Route.MARKET)
    public = next(c for c in connector.connections if c.route is Route.PUBLIC)
    async with running(connector):
        await wait_until(lambda: market.connected and public.connected, what="both connections")
        sim.feed_enabled.set()
        await wait_until(lambda: any(isinstance(e, Trade) for e in events), what="trades")
        for conn in list(sim.hub.connections):
            if conn.route is Route.MARKET:
                conn.overflowed = True  # the simulator closes it as too slow (1008)
                conn.wakeup.set()
        await wait_until(lambda: market.connects == 2 and market.connected, what="a reconnect")
        seen = len(events)
        await wait_until(
            lambda: {type(e) for e in events[seen:]} >= {Trade, Quote}, what="both kinds again"
        )
    assert (public.stats.connects, public.stats.disconnects) == (1, 0)
    assert market.stats.disconnects == 1
    lost = [e for e in events if isinstance(e, Status) and e.status is StatusKind.FEED_DISCONNECTED]
    assert len(lost) == 1
    assert market.label in lost[0].detail


async def test_replacements_lose_and_repeat_no_trade(sim: Simulator) -> None:
    events: list[Event] = []
    connector = make_connector(
        sim.ws_url, sim.rest_url, SYMBOLS, ["aggTrade"], events.append, max_connection_age_s=0.3
    )
    (conn,) = connector.connections
    async with running(connector):
        await wait_until(lambda: conn.connected, what="the connection")
        sim.feed_enabled.set()
        await wait_until(lambda: conn.stats.rollovers >= 3, what="three replacements")
        sim.feed_enabled.clear()
    by_symbol = trades_by_symbol(events)
    assert set(by_symbol) == set(SYMBOLS)
    for symbol, ids in by_symbol.items():
        assert ids == list(range(ids[0], ids[0] + len(ids))), f"{symbol}: a gap or a repeat"
    assert conn.stats.disconnects == 0
    assert conn.stats.forced_handovers == 0
