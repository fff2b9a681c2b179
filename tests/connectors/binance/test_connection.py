"""WebSocket connections against a real loopback peer: reconnects, silence,
replacement before the 24-hour limit, paced subscriptions, bad frames."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from raven.connectors.binance import wire
from raven.connectors.binance.connection import Connection
from raven.connectors.binance.connector import BinanceFuturesConnector
from raven.connectors.binance.streams import Route
from raven.model import Event, Status, Trade
from raven.types import StatusKind
from tests.connectors.binance.running import make_connector, running
from tests.connectors.binance.venue import Venue
from tests.helpers import wait_until


def trade(a: int, symbol: str = "BTCUSDT") -> bytes:
    payload = wire.AggTrade(E=1_700_000_000_000 + a, a=a, s=symbol, p="100.0", q="1", f=a, l=a, T=1)
    return wire.encoder.encode(payload)


def connection(connector: BinanceFuturesConnector, route: Route) -> Connection:
    (found,) = [c for c in connector.connections if c.route is route]
    return found


def statuses(events: list[Event], kind: StatusKind) -> list[Status]:
    return [e for e in events if isinstance(e, Status) and e.status is kind]


def trade_ids(events: list[Event]) -> list[int]:
    return [e.trade_id for e in events if isinstance(e, Trade)]


@contextlib.asynccontextmanager
async def trades_flowing(venue: Venue, symbol: str = "BTCUSDT") -> AsyncIterator[list[int]]:
    """Push consecutive aggTrades while the block runs; yields the ids that reached a socket."""
    sent: list[int] = []

    async def push() -> None:
        a = 1
        while True:
            if await venue.send(f"{symbol.lower()}@aggTrade", trade(a, symbol)):
                sent.append(a)
            a += 1
            await asyncio.sleep(0.001)  # paces the generator only; nothing waits on it

    task = asyncio.create_task(push())
    try:
        yield sent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_closed_connection_reconnects_and_the_other_keeps_running(venue: Venue) -> None:
    events: list[Event] = []
    connector = make_connector(
        venue.ws_url, venue.rest_url, ["BTCUSDT"], ["aggTrade", "bookTicker"], events.append
    )
    market, public = connection(connector, Route.MARKET), connection(connector, Route.PUBLIC)
    async with running(connector):
        await wait_until(lambda: market.connected and public.connected, what="both connections")
        (first_market,) = [s for s in venue.open_sockets if s.route == "market"]
        await venue.close(first_market)
        await wait_until(lambda: market.connects == 2 and market.connected, what="a reconnect")
        async with trades_flowing(venue) as sent:
            await wait_until(lambda: len(trade_ids(events)) >= 5, what="trades after it")
        assert sent
    assert (public.stats.connects, public.stats.disconnects) == (1, 0)
    assert (market.stats.disconnects, market.stats.attempts) == (1, 2)
    lost = statuses(events, StatusKind.FEED_DISCONNECTED)
    assert [s.detail.split(":")[0] for s in lost] == [market.label]
    assert "1008" in lost[0].detail
    connected = statuses(events, StatusKind.FEED_CONNECTED)
    assert sorted(s.detail.split(":")[0] for s in connected) == sorted(
        [market.label, market.label, public.label]
    )


async def test_silence_on_a_busy_stream_reconnects_that_connection_only(venue: Venue) -> None:
    events: list[Event] = []
    connector = make_connector(
        venue.ws_url, venue.rest_url, ["BTCUSDT"], ["aggTrade", "bookTicker"], events.append,
        silence_timeout_s=0.2,
    )  # fmt: skip
    market, public = connection(connector, Route.MARKET), connection(connector, Route.PUBLIC)
    async with running(connector):
        await wait_until(lambda: public.stats.connects >= 3, what="reconnects after silence")
    # bookTicker should be busy; aggTrade may be quiet (not in busy_streams)
    assert public.stats.silence_reconnects >= 2
    assert (market.stats.silence_reconnects, market.stats.connects) == (0, 1)
    lost = statuses(events, StatusKind.FEED_DISCONNECTED)
    assert lost
    assert all(public.label in s.detail and "silent" in s.detail for s in lost)


async def test_replacement_before_the_age_limit_has_no_gap_and_no_repeat(venue: Venue) -> None:
    events: list[Event] = []
    connector = make_connector(
        venue.ws_url, venue.rest_url, ["BTCUSDT"], ["aggTrade"], events.append,
        max_connection_age_s=0.3,
    )  # fmt: skip
    (conn,) = connector.connections
    async with running(connector):
        await wait_until(lambda: conn.connected, what="the connection")
        async with trades_flowing(venue) as sent:
            await wait_until(lambda: conn.stats.rollovers >= 3, what="three replacements")
        await wait_until(lambda: trade_ids(events)[-1:] == sent[-1:], what="the last trade")
    ids = trade_ids(events)
    assert ids == sent, "every trade once, in order, across every switch"
    assert len(ids) > 50
    assert conn.stats.forced_handovers == 0
    assert conn.stats.disconnects == 0
    assert conn.dedup.duplicates > 0, "the overlaps did repeat trades; they were dropped"
    assert statuses(events, StatusKind.FEED_DISCONNECTED) == []
    # each replacement opened before its predecessor closed
    for index in range(1, conn.stats.rollovers + 1):
        assert venue.log.index(("open", index)) < venue.log.index(("close", index - 1))


async def test_streams_beyond_the_url_are_subscribed_by_paced_messages() -> None:
    symbols = [f"S{i:02d}USDT" for i in range(12)]
    venue = Venue(tuple(symbols))
    await venue.start()
    events: list[Event] = []
    connector = make_connector(
        venue.ws_url, venue.rest_url, symbols, ["aggTrade"], events.append,
        max_url_length=90, subscribe_batch_size=4, subscribe_messages_per_s=2,
    )  # fmt: skip
    (conn,) = connector.connections
    names = [f"{s.lower()}@aggTrade" for s in symbols]
    try:
        async with running(connector):
            await wait_until(
                lambda: bool(venue.sockets) and venue.sockets[0].streams == set(names),
                what="every stream subscribed",
            )
            await wait_until(
                lambda: conn.active is not None and not conn.active.unacked, what="acks"
            )
            await venue.send(names[-1], trade(7, symbols[-1]))
            await wait_until(lambda: trade_ids(events) == [7], what="a trade on the last stream")
    finally:
        await venue.stop()
    sock = venue.sockets[0]
    assert 0 < len(sock.url_streams) < len(names)
    assert len(conn.url) <= 90
    assert sock.url_streams + [n for m in sock.subscribe_messages for n in m] == names
    assert sock.subscribe_messages == conn.batches
    assert max(len(m) for m in sock.subscribe_messages) == 4
    assert conn.stats.subscribe_messages == len(sock.subscribe_messages) == len(conn.batches)
    assert conn.active is not None
    times = conn.active.subscribe_times
    assert all(later - earlier >= 1.0 for earlier, later in zip(times, times[2:], strict=False))


async def test_bad_frames_are_counted_and_skipped_and_the_feed_goes_on(venue: Venue) -> None:
    events: list[Event] = []
    connector = make_connector(
        venue.ws_url, venue.rest_url, ["BTCUSDT"], ["aggTrade"], events.append,
        max_frame_bytes=2000,
    )  # fmt: skip
    (conn,) = connector.connections
    async with running(connector):
        await wait_until(lambda: conn.connected, what="the connection")
        (sock,) = venue.open_sockets
        await venue.send("btcusdt@aggTrade", trade(1))
        await sock.ws.send_str('{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":')
        await venue.send("btcusdt@aggTrade", b'{"e":"brandNew","E":1}')
        await venue.send("btcusdt@aggTrade", trade(2)[:-1] + b',"pad":"' + b"x" * 3000 + b'"}')
        await venue.send("btcusdt@aggTrade", trade(3))
        await wait_until(lambda: trade_ids(events) == [1, 3], what="the good trades")
    skipped = conn.decoder.stats.skipped
    assert (skipped["malformed"], skipped["unknown_event"], skipped["oversized"]) == (1, 1, 1)
    assert conn.stats.connects == 1, "bad frames never cost the connection"


async def test_the_venues_pings_are_answered() -> None:
    venue = Venue(autoping=False)
    await venue.start()
    events: list[Event] = []
    connector = make_connector(
        venue.ws_url, venue.rest_url, ["BTCUSDT"], ["aggTrade"], events.append
    )
    try:
        async with running(connector):
            await wait_until(lambda: connector.connections[0].connected, what="the connection")
            (sock,) = venue.open_sockets
            await sock.ws.ping(b"1791382993000")  # the venue's ping carries a ms timestamp
            await wait_until(lambda: sock.pongs == [b"1791382993000"], what="the pong")
    finally:
        await venue.stop()
