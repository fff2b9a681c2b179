"""Books through the real connector against the real simulator: equal to the
simulator's truth after sync and after every later event, at every diff depth
speed, across gaps, dropped and expired connections, engineered bridge edges
and connection replacements before the venue's 24-hour close."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import AsyncIterator

from raven.connectors.binance.connector import BinanceFuturesConnector
from raven.connectors.binance.streams import Route
from raven.model import Trade
from raven.sim.server import Simulator
from tests.connectors.binance.running import make_connector, running
from tests.helpers import wait_until
from tests.integration.conftest import SYMBOLS, StartSim, all_live, connected
from tests.integration.market import SPEEDS, Market
from tests.integration.truth import TruthBooks

Followed = list[tuple[BinanceFuturesConnector, TruthBooks]]


@contextlib.asynccontextmanager
async def one_connector_per_speed(sim: Simulator) -> AsyncIterator[Followed]:
    """Three connectors on the same symbols, one per diff depth speed, running."""
    followed: Followed = []
    async with contextlib.AsyncExitStack() as stack:
        for stream in SPEEDS:
            books = TruthBooks(sim.truth)
            connector = make_connector(sim.ws_url, sim.rest_url, list(SYMBOLS), [stream], books)
            await stack.enter_async_context(running(connector))
            followed.append((connector, books))
        await wait_until(
            lambda: all(all_live(c) for c, _ in followed), what="every book at every speed live"
        )
        yield followed
    for _, books in followed:
        books.assert_ok()


def have_deltas(followed: Followed, at_least: int, since: dict[tuple[int, str], int]) -> bool:
    return all(
        books.deltas[s] >= since.get((i, s), 0) + at_least
        for i, (_, books) in enumerate(followed)
        for s in SYMBOLS
    )


def delta_counts(followed: Followed) -> dict[tuple[int, str], int]:
    return {(i, s): books.deltas[s] for i, (_, books) in enumerate(followed) for s in SYMBOLS}


async def test_books_equal_the_truth_after_every_event_at_every_speed(
    start_sim: StartSim,
) -> None:
    sim = await start_sim()
    async with one_connector_per_speed(sim) as followed:
        await wait_until(lambda: have_deltas(followed, 12, {}), what="12 deltas per book")
    for connector, books in followed:
        for symbol in SYMBOLS:
            stats = connector.books.stats[symbol]
            assert (stats.snapshots, stats.gaps, stats.resyncs) == (1, 0, 0)
            assert books.checks[symbol] == 1 + books.deltas[symbol], "checked after every event"
        assert books.stale() == []
    depth_calls = collections.Counter(r.symbol for r in sim.rest.requests if "depth" in r.path)
    assert depth_calls == dict.fromkeys(SYMBOLS, 3), "one snapshot per book"


async def test_a_gap_on_one_symbol_resyncs_that_symbol_only(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with one_connector_per_speed(sim) as followed:
        await wait_until(lambda: have_deltas(followed, 3, {}), what="deltas on every book")
        before = delta_counts(followed)
        assert sim.faults.gap("BTCUSDT") == [
            "btcusdt@depth@0ms", "btcusdt@depth@100ms", "btcusdt@depth", "btcusdt@depth@500ms"
        ]  # fmt: skip
        await wait_until(
            lambda: all(c.books.stats["BTCUSDT"].resyncs == 1 and all_live(c) for c, _ in followed),
            what="BTCUSDT resynced and live again at every speed",
        )
        await wait_until(lambda: have_deltas(followed, 3, before), what="deltas after the gap")
    for i, (connector, books) in enumerate(followed):
        btc = connector.books.stats["BTCUSDT"]
        assert (btc.gaps, btc.resyncs, btc.snapshots) == (1, 1, 2)
        assert [s.symbol for s in books.stale()] == ["BTCUSDT"]
        for other in ("ETHUSDT", "SOLUSDT"):
            stats = connector.books.stats[other]
            assert (stats.gaps, stats.resyncs, stats.snapshots) == (0, 0, 1)
            # TruthBooks checked that each delta chained to the one before: the
            # other symbols' streams went on through BTCUSDT's resync, nothing lost.
            assert books.deltas[other] >= before[(i, other)] + 3
    depth_calls = collections.Counter(r.symbol for r in sim.rest.requests if "depth" in r.path)
    assert depth_calls == {"BTCUSDT": 6, "ETHUSDT": 3, "SOLUSDT": 3}


async def test_dropped_and_expired_connections_resync_their_books_only(
    start_sim: StartSim,
) -> None:
    sim = await start_sim()
    books = TruthBooks(sim.truth)
    connector = make_connector(
        sim.ws_url, sim.rest_url, list(SYMBOLS), ["depth@100ms", "aggTrade"], books
    )
    public = next(c for c in connector.connections if c.route is Route.PUBLIC)
    market = next(c for c in connector.connections if c.route is Route.MARKET)
    stats = connector.books.stats

    async def resynced(times: int) -> None:
        await wait_until(
            lambda: all_live(connector) and all(stats[s].snapshots == times + 1 for s in SYMBOLS),
            what=f"every book live again ({times})",
        )
        count = sum(books.deltas.values())
        await wait_until(lambda: sum(books.deltas.values()) > count + 6, what="deltas again")

    async with running(connector):
        await wait_until(lambda: all_live(connector), what="every book live")
        assert sim.faults.drop_connections(Route.PUBLIC) == 1
        await resynced(1)
        assert sim.faults.drop_connections(Route.PUBLIC) == 1
        await resynced(2)
        assert sim.faults.expire_connections() == 2  # the venue's 24-hour close, both
        await resynced(3)
        assert sim.faults.drop_connections(Route.MARKET) == 1
        await wait_until(lambda: market.stats.connects == 3 and market.connected, what="market")
        trades = sum(isinstance(e, Trade) for e in books.events)
        await wait_until(
            lambda: sum(isinstance(e, Trade) for e in books.events) > trades + 5, what="trades"
        )
    books.assert_ok()
    assert (public.stats.disconnects, market.stats.disconnects) == (3, 2)
    for symbol in SYMBOLS:
        # the market connection's loss cost no book anything
        assert (stats[symbol].resyncs, stats[symbol].snapshots, stats[symbol].gaps) == (3, 4, 0)
        assert len(books.stale(symbol)) == 3


def edges(books: TruthBooks) -> tuple[bool, bool]:
    bridge = books.bridges[-1]
    return bridge.lower_edge, bridge.upper_edge


async def test_bridge_events_at_either_inclusive_edge_aggregated(start_sim: StartSim) -> None:
    """@depth@100ms, the market driven by hand so the snapshot lands where the test wants."""
    sim = await start_sim(paused=True, symbols=("BTCUSDT",))
    market = Market(sim, "depth@100ms")
    books = TruthBooks(sim.truth)
    connector = make_connector(sim.ws_url, sim.rest_url, ["BTCUSDT"], [market.stream], books)
    fetcher = connector.snapshots.stats
    async with running(connector):
        await wait_until(
            lambda: connected(connector) and sim.hub.has(market.name("BTCUSDT")), what="subscribed"
        )
        # U < lastUpdateId == u: one window of two transactions, the snapshot after it.
        market.step()
        market.step()
        market.tick()
        await wait_until(lambda: all_live(connector), what="live")
        assert edges(books) == (False, True)

        # U == lastUpdateId < u: the snapshot is taken right after a one-change
        # transaction opened a window; the window closes after one more.
        connector.request_resync("BTCUSDT", "the test wants a new bridge")
        fetched = fetcher.fetched
        market.step()
        market.tick()  # an event: the connector buffers it and asks for a snapshot
        while (step := market.step()).txn.first_id != step.txn.last_id:
            market.tick()  # not a one-change transaction: close its window, try again
        await wait_until(lambda: fetcher.fetched > fetched, what="the snapshot")
        market.step()
        market.tick()
        await wait_until(lambda: all_live(connector), what="live again")
        assert edges(books) == (True, False)
        assert books.bridges[-1].snapshot == step.txn.first_id
    books.assert_ok()
    assert books.snapshots["BTCUSDT"] == 2
    assert connector.books.stats["BTCUSDT"].stale_snapshots == 0


async def test_bridge_events_at_either_inclusive_edge_per_event(start_sim: StartSim) -> None:
    """@depth@0ms: the snapshot's lastUpdateId is the u of the last transaction sent."""
    sim = await start_sim(paused=True, symbols=("BTCUSDT",))
    market = Market(sim, "depth@0ms")
    books = TruthBooks(sim.truth)
    connector = make_connector(sim.ws_url, sim.rest_url, ["BTCUSDT"], [market.stream], books)
    async with running(connector):
        await wait_until(
            lambda: connected(connector) and sim.hub.has(market.name("BTCUSDT")), what="subscribed"
        )
        # U < lastUpdateId == u: the last event before the snapshot changed several levels.
        while (step := market.step()).txn.first_id == step.txn.last_id:
            pass
        await wait_until(lambda: all_live(connector), what="live")
        assert edges(books) == (False, True)
        assert books.bridges[-1].snapshot == step.txn.last_id

        # U == lastUpdateId == u: the last event before the snapshot changed one level.
        connector.request_resync("BTCUSDT", "the test wants a new bridge")
        while (step := market.step()).txn.first_id != step.txn.last_id:
            pass
        await wait_until(lambda: all_live(connector), what="live again")
        assert edges(books) == (True, True)
        assert books.bridges[-1].snapshot == step.txn.last_id
    books.assert_ok()


