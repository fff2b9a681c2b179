"""Order book subscriptions through the real gRPC server, fed by the fake connector."""

from __future__ import annotations

import asyncio
import time

from raven.core.book import OrderBook
from raven.model import BookDelta, BookSnapshot, Event, Level, Status
from raven.types import Kind, StatusKind
from raven.v1 import market_data_pb2 as pb
from tests.api.conftest import EXCHANGE, Server, ServerFactory, Stream, connect, open_stream
from tests.core.bookgen import random_book_events
from tests.helpers import wait_until

Top = tuple[tuple[Level, ...], tuple[Level, ...]]


def tops(events: list[BookSnapshot | BookDelta], depth: int) -> dict[int, Top]:
    """The true top-`depth` of the book at every update id."""
    book = OrderBook("truth")
    out: dict[int, Top] = {}
    for e in events:
        if isinstance(e, BookSnapshot):
            book.load(e.bids, e.asks, e.update_id)
        else:
            book.apply(e.bids, e.asks, e.update_id)
        out[e.update_id] = book.top(depth)
    return out


class ClientBook:
    """A client's book rebuilt from the stream: snapshot, then chained deltas."""

    def __init__(self) -> None:
        self.book = OrderBook("client")
        self.events: list[Event] = []

    def apply(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, BookSnapshot):
            self.book.load(event.bids, event.asks, event.update_id)
        elif isinstance(event, BookDelta):
            assert event.prev_update_id == self.book.update_id, "delta does not chain"
            self.book.apply(event.bids, event.asks, event.update_id)

    async def follow(self, stream: Stream, until: int, check: dict[int, Top], depth: int) -> None:
        while self.book.update_id < until:
            for event in await stream.events_until(lambda got: bool(got)):
                self.apply(event)
                if isinstance(event, BookSnapshot | BookDelta):
                    assert self.book.top(depth) == check[self.book.update_id]


async def test_mid_stream_subscriber_rebuilds_the_servers_book(server: Server) -> None:
    events = random_book_events(7, 4000, EXCHANGE, "BTCUSDT", time.time_ns())
    truth = tops(events, 10)
    await server.feed(events[:1500])
    async with connect(server.target) as stub, open_stream(stub) as stream:
        await stream.subscribe(kinds=[Kind.BOOK], book_depth=10)
        feeder = asyncio.create_task(server.feed(events[1500:]))
        client = ClientBook()
        await client.follow(stream, events[-1].update_id, truth, 10)
        await feeder
        assert stream.gaps == 0
    first = client.events[0]
    assert isinstance(first, BookSnapshot)
    assert (first.update_id, first.depth) == (1500, 10)
    assert all(isinstance(e, BookDelta) and e.depth == 10 for e in client.events[1:])
    assert len(client.events) > 1000
    record = server.app.state.get(EXCHANGE, "BTCUSDT")
    assert record is not None
    assert client.book.top(10) == record.book.top(10)


async def test_two_depths_share_nothing_but_the_book(server: Server) -> None:
    events = random_book_events(8, 600, EXCHANGE, "ETHUSDT", time.time_ns())
    await server.feed(events[:1])
    async with (
        connect(server.target) as stub,
        open_stream(stub) as deep,
        open_stream(stub) as shallow,
    ):
        await deep.subscribe(symbols=["ETHUSDT"], kinds=[Kind.BOOK], book_depth=20)
        await shallow.subscribe(symbols=["ETHUSDT"], kinds=[Kind.BOOK], book_depth=3)
        assert server.app.views.counts == (2, 0)
        await server.feed(events[1:])
        for stream, depth in ((deep, 20), (shallow, 3)):
            client = ClientBook()
            await client.follow(stream, events[-1].update_id, tops(events, depth), depth)
    await wait_until(lambda: server.app.views.counts == (0, 0), what="views released")


async def test_snapshot_mode_sends_conflated_top_n(server: Server) -> None:
    events = random_book_events(9, 300, EXCHANGE, "BTCUSDT", time.time_ns())
    await server.feed(events[:1])
    async with connect(server.target) as stub, open_stream(stub) as stream:
        await stream.subscribe(
            kinds=[Kind.BOOK], book_depth=5, book_mode=pb.BOOK_MODE_SNAPSHOTS, book_interval_ms=20
        )
        await server.feed(events[1:])
        last = events[-1].update_id
        got = await stream.events_until(
            lambda out: any(isinstance(e, BookSnapshot) and e.update_id == last for e in out)
        )
    snapshots = [e for e in got if isinstance(e, BookSnapshot)]
    assert all(s.depth == 5 for s in snapshots)
    assert not any(isinstance(e, BookDelta) for e in got)
    assert (snapshots[-1].bids, snapshots[-1].asks) == tops(events, 5)[last]
    assert len(snapshots) < 300  # conflated, not one per update


async def test_rejected_delta_makes_the_book_stale_and_resyncs(make_server: ServerFactory) -> None:
    now = time.time_ns()
    events = random_book_events(10, 200, EXCHANGE, "BTCUSDT", now)
    fresh = BookSnapshot(EXCHANGE, "BTCUSDT", (("99.0", "1"),), (("101.0", "2"),), 5000, now, now)
    async with make_server(snapshot_source=lambda symbol: fresh) as server:
        await server.feed(events)
        async with connect(server.target) as stub, open_stream(stub) as stream:
            await stream.subscribe(kinds=[Kind.BOOK, Kind.STATUS], book_depth=5)
            off_tick = BookDelta(EXCHANGE, "BTCUSDT", (("100.05", "1"),), (), 201, 202, 201,
                                 now, now)  # fmt: skip
            later = BookDelta(EXCHANGE, "BTCUSDT", (("98.0", "1"),), (), 203, 203, 202, now, now)
            await server.feed([off_tick, later])
            got = await stream.events_until(
                lambda out: any(getattr(e, "update_id", 0) == 5000 for e in out)
            )
        assert server.fake.resyncs == [("BTCUSDT", "a book update failed validation")]
    statuses = [e.status for e in got if isinstance(e, Status) and e.symbol == "BTCUSDT"]
    assert StatusKind.BOOK_STALE in statuses
    assert statuses[-1] is StatusKind.BOOK_LIVE
    client = ClientBook()
    for event in got:
        client.apply(event)
    assert client.book.top(5) == ((("99.0", "1"),), (("101.0", "2"),))
    assert not any(getattr(e, "update_id", 0) == 203 for e in got)


async def test_deltas_for_a_stale_book_are_dropped(server: Server) -> None:
    now = time.time_ns()
    events = random_book_events(11, 20, EXCHANGE, "BTCUSDT", now)
    off_tick = BookDelta(EXCHANGE, "BTCUSDT", (("100.05", "1"),), (), 21, 22, 21, now, now)
    later = BookDelta(EXCHANGE, "BTCUSDT", (("98.0", "1"),), (), 23, 23, 22, now, now)
    await server.feed([*events, off_tick, later])
    assert server.fake.resyncs == [("BTCUSDT", "a book update failed validation")]
    assert server.app.pipeline.books.stats.stale_drops == 1
    async with connect(server.target) as stub:
        reply = await stub.GetSnapshot(pb.GetSnapshotRequest(exchange=EXCHANGE, symbol="BTCUSDT"))
    kinds = [m.WhichOneof("payload") for m in reply.events]
    assert kinds[:2] == ["book_snapshot", "status"]
    assert reply.events[0].book_snapshot.update_id == 21
    assert reply.events[1].status.kind == pb.STATUS_KIND_BOOK_STALE
