"""GetHistoricalData through gRPC, for the embedded store and InfluxDB 1.x.

Events go in as the pipeline hands them over (`Recorder.record`), with book
checkpoints taken from the live books as the state layer would, and come back
through a real gRPC server and the generated stub. What went in is compared
with what comes back as protobuf messages: the schema of the live stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from raven import codec
from raven.api.history import HistoryService
from raven.config import DatabaseConfig, HistoryConfig, WriterConfig
from raven.core.book import OrderBook
from raven.model import BookDelta, BookSnapshot, Candle, Event, Trade
from raven.storage.base import Store
from raven.storage.embedded import DuckDBStore
from raven.storage.influx import InfluxStore
from raven.storage.runtime import Storage
from raven.types import S_NS, Kind
from raven.v1 import market_data_pb2 as pb
from raven.v1 import market_data_pb2_grpc as pb_grpc
from tests.helpers import wait_until
from tests.storage.conftest import influx_config
from tests.storage.events import EX, Market
from tests.storage.grpc_history import events_of, fetch, serve_history

SYMBOLS = ("BTCUSDT", "ETHUSDT")
ALL_KINDS = [int(k) for k in Kind]


class History(msgspec.Struct):
    stub: pb_grpc.MarketDataServiceAsyncStub
    events: list[Event]
    storage: Storage
    service: HistoryService

    @property
    def start(self) -> int:
        return self.events[0].receive_time

    @property
    def end(self) -> int:
        return self.events[-1].receive_time + 1

    def request(self, **fields: object) -> pb.HistoricalDataRequest:
        values: dict[str, object] = {
            "symbols": list(SYMBOLS), "kinds": ALL_KINDS, "start_time_ns": self.start,
            "end_time_ns": self.end,
        }  # fmt: skip
        values.update(fields)
        return pb.HistoricalDataRequest(**values)  # type: ignore[arg-type]


def database_config(tmp_path: Path) -> DatabaseConfig:
    writer = WriterConfig(batch_size=100, flush_interval_s=0.02, spool_dir=str(tmp_path / "spool"))
    return DatabaseConfig(writer=writer)


async def record(storage: Storage, market: Market, chunks: int, size: int) -> list[Event]:
    """Feed the recorder as the pipeline would, with a book checkpoint now and then."""
    events: list[Event] = []
    for i in range(chunks):
        chunk = market.events(size)
        for event in chunk:
            storage.recorder.record(event)
        events += chunk
        if i % 4 == 1:
            assert storage.checkpoint_books() == len(SYMBOLS)
        await asyncio.sleep(0)
    await wait_until(lambda: storage.writers[0].pending == 0, what="everything written")
    return events


@pytest.fixture(params=["embedded", "influxdb"])
async def history(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[History]:
    store: Store
    if request.param == "embedded":
        store = DuckDBStore(tmp_path / "raven.duckdb")
    else:
        store = InfluxStore(influx_config(request.getfixturevalue("influxd")))
    market = Market(seed=21)
    storage = Storage(
        [store], database_config(tmp_path), HistoryConfig(), catalog={EX: SYMBOLS},
        book_source=market,
    )  # fmt: skip
    await storage.start()
    events = await record(storage, market, chunks=12, size=60)
    service = HistoryService(storage.reader, {EX: frozenset(SYMBOLS)}, HistoryConfig(batch_size=50))
    async with serve_history(service) as stub:
        yield History(stub, events, storage, service)
    await storage.stop()


def protos(events: Sequence[Event]) -> list[pb.MarketEvent]:
    return [codec.to_proto(e) for e in events]


async def test_every_kind_comes_back_as_it_went_live(history: History) -> None:
    responses = await fetch(history.stub, history.request())
    assert events_of(responses) == protos(history.events)
    assert all(len(r.events) <= 50 for r in responses)  # [history] batch_size
    assert [bool(r.next_cursor) for r in responses] == [True] * (len(responses) - 1) + [False]
    assert history.service.events_sent == len(history.events)


async def test_some_kinds_of_one_symbol_in_time_order(history: History) -> None:
    request = history.request(symbols=["ethusdt"], kinds=[Kind.BOOK, Kind.TRADE, Kind.STATUS])
    got = events_of(await fetch(history.stub, request))
    wanted = [
        e for e in history.events
        if e.kind in (Kind.BOOK, Kind.TRADE, Kind.STATUS) and e.symbol in ("ETHUSDT", "")
    ]  # fmt: skip
    assert got == protos(wanted)  # feed-wide statuses (no symbol) included
    middle = history.events[len(history.events) // 2].receive_time
    got = events_of(await fetch(history.stub, history.request(start_time_ns=middle)))
    assert got == protos([e for e in history.events if e.receive_time >= middle])


async def test_limit_and_cursor_page_through_everything_once(history: History) -> None:
    pages: list[pb.MarketEvent] = []
    cursor = ""
    calls = 0
    while True:
        responses = await fetch(history.stub, history.request(limit=137, cursor=cursor))
        page = events_of(responses)
        assert len(page) <= 137
        pages += page
        calls += 1
        cursor = responses[-1].next_cursor
        if not cursor:
            break
    assert pages == protos(history.events)
    assert calls == -(-len(history.events) // 137)
    # A cursor from the middle of a call's stream resumes right after that batch.
    first = await fetch(history.stub, history.request())
    rest = events_of(await fetch(history.stub, history.request(cursor=first[2].next_cursor)))
    assert rest == protos(history.events)[150:]


def built_candles(trades: list[Trade], step: int, end: int) -> list[Candle]:
    """Candles from trades, computed here independently of Raven's builder."""
    bars: dict[int, list[Trade]] = {}
    for t in trades:
        bars.setdefault(t.exchange_time - t.exchange_time % step, []).append(t)
    out = []
    opens = sorted(bars)
    for i, open_time in enumerate(opens):
        ts = bars[open_time]
        prices = [Decimal(t.price) for t in ts]
        hi, lo = ts[prices.index(max(prices))].price, ts[prices.index(min(prices))].price
        vol = sum((Decimal(t.quantity) for t in ts), Decimal(0))
        qvol = sum((Decimal(t.price) * Decimal(t.quantity) for t in ts), Decimal(0))
        closed = i + 1 < len(opens) or open_time + step <= end
        last = ts[-1]
        out.append(Candle(EX, last.symbol, "1s", open_time, open_time + step, ts[0].price, hi, lo,
                          last.price, str(vol), str(qvol), len(ts), closed, True,
                          last.exchange_time, last.receive_time))  # fmt: skip
    return out


