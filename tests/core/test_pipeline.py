"""The ingest chain without a network: recorder, statuses, stale books and resyncs."""

from __future__ import annotations

import time

from raven import codec
from raven.config import ValidationConfig
from raven.core.bus import Bus, Subscriber
from raven.core.citadel import Citadel
from raven.core.pipeline import MemoryRecorder, Pipeline
from raven.core.state import MarketState
from raven.model import BookDelta, BookSnapshot, Candle, Event, Status, Trade
from raven.types import S_NS, Kind, Side, StatusKind
from raven.v1 import market_data_pb2 as pb

EX = "x"


def pipeline(intervals: tuple[str, ...] = ()) -> tuple[Pipeline, MemoryRecorder]:
    citadel = Citadel(ValidationConfig(), lambda exchange, symbol: ("0.1", "0.001"))
    p = Pipeline(MarketState(intervals), Bus(), citadel)
    recorder = MemoryRecorder()
    p.recorder = recorder
    return p, recorder


def decoded(sub: Subscriber) -> list[Event]:
    _, chunks = sub.drain(1000, 0)
    frame = pb.StreamResponse.FromString(codec.frame(1, chunks, 0))
    return [e for m in frame.events if (e := codec.from_proto(m)) is not None]


def test_recorder_gets_accepted_events_and_closed_candles() -> None:
    p, recorder = pipeline(("1s",))
    now = (time.time_ns() // S_NS - 5) * S_NS
    good = Trade(EX, "BTC", "100.0", "1.000", Side.BUY, 1, now, now)
    snapped = Trade(EX, "BTC", "100.10000000001", "1.000", Side.BUY, 2, now + 1, now)
    bad = Trade(EX, "BTC", "100.05", "1.000", Side.BUY, 3, now + 2, now)
    next_second = Trade(EX, "BTC", "100.2", "1.000", Side.BUY, 4, now + S_NS, now)
    for event in (good, snapped, bad, next_second):
        p.ingest(event)
    trades = [e for e in recorder.events if isinstance(e, Trade)]
    assert [t.price for t in trades] == ["100.0", "100.1", "100.2"]
    [candle] = [e for e in recorder.events if isinstance(e, Candle)]
    assert (candle.closed, candle.trade_count, candle.close) == (True, 2, "100.1")
    assert (p.stats.ingested, p.stats.accepted, p.stats.rejected) == (4, 3, 1)
    record = p.state.get(EX, "BTC")
    assert record is not None
    assert record.trade is not None
    assert record.trade[0].trade_id == 4


def test_feed_statuses_reach_status_subscribers_without_a_symbol_record() -> None:
    p, recorder = pipeline()
    sub = Subscriber("s", 10)
    p.bus.subscribe(sub, (Kind.STATUS, EX, "", ""))
    status = Status(EX, "", StatusKind.FEED_DISCONNECTED, "lost", 1, 1)
    p.ingest(status)
    assert decoded(sub) == [status]
    assert list(recorder.events) == [status]
    assert p.state.get(EX, "") is None


def test_rejected_delta_goes_stale_and_asks_for_a_resync() -> None:
    p, recorder = pipeline()
    asked: list[tuple[str, str, str]] = []
    p.books.resync = lambda exchange, symbol, reason: asked.append((exchange, symbol, reason))
    sub = Subscriber("s", 10)
    p.bus.subscribe(sub, (Kind.STATUS, EX, "BTC", ""))
    now = time.time_ns()
    p.ingest(BookSnapshot(EX, "BTC", (("99.0", "1"),), (("101.0", "1"),), 10, now, now))
    p.ingest(BookDelta(EX, "BTC", (("99.05", "1"),), (), 11, 11, 10, now, now))
    assert asked == [(EX, "BTC", "a book update failed validation")]
    [stale] = decoded(sub)
    assert isinstance(stale, Status)
    assert stale.status is StatusKind.BOOK_STALE
    p.ingest(BookDelta(EX, "BTC", (("98.0", "1"),), (), 12, 12, 11, now, now))
    assert p.books.stats.stale_drops == 1
    p.ingest(BookSnapshot(EX, "BTC", (("98.5", "2"),), (("101.0", "1"),), 20, now, now))
    record = p.state.get(EX, "BTC")
    assert record is not None
    assert record.book_live
    assert record.book.top(5) == ((("98.5", "2"),), (("101.0", "1"),))
    assert [type(e).__name__ for e in recorder.events] == ["BookSnapshot", "BookSnapshot"]


def test_a_book_crossed_too_long_is_resynced() -> None:
    citadel = Citadel(ValidationConfig(crossed_book_resync_after=3), None)
    p = Pipeline(MarketState(), Bus(), citadel)
    asked: list[str] = []
    p.books.resync = lambda exchange, symbol, reason: asked.append(reason)
    now = time.time_ns()
    p.ingest(BookSnapshot(EX, "BTC", (("99.0", "1"),), (("101.0", "1"),), 1, now, now))
    for n in range(2, 6):
        p.ingest(BookDelta(EX, "BTC", (("102.0", str(n)),), (), n, n, n - 1, now, now))
    assert citadel.flagged[("crossed_book", EX, "BTC")] == 3
    assert asked == ["book crossed for 3 updates"]