async def test_replacing_connections_before_the_venues_limit_costs_nothing(
    start_sim: StartSim,
) -> None:
    """The 24-hour rollover, compressed: the venue closes a connection after 1.5 s,
    the connector replaces each after 0.3 s. No resync, no lost or repeated event."""
    sim = await start_sim(max_connection_s=1.5)
    books = TruthBooks(sim.truth)
    connector = make_connector(
        sim.ws_url, sim.rest_url, list(SYMBOLS), ["depth@0ms", "aggTrade"], books,
        max_connection_age_s=0.3,
    )  # fmt: skip
    async with running(connector):
        await wait_until(lambda: all_live(connector), what="every book live")
        await wait_until(
            lambda: all(c.stats.rollovers >= 3 for c in connector.connections),
            what="three replacements of each connection",
        )
    books.assert_ok()
    assert sim.stats.expired == 0, "every connection was replaced before the venue closed it"
    for conn in connector.connections:
        assert (conn.stats.disconnects, conn.stats.forced_handovers) == (0, 0)
    for symbol in SYMBOLS:
        stats = connector.books.stats[symbol]
        assert (stats.snapshots, stats.resyncs, stats.gaps) == (1, 0, 0)
        assert books.deltas[symbol] > 0
    assert books.stale() == []
    trades: dict[str, list[int]] = collections.defaultdict(list)
    for event in books.events:
        if isinstance(event, Trade):
            trades[event.symbol].append(event.trade_id)
    assert set(trades) == set(SYMBOLS)
    for symbol, ids in trades.items():
        assert ids == list(range(ids[0], ids[0] + len(ids))), f"{symbol}: a trade lost or repeated"
