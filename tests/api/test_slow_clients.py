"""A slow client never slows the feed or another client; its drops follow its policy."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import grpc

from raven.core.book import OrderBook
from raven.model import BookDelta, BookSnapshot, Event, Quote, Trade
from raven.types import Kind, Side
from raven.v1 import market_data_pb2 as pb
from tests.api.conftest import EXCHANGE, Server, ServerFactory, Stream, connect, open_stream
from tests.core.bookgen import random_book_events
from tests.helpers import wait_until

BATCHES = 120
SLOW = {"grpc.http2.bdp_probe": 0}  # keep the slow clients' flow-control window small


def load(now: int) -> list[list[Event]]:
    """Batches mixing trades (BTC), quotes (ETH) and book deltas (SOL)."""
    book = random_book_events(3, BATCHES * 20, EXCHANGE, "SOLUSDT", now)
    batches: list[list[Event]] = [[book[0]]]
    trade_id = quote_id = 0
    for b in range(BATCHES):
        batch: list[Event] = []
        for i in range(20):
            trade_id += 1
            quote_id += 1
            price = f"{100 + (trade_id % 7) / 10:.1f}"
            batch.append(Trade(EXCHANGE, "BTCUSDT", price, "0.001", Side.BUY, trade_id, now, now))
            batch.append(Quote(EXCHANGE, "ETHUSDT", "99.9", "1", f"{100 + i / 10:.1f}", "1",
                               quote_id, now, now))  # fmt: skip
            batch.append(book[1 + b * 20 + i])
        batches.append(batch)
    return batches


@contextlib.asynccontextmanager
async def reading(stream: Stream, received: list[Event]) -> AsyncIterator[None]:
    """Read `stream` in the background as fast as possible."""

    async def run() -> None:
        while True:
            received.extend(await stream.events_until(lambda out: bool(out)))

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_slow_clients_under_load(make_server: ServerFactory) -> None:
    now = time.time_ns()
    batches = load(now)
    config = {"queue_size": 64, "max_events_per_frame": 16}
    async with (
        make_server(server=config) as server,
        connect(server.target) as fast_stub,
        connect(server.target, options=SLOW) as drop_stub,
        connect(server.target, options=SLOW) as cut_stub,
        connect(server.target, options=SLOW) as conflate_stub,
        open_stream(fast_stub) as fast,
        open_stream(drop_stub) as drop,
        open_stream(cut_stub) as cut,
        open_stream(conflate_stub) as conflate,
    ):
        lossless = pb.OVERFLOW_POLICY_DROP_OLDEST
        await fast.subscribe(symbols=["BTCUSDT", "ETHUSDT"], kinds=[Kind.TRADE, Kind.QUOTE],
                             policy=lossless)  # fmt: skip
        await drop.subscribe(kinds=[Kind.TRADE], policy=lossless)
        await cut.subscribe(kinds=[Kind.TRADE], policy=pb.OVERFLOW_POLICY_DISCONNECT)
        await conflate.subscribe(symbols=["ETHUSDT"], kinds=[Kind.QUOTE])  # conflate: default
        await conflate.subscribe(symbols=["SOLUSDT"], kinds=[Kind.BOOK], book_depth=5)
        fast_got: list[Event] = []
        async with reading(fast, fast_got):
            sent = 0
            for batch in batches:
                await server.feed(batch)
                sent += sum(isinstance(e, Trade | Quote) for e in batch)
                await wait_until(lambda: len(fast_got) >= sent, what="the fast client")  # noqa: B023
        streams = server.app.registry.streams
        # The fast client got every trade and quote, in order, with no gap.
        fed = [e for batch in batches for e in batch if isinstance(e, Trade | Quote)]
        assert [(type(e), e.symbol, getattr(e, "trade_id", 0) or getattr(e, "update_id", 0))
                for e in fast_got] == [
            (type(e), e.symbol, getattr(e, "trade_id", 0) or getattr(e, "update_id", 0))
            for e in fed
        ]  # fmt: skip
        assert fast.gaps == 0
        assert streams[fast.stream_id].sub.stats.dropped == 0

        # drop_oldest: drops counted, and visible to the client as Gap markers.
        dropped = streams[drop.stream_id].sub.stats.dropped
        assert dropped > 0
        trades = [e for e in fed if isinstance(e, Trade)]
        got = await drop.events_until(
            lambda out: bool(out) and getattr(out[-1], "trade_id", 0) == trades[-1].trade_id
        )
        assert drop.gaps == dropped
        assert len(got) + dropped == len(trades)

        # disconnect: the stream ends with RESOURCE_EXHAUSTED and the reason.
        code, details = await ended(cut)
        assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "queue full (64 events)" in details
        assert server.app.registry.stats().disconnected == 1

        # conflate: newest quote kept; the conflated book is still right.
        stats = streams[conflate.stream_id].sub.stats
        assert stats.conflated > 0
        assert stats.dropped == 0
        last_quote = [e for e in fed if isinstance(e, Quote)][-1]
        last_update = batches[-1][-1].update_id  # type: ignore[union-attr]
        got = await conflate.events_until(
            lambda out: any(getattr(e, "update_id", 0) == last_quote.update_id for e in out)
            and any(isinstance(e, BookSnapshot | BookDelta) and e.update_id == last_update
                    for e in out)
        )  # fmt: skip
        assert conflate.gaps == 0
        book = OrderBook("client")
        for event in got:
            if isinstance(event, BookSnapshot):
                book.load(event.bids, event.asks, event.update_id)
            elif isinstance(event, BookDelta):
                assert event.prev_update_id == book.update_id
                book.apply(event.bids, event.asks, event.update_id)
        record = server.app.state.get(EXCHANGE, "SOLUSDT")
        assert record is not None
        assert book.top(5) == record.book.top(5)
        quotes = [e for e in got if isinstance(e, Quote)]
        assert len(quotes) < len(fed) - len(trades)  # conflated
        assert quotes[-1].update_id == last_quote.update_id


async def ended(stream: Stream) -> tuple[grpc.StatusCode, str]:
    """Read to the end of a stream; its final status."""
    try:
        while True:
            await stream.call.read()
            if stream.call.done():
                break
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return await stream.call.code(), await stream.call.details()


async def test_slow_client_does_not_slow_the_feed(server: Server) -> None:
    """Ingest never waits for a client: a stalled one fills its own queue only."""
    async with (
        connect(server.target, options=SLOW) as stub,
        open_stream(stub) as stalled,
    ):
        await stalled.subscribe(kinds=[Kind.TRADE])
        now = time.time_ns()
        trades = [Trade(EXCHANGE, "BTCUSDT", "100.0", "0.001", Side.SELL, i, now, now)
                  for i in range(1, 30_001)]  # fmt: skip
        await server.feed(trades)
        assert server.app.pipeline.stats.accepted == 30_000
        stats = server.app.registry.streams[stalled.stream_id].sub.stats
        assert stats.dropped > 0
        assert stats.queued - stats.dropped - stats.sent <= server.app.config.server.queue_size
