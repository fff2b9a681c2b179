"""Order books through the whole connector against a real loopback peer.

The peer serves diff depth over WebSocket and snapshots over REST from a
`DepthModel`; a `Replica` applies what the connector emits as the state
layer would and compares each book with the model's truth after every
event. Faults: a lost event (gap) on one symbol, a dropped connection, a
replacement before the 24-hour limit, a requested resync, periodic refresh.
"""

from __future__ import annotations

from typing import Any

from raven.connectors.binance import wire
from raven.connectors.binance.book_sync import BookState
from raven.connectors.binance.connector import BinanceFuturesConnector
from raven.model import BookSnapshot, Event, Instrument
from raven.types import StatusKind
from tests.connectors.binance.replica import Replica
from tests.connectors.binance.running import make_connector, repeating, running
from tests.connectors.binance.venue import Venue
from tests.helpers import wait_until

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def book_connector(venue: Venue, replica: Replica, **overrides: Any) -> BinanceFuturesConnector:
    return make_connector(
        venue.ws_url, venue.rest_url, SYMBOLS, ["depth@100ms"], replica, **overrides
    )


def live(connector: BinanceFuturesConnector, *symbols: str) -> bool:
    return all(connector.books.stats[s].state is BookState.LIVE for s in symbols or SYMBOLS)


def stale_symbols(replica: Replica) -> list[str]:
    return [s.symbol for s in replica.statuses if s.status is StatusKind.BOOK_STALE]


async def feed(venue: Venue) -> None:
    await venue.send_depth()


async def test_books_go_live_and_stay_equal_to_the_truth(venue: Venue) -> None:
    replica = Replica(venue.model)
    connector = book_connector(venue, replica)
    async with running(connector), repeating(lambda: feed(venue)):
        await wait_until(lambda: live(connector), what="both books live")
        checks = replica.checks
        await wait_until(lambda: replica.checks > checks + 100, what="deltas after sync")
    for symbol in SYMBOLS:
        stats = connector.books.stats[symbol]
        assert (stats.snapshots, stats.gaps, stats.resyncs) == (1, 0, 0)
    depth_calls = [c for c in venue.rest_calls if c.path == "/fapi/v1/depth"]
    assert sorted(c.symbol for c in depth_calls) == SYMBOLS
    assert stale_symbols(replica) == []


async def test_a_gap_on_one_symbol_resyncs_that_symbol_only(venue: Venue) -> None:
    replica = Replica(venue.model)
    connector = book_connector(venue, replica)
    async with running(connector), repeating(lambda: feed(venue)):
        await wait_until(lambda: live(connector), what="both books live")
        eth_before = connector.books.stats["ETHUSDT"].last_update_id
        await venue.send_depth("BTCUSDT", deliver=False)  # lost: a gap
        await wait_until(
            lambda: connector.books.stats["BTCUSDT"].resyncs == 1 and live(connector, "BTCUSDT"),
            what="BTCUSDT live again",
        )
        checks = replica.checks
        await wait_until(lambda: replica.checks > checks + 20, what="deltas after the resync")
    btc, eth = connector.books.stats["BTCUSDT"], connector.books.stats["ETHUSDT"]
    assert (btc.gaps, btc.snapshots) == (1, 2)
    assert (eth.gaps, eth.resyncs, eth.snapshots) == (0, 0, 1)
    assert eth.last_update_id > eth_before, "ETHUSDT kept flowing"
    assert stale_symbols(replica) == ["BTCUSDT"]
    depth_calls = [c.symbol for c in venue.rest_calls if c.path == "/fapi/v1/depth"]
    assert sorted(depth_calls) == ["BTCUSDT", "BTCUSDT", "ETHUSDT"]


async def test_a_dropped_connection_resyncs_its_books(venue: Venue) -> None:
    replica = Replica(venue.model)
    connector = book_connector(venue, replica)
    async with running(connector), repeating(lambda: feed(venue)):
        await wait_until(lambda: live(connector), what="both books live")
        (sock,) = venue.open_sockets
        await venue.close(sock)
        await wait_until(
            lambda: (
                live(connector) and all(connector.books.stats[s].snapshots == 2 for s in SYMBOLS)
            ),
            what="both books live again",
        )
    assert sorted(stale_symbols(replica)) == SYMBOLS
    assert [connector.books.stats[s].resyncs for s in SYMBOLS] == [1, 1]


