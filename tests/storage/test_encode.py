"""History encoded straight from stored rows equals the old per-event protobuf path.

The old path built a generated `MarketEvent` per event (`codec.to_proto`)
and a `HistoricalDataResponse` per batch; `old_responses` below is that code.
The new one (`HistoryService.encoded_responses`) must give the same messages
for every kind, built candles, the book at T, limits and cursors, on the
embedded store (rows encoded by Arrow kernels), the in-memory store and
InfluxDB (records encoded per event).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from raven import codec
from raven.api.history import _LAST_SOURCE, HistoryService, plan_history, serialize_response
from raven.config import HistoryConfig
from raven.model import BookDelta, BookSnapshot, Candle, Event, Funding, Liquidation, Status, Trade
from raven.storage.base import ReadQuery, Store, Table
from raven.storage.embedded import DuckDBStore
from raven.storage.encode import encode_event, response
from raven.storage.history import HistoryPlan, HistoryReader, encode_cursor
from raven.storage.influx import InfluxStore
from raven.storage.memory import MemoryStore
from raven.types import S_NS, Kind, Side, StatusKind
from raven.v1 import market_data_pb2 as pb
from tests.storage.events import EX, Market

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def awkward(t0: int) -> list[Event]:
    """Defaults proto3 leaves out, long texts (multi-byte lengths), big books and counts."""
    long = "1." + "0" * 200
    huge = tuple((f"{30000 + i}.{'0' * 40}", "1." + "5" * 60) for i in range(300))  # > 16 KiB
    return [
        Trade(EX, "BTCUSDT", "0", "0", Side.BUY, 0, 0, t0 + 1, 0, 0),
        Trade(EX, "BTCUSDT", long, "1", Side.SELL, 2**62, t0, t0 + 2, 1, 2**63 - 1),
        BookSnapshot(EX, "BTCUSDT", huge, (), 7, t0, t0 + 3, 5000),
        BookDelta(EX, "BTCUSDT", (), (("", ""),), 8, 9, 7, t0, t0 + 4, 0),
        Candle(
            EX,
            "BTCUSDT",
            "1m",
            0,
            60 * S_NS,
            "1",
            "2",
            "0.5",
            "1.5",
            "",
            "0",
            2**40,
            False,
            False,
            t0,
            t0 + 5,
        ),
        Funding(EX, "BTCUSDT", "1", "", "2", "-0.00010000", 0, t0, t0 + 6),
        Liquidation(EX, "BTCUSDT", Side.BUY, "1", "2", "", "0", long * 100, t0, t0 + 7),
        Status(EX, "", StatusKind.FEED_CONNECTED, "", t0, t0 + 8),
        Status(EX, "BTCUSDT", StatusKind.BOOK_STALE, "ü → ok " * 3000, t0, t0 + 9),
    ]


def events_of_every_kind(odd: bool = True) -> list[Event]:
    market = Market(seed=5)
    events = market.events(400)
    return events + awkward(market.now + S_NS) if odd else events


async def filled(store: Store, odd: bool = True) -> list[Event]:
    """The store with events of every kind (`odd`: and the awkward ones)."""
    events = events_of_every_kind(odd)
    await store.write([(e.receive_time, e) for e in events])
    return events


def canonical(raw: bytes) -> bytes:
    return pb.HistoricalDataResponse.FromString(raw).SerializeToString()


async def old_responses(
    service: HistoryService, plan: HistoryPlan
) -> AsyncIterator[pb.HistoricalDataResponse]:
    """GetHistoricalData's responses as built before history was encoded from rows."""
    reader = service.reader
    if plan.book_at and plan.after is None:
        books = [
            codec.to_proto(await reader.book_at(plan.exchange, s, plan.book_at, plan.book_depth))
            for s in plan.symbols
        ]
        cursor = encode_cursor((plan.start - 1, _LAST_SOURCE), plan.fingerprint)
        yield pb.HistoricalDataResponse(events=books, next_cursor=cursor if plan.kinds else "")
    if not plan.kinds:
        return
    async for events, cursor in reader.batches(plan, service.config.batch_size):
        yield pb.HistoricalDataResponse(
            events=[codec.to_proto(e) for e in events], next_cursor=cursor
        )


