"""Simulator -> connector -> server -> client, over real loopback sockets."""

from __future__ import annotations

import asyncio

from raven.app import RavenApp
from raven.client import AsyncRavenClient
from raven.connectors.binance import wire
from raven.model import Event, Quote, Trade
from raven.sim.server import Simulator
from raven.types import Kind, Side
from tests.helpers import wait_until

TRADES_WANTED = 150


def sent_by_simulator(sim: Simulator) -> tuple[list[wire.AggTrade], list[wire.BookTicker]]:
    """What the simulator really sent to the server's connections, in order."""
    trades: list[wire.AggTrade] = []
    quotes: list[wire.BookTicker] = []
    for conn in sim.hub.connections:
        for sent in conn.sent:
            if isinstance(sent.payload, wire.AggTrade):
                trades.append(sent.payload)
            elif isinstance(sent.payload, wire.BookTicker):
                quotes.append(sent.payload)
    return trades, quotes


def as_sent_trade(t: Trade) -> tuple[object, ...]:
    return (t.symbol, t.price, t.quantity, t.side is Side.SELL, t.trade_id, t.first_trade_id,
            t.last_trade_id)  # fmt: skip


def as_sent_quote(q: Quote) -> tuple[object, ...]:
    return (q.symbol, q.bid_price, q.bid_quantity, q.ask_price, q.ask_quantity, q.update_id)


async def test_client_receives_exactly_what_the_simulator_sent(
    sim: Simulator, app: RavenApp, client: AsyncRavenClient
) -> None:
    received: list[Event] = []
    async with client.stream(["BTCUSDT", "ETHUSDT"], [Kind.TRADE, Kind.QUOTE]) as stream:

        async def collect() -> None:
            async for event in stream:
                received.append(event)
                if sum(isinstance(e, Trade) for e in received) >= TRADES_WANTED:
                    return

        collector = asyncio.create_task(collect())
        await wait_until(lambda: bool(stream.acks), what="the subscription's ack")
        sim.feed_enabled.set()
        await asyncio.wait_for(collector, 30)
        sim.feed_enabled.clear()
        assert stream.gaps == 0

    trades = [e for e in received if isinstance(e, Trade)]
    quotes = [e for e in received if isinstance(e, Quote)]
    sent_trades, sent_quotes = sent_by_simulator(sim)

    expected_trades = [(t.s, t.p, t.q, t.m, t.a, t.f, t.l) for t in sent_trades[: len(trades)]]
    assert [as_sent_trade(t) for t in trades] == expected_trades, "trades differ from the feed"
    expected_quotes = [(q.s, q.b, q.B, q.a, q.A, q.u) for q in sent_quotes[: len(quotes)]]
    assert [as_sent_quote(q) for q in quotes] == expected_quotes, "quotes differ from the feed"
    assert len(trades) == TRADES_WANTED
    assert len(quotes) >= TRADES_WANTED  # every trade also moves the touch
    assert {t.symbol for t in trades} == {"BTCUSDT", "ETHUSDT"}
    for event in received:
        assert event.exchange == "binance_futures"
        assert event.receive_time >= event.exchange_time - 5_000_000_000


async def test_new_subscriber_gets_latest_state_first(
    sim: Simulator, app: RavenApp, client: AsyncRavenClient
) -> None:
    sim.feed_enabled.set()
    await wait_until(
        lambda: all(
            (r := app.state.get("binance_futures", s)) is not None and r.quote and r.trade
            for s in ("BTCUSDT", "ETHUSDT")
        ),
        what="state for both symbols",
    )
    sim.feed_enabled.clear()
    await asyncio.sleep(0.1)
    expected: set[Event] = set()
    for symbol in ("BTCUSDT", "ETHUSDT"):
        record = app.state.get("binance_futures", symbol)
        assert record is not None
        assert record.quote
        assert record.trade
        expected |= {record.quote[0], record.trade[0]}
    async with client.stream(["BTCUSDT", "ETHUSDT"], [Kind.TRADE, Kind.QUOTE]) as stream:
        first: list[Event] = []
        async for event in stream:
            first.append(event)
            if len(first) == 4:
                break
    assert set(first) == expected


async def test_connector_reconnects_when_the_connection_drops(
    sim: Simulator, app: RavenApp
) -> None:
    connections = app.connectors[0].connections  # type: ignore[attr-defined]
    before = [c.connects for c in connections]
    for conn in list(sim.hub.connections):
        conn.overflowed = True  # the simulator closes it as too slow (code 1008)
        conn.wakeup.set()
    await wait_until(
        lambda: all(
            c.connects > b and c.connected for c, b in zip(connections, before, strict=True)
        ),
        what="every connection to reconnect",
    )
    sim.feed_enabled.set()
    start = app.pipeline.ingested
    await wait_until(lambda: app.pipeline.ingested > start + 20, what="events after reconnect")