async def test_books_stay_live_across_replacements(venue: Venue) -> None:
    replica = Replica(venue.model)
    connector = book_connector(venue, replica, max_connection_age_s=0.4)
    (conn,) = connector.connections
    async with running(connector), repeating(lambda: feed(venue)):
        await wait_until(lambda: live(connector), what="both books live")
        await wait_until(lambda: conn.stats.rollovers >= 2, what="two replacements")
    assert stale_symbols(replica) == []
    for symbol in SYMBOLS:
        stats = connector.books.stats[symbol]
        assert (stats.gaps, stats.resyncs, stats.snapshots) == (0, 0, 1)
    assert conn.stats.forced_handovers == 0


async def test_a_requested_resync_rebuilds_that_book(venue: Venue) -> None:
    replica = Replica(venue.model)
    connector = book_connector(venue, replica)
    async with running(connector), repeating(lambda: feed(venue)):
        await wait_until(lambda: live(connector), what="both books live")
        connector.request_resync("ETHUSDT", "a delta failed validation")
        assert connector.books.stats["ETHUSDT"].state is BookState.STALE
        assert replica.statuses[-1].detail == "resync requested: a delta failed validation"
        await wait_until(lambda: live(connector, "ETHUSDT"), what="ETHUSDT live again")
    assert connector.books.stats["ETHUSDT"].snapshots == 2
    assert connector.books.stats["BTCUSDT"].resyncs == 0


async def test_books_are_refreshed_periodically_and_stay_true(venue: Venue) -> None:
    replica = Replica(venue.model)
    connector = book_connector(venue, replica, book_refresh_s=0.2)
    async with running(connector), repeating(lambda: feed(venue)):
        await wait_until(
            lambda: all(connector.books.stats[s].refreshes >= 2 for s in SYMBOLS),
            what="two refreshes of each book",
        )
    assert stale_symbols(replica) == []
    assert sum(isinstance(e, BookSnapshot) for e in replica.events) >= 6
    assert all(connector.books.stats[s].resyncs == 0 for s in SYMBOLS)


async def test_partial_depth_is_a_snapshot_of_n_levels_without_rest(venue: Venue) -> None:
    events: list[Event] = []
    connector = make_connector(
        venue.ws_url, venue.rest_url, ["BTCUSDT"], ["depth5@100ms"], events.append
    )
    top = wire.DepthUpdate(
        E=1, T=1, s="BTCUSDT", U=10, u=12, pu=9,
        b=[("99.9", "1"), ("99.8", "2")], a=[("100.1", "3")],
    )  # fmt: skip
    async with running(connector):
        await wait_until(lambda: connector.connections[0].connected, what="the connection")
        await venue.send("btcusdt@depth5@100ms", wire.encoder.encode(top))
        await wait_until(lambda: any(isinstance(e, BookSnapshot) for e in events), what="it")
    (snap,) = [e for e in events if isinstance(e, BookSnapshot)]
    assert (snap.depth, snap.update_id, snap.bids, snap.asks) == (
        5,
        12,
        (("99.9", "1"), ("99.8", "2")),
        (("100.1", "3"),),
    )
    assert [c.path for c in venue.rest_calls] == ["/fapi/v1/exchangeInfo"]
    assert connector.books.stats == {}


async def test_instruments_are_known_before_market_data_flows(venue: Venue) -> None:
    seen_at_first_event: list[dict[str, Instrument]] = []
    connector: BinanceFuturesConnector

    def sink(event: Event) -> None:
        if not seen_at_first_event:
            seen_at_first_event.append(dict(connector.instruments))

    connector = make_connector(
        venue.ws_url, venue.rest_url, ["BTCUSDT", "NOPEUSDT"], ["depth@100ms"], sink
    )
    instruments = connector.instruments
    async with running(connector), repeating(lambda: feed(venue)):
        await wait_until(lambda: live(connector, "BTCUSDT"), what="BTCUSDT live")
    expected = {"BTCUSDT": Instrument("binance_futures", "BTCUSDT", "0.1", "0.001", "0.001", "0.1")}
    assert seen_at_first_event == [expected]
    assert instruments is connector.instruments, "updated in place"
    assert connector.instruments == expected, "an unlisted symbol has no instrument"
    assert connector.connections[0].watched == ["btcusdt@depth@100ms"], "nor a silence watch"