def request(
    events: list[Event], kinds: list[Kind], limit: int = 0, book_at_ns: int = 0
) -> pb.HistoricalDataRequest:
    r = pb.HistoricalDataRequest(exchange=EX, symbols=list(SYMBOLS), limit=limit)
    r.book_at_ns, r.book_depth = book_at_ns, 20 if book_at_ns else 0
    r.start_time_ns, r.end_time_ns = events[0].receive_time, events[-1].receive_time + 1
    r.kinds.extend(pb.DataKind.ValueType(k) for k in kinds)
    return r


def requests(events: list[Event]) -> list[pb.HistoricalDataRequest]:
    every = list(Kind)
    candles = request(events, [Kind.CANDLE, Kind.TRADE])
    candles.candle_intervals.extend(["1s", "1m", "5s"])  # 1m stored; 1s and 5s built
    book_at = events[len(events) // 2].receive_time
    return [
        request(events, every),
        request(events, every, limit=77),
        candles,
        request(events, [Kind.BOOK, Kind.STATUS], book_at_ns=book_at),
    ]


async def assert_same_as_old_path(store: Store, events: list[Event]) -> int:
    """Every request, followed cursor by cursor: same messages both ways. Returns events seen."""
    service = HistoryService(HistoryReader(store, page_size=37), None, HistoryConfig(batch_size=50))
    seen = 0
    for request in requests(events):
        while True:
            plan = plan_history(request, None, service.config, events[-1].receive_time + 1)
            new = [canonical(r) async for r in service.encoded_responses(plan)]
            old = [r.SerializeToString() async for r in old_responses(service, plan)]
            assert new == old
            assert len(new) > 0
            seen += sum(len(pb.HistoricalDataResponse.FromString(r).events) for r in new)
            cursor = pb.HistoricalDataResponse.FromString(new[-1]).next_cursor
            if not cursor or not request.limit:
                break
            request.cursor = cursor
    return seen


async def test_rows_encode_to_the_generated_bytes_for_every_kind(duck: DuckDBStore) -> None:
    events = await filled(duck)
    start, end = events[0].receive_time, events[-1].receive_time + 1
    checked = set()
    for table in Table:
        if table is Table.BOOK_CHECKPOINT:
            continue
        query = ReadQuery(table, EX, (*SYMBOLS, ""), start, end, 10**6)
        records = await duck.read(query)
        times, entries = await duck.read_encoded(query)
        assert times == [ts for ts, _ in records]
        for raw, (_, event) in zip(entries, records, strict=True):
            generated = pb.HistoricalDataResponse(events=[codec.to_proto(event)])  # type: ignore[arg-type]
            assert raw == generated.SerializeToString()  # byte for byte, not only parse-equal
            checked.add(type(event))
    assert len(checked) == 8


def test_one_event_encodes_to_the_same_message_as_the_generated_class() -> None:
    for event in events_of_every_kind():
        parsed = pb.HistoricalDataResponse.FromString(encode_event(event))
        assert list(parsed.events) == [codec.to_proto(event)]


async def test_embedded_store_history_equals_the_old_path(duck: DuckDBStore) -> None:
    events = await filled(duck)
    assert await assert_same_as_old_path(duck, events) > len(events)


async def test_memory_store_history_equals_the_old_path() -> None:
    store = MemoryStore()
    events = await filled(store)
    assert await assert_same_as_old_path(store, events) > len(events)


async def test_influxdb_history_equals_the_old_path(influx_store: InfluxStore) -> None:
    events = await filled(influx_store, odd=False)  # InfluxDB fields: decimals are numbers
    assert await assert_same_as_old_path(influx_store, events) > len(events)


def test_the_response_serializer_takes_bytes_as_they_are_and_serializes_messages() -> None:
    message = pb.HistoricalDataResponse(next_cursor="abc")
    raw = response([encode_event(events_of_every_kind()[0])], "abc")
    assert serialize_response(raw) is raw
    assert serialize_response(message) == message.SerializeToString()
    assert pb.HistoricalDataResponse.FromString(raw).next_cursor == "abc"