async def test_candles_at_any_interval(history: History) -> None:
    request = history.request(
        symbols=["BTCUSDT"], kinds=[Kind.CANDLE], candle_intervals=["1s", "1m"]
    )
    got = [codec.from_proto(m) for m in events_of(await fetch(history.stub, request))]
    stored = [e for e in history.events if isinstance(e, Candle) and e.symbol == "BTCUSDT"]
    trades = [e for e in history.events if isinstance(e, Trade) and e.symbol == "BTCUSDT"]
    built = built_candles(trades, S_NS, history.end)
    assert [c for c in got if isinstance(c, Candle) and c.interval == "1m"] == stored
    assert [c for c in got if isinstance(c, Candle) and c.interval == "1s"] == built
    assert len(built) > 3
    # In time order: a built candle right after the trade that completed it.
    times = [c.receive_time for c in got if isinstance(c, Candle)]
    assert times == sorted(times)


def live_book(events: list[Event], symbol: str, at: int) -> OrderBook:
    """The book a live client kept, from the same events, up to time `at`."""
    book = OrderBook(symbol)
    for e in events:
        if e.receive_time > at or e.symbol != symbol:
            continue
        if isinstance(e, BookSnapshot):
            book.load(e.bids, e.asks, e.update_id)
        elif isinstance(e, BookDelta):
            book.apply(e.bids, e.asks, e.update_id)
    return book


async def test_the_book_at_time_t_equals_the_live_book_at_t(history: History) -> None:
    deltas = [e for e in history.events if isinstance(e, BookDelta)]
    times = [deltas[i].receive_time for i in (0, 7, len(deltas) // 2, -1)]
    times += [deltas[40].receive_time + 1, history.end + 10 * S_NS]
    for at in times:
        request = history.request(kinds=[], book_at_ns=at, book_depth=10)
        responses = await fetch(history.stub, request)
        assert len(responses) == 1
        assert responses[0].next_cursor == ""
        books = [codec.from_proto(m) for m in responses[0].events]
        for symbol, got in zip(SYMBOLS, books, strict=True):
            live = live_book(history.events, symbol, at)
            assert isinstance(got, BookSnapshot)
            assert (got.symbol, got.update_id, got.depth) == (symbol, live.update_id, 10)
            assert (got.bids, got.asks) == live.top(10)
    full = await fetch(history.stub, history.request(kinds=[], book_at_ns=history.end))
    book = codec.from_proto(full[0].events[0])
    assert isinstance(book, BookSnapshot)
    assert (book.bids, book.asks) == live_book(history.events, "BTCUSDT", history.end).top(0)


async def test_the_book_at_t_comes_first_then_the_range(history: History) -> None:
    at = history.events[100].receive_time
    request = history.request(symbols=["BTCUSDT"], kinds=[Kind.TRADE], book_at_ns=at, limit=5)
    responses = await fetch(history.stub, request)
    assert responses[0].events[0].WhichOneof("payload") == "book_snapshot"
    trades = [e for e in history.events if isinstance(e, Trade) and e.symbol == "BTCUSDT"]
    assert events_of(responses[1:]) == protos(trades[:5])
    # The book's cursor skips the book and starts the range.
    again = await fetch(history.stub, history.request(
        symbols=["BTCUSDT"], kinds=[Kind.TRADE], book_at_ns=at, limit=5,
        cursor=responses[0].next_cursor,
    ))  # fmt: skip
    assert events_of(again) == protos(trades[:5])
