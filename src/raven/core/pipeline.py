"""The ingest path: a connector's event in; validated, stored in state, fanned out.

`Pipeline.ingest` is the sink every connector calls, on the event loop, once
per normalized event. It is a chain of plain function calls, no awaits:

    citadel (reject or sanitize) -> state (latest per kind, book, candles)
    -> encode once -> bus (every subscriber's queue) -> recorder (storage)

Every accepted event goes to the optional `recorder` after validation, as do
the closed candles built from trades; rejected ones go nowhere. Book events
are handled by `BookKeeper` (canonical book, views, resyncs). Latencies are
observed per event into plain histograms (`latency_exchange_to_receive`,
`latency_receive_to_publish`) that the metrics layer reads.
"""

from __future__ import annotations

import collections
import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from raven import codec, fastproto
from raven.core.books import BookKeeper
from raven.core.bus import Bus
from raven.core.citadel import Citadel
from raven.core.latency import Histogram
from raven.core.state import MarketRecord, MarketState, candle_channel
from raven.core.views import BookViews
from raven.model import (
    BookDelta,
    BookSnapshot,
    Candle,
    Event,
    Funding,
    Liquidation,
    Quote,
    Status,
    Trade,
)
from raven.types import Kind, StatusKind

time_ns = time.time_ns


class Recorder(Protocol):
    """Storage's side of the pipeline: takes accepted events without blocking."""

    def record(self, event: Event) -> None: ...


class MemoryRecorder:
    """The fake beside `Recorder`: keeps the newest `limit` recorded events."""

    def __init__(self, limit: int = 1_000_000) -> None:
        self.events: collections.deque[Event] = collections.deque(maxlen=limit)

    def record(self, event: Event) -> None:
        self.events.append(event)


class PipelineStats(msgspec.Struct):
    ingested: int = 0  # events from connectors
    accepted: int = 0  # passed validation (and, for book deltas, applied)
    rejected: int = 0  # rejected by the citadel (per rule and symbol: Citadel.rejected)
    candles_closed: int = 0  # bars closed from trades


class Pipeline:
    def __init__(
        self,
        state: MarketState,
        bus: Bus,
        citadel: Citadel | None = None,
        views: BookViews | None = None,
    ) -> None:
        self.state = state
        self.bus = bus
        self.citadel = citadel
        self.views = views if views is not None else BookViews(bus)
        self.books = BookKeeper(bus, self.views, citadel)
        self.recorder: Recorder | None = None
        self.stats = PipelineStats()
        self.latency_exchange_to_receive = Histogram()
        self.latency_receive_to_publish = Histogram()
        # Feed-wide statuses (no symbol) by exchange; per-symbol events are counted
        # per kind in `MarketRecord.received`. Both read by the metrics layer.
        self.feed_statuses: dict[str, int] = {}
        self._records = state.records  # exchange -> symbol -> record
        self._handlers: dict[type[Any], Callable[[Any, MarketRecord, int], None]] = {
            Trade: self._trade,
            Quote: self._quote,
            BookSnapshot: self._snapshot,
            BookDelta: self._delta,
            Candle: self._kline,
            Funding: self._funding,
            Liquidation: self._liquidation,
            Status: self._status,
        }

    @property
    def ingested(self) -> int:
        return self.stats.ingested

    def ingest(self, event: Event) -> None:
        # The hot path, once per event: the record lookup and the latency histograms
        # are written out here rather than called (a Python call costs about as much
        # as the line it replaces).
        stats = self.stats
        stats.ingested += 1
        kind = type(event)
        if kind is Status:
            self._status_in(event)  # type: ignore[arg-type]
            return
        try:
            rec = self._records[event.exchange][event.symbol]
        except KeyError:
            rec = self.state.record(event.exchange, event.symbol)
        rec.received[kind] += 1
        receive = event.receive_time
        hist = self.latency_exchange_to_receive  # Histogram.observe_ns, inline
        seconds = (receive - event.exchange_time) / 1e9
        hist.buckets[bisect_left(hist.bounds, seconds)] += 1
        hist.sum += seconds
        if kind is BookDelta and not rec.book_live:
            self.books.stats.stale_drops += 1  # the resync's snapshot will cover it
            return
        citadel = self.citadel
        if citadel is not None and citadel.enabled:
            checked = citadel.check(event)  # by name: tracing may shadow it
            if checked is None:
                stats.rejected += 1
                if kind is BookDelta or kind is BookSnapshot:
                    self.books.go_stale(rec, "a book update failed validation", time_ns())
                return
            event = checked
        self._handlers[kind](event, rec, time_ns())
        stats.accepted += 1
        rec.last_receive_ns = receive
        hist = self.latency_receive_to_publish
        seconds = (time_ns() - receive) / 1e9
        hist.buckets[bisect_left(hist.bounds, seconds)] += 1
        hist.sum += seconds
        recorder = self.recorder
        if recorder is not None:
            recorder.record(event)

    def _status_in(self, e: Status) -> None:
        """A status: of a whole feed (no symbol), or of one symbol's feed or book."""
        if not e.symbol:
            self._feed_status(e)
            return
        rec = self.state.record(e.exchange, e.symbol)
        rec.received[Status] += 1
        self._status(e, rec, time_ns())
        self.stats.accepted += 1
        self.latency_receive_to_publish.observe_ns(time_ns() - e.receive_time)
        recorder = self.recorder
        if recorder is not None:
            recorder.record(e)

    # --- per kind -------------------------------------------------------------

    def _trade(self, e: Trade, rec: MarketRecord, now: int) -> None:
        chunk = fastproto.trade(e)
        rec.trade = (e, chunk)
        self.bus.publish(rec.topics[Kind.TRADE], chunk, now)
        if rec.candles.builders:
            self._candles(e, rec, now)

    def _candles(self, e: Trade, rec: MarketRecord, now: int) -> None:
        candles = rec.candles
        builders = candles.builders
        if not builders:
            return
        bus = self.bus
        topics = rec.candle_topics
        for i, closed in candles.add(e):
            self.stats.candles_closed += 1
            bus.publish(topics[i], codec.encode(closed), now, True)
            if self.recorder is not None:
                self.recorder.record(closed)
        has_subscribers = bus.has_subscribers
        for i, topic in enumerate(topics):  # topics[i] is builders[i]'s
            if has_subscribers(topic):
                current = rec.candle_chunk(builders[i])
                if current is not None:
                    bus.publish(topic, current[1], now)

    def _quote(self, e: Quote, rec: MarketRecord, now: int) -> None:
        chunk = fastproto.quote(e)
        rec.quote = (e, chunk)
        self.bus.publish(rec.topics[Kind.QUOTE], chunk, now)

    def _funding(self, e: Funding, rec: MarketRecord, now: int) -> None:
        chunk = fastproto.funding(e)
        rec.funding = (e, chunk)
        self.bus.publish(rec.topics[Kind.FUNDING], chunk, now)

    def _liquidation(self, e: Liquidation, rec: MarketRecord, now: int) -> None:
        chunk = codec.encode(e)
        rec.liquidation = (e, chunk)
        self.bus.publish(rec.topics[Kind.LIQUIDATION], chunk, now)

    def _kline(self, e: Candle, rec: MarketRecord, now: int) -> None:
        chunk = fastproto.candle(e)
        rec.klines[e.interval] = (e, chunk)
        topic = (Kind.CANDLE, rec.exchange, rec.symbol, candle_channel(e.interval, e.from_trades))
        self.bus.publish(topic, chunk, now, e.closed)

    def _snapshot(self, e: BookSnapshot, rec: MarketRecord, now: int) -> None:
        self.books.snapshot(rec, e, now)  # stored even if not loaded (partial over full)

    def _delta(self, e: BookDelta, rec: MarketRecord, now: int) -> None:
        self.books.delta(rec, e, now)

    def _feed_status(self, e: Status) -> None:
        """A status of a whole feed (no symbol): to every STATUS subscriber of it."""
        self.stats.accepted += 1
        self.feed_statuses[e.exchange] = self.feed_statuses.get(e.exchange, 0) + 1
        topic = (Kind.STATUS, e.exchange, "", "")
        self.bus.publish(topic, codec.encode(e), time.time_ns(), True)
        if self.recorder is not None:
            self.recorder.record(e)

    def _status(self, e: Status, rec: MarketRecord, now: int) -> None:
        if e.status in (StatusKind.BOOK_STALE, StatusKind.BOOK_LIVE) and e.symbol:
            self.books.status(rec, e)
        else:
            self.bus.publish(rec.topics[Kind.STATUS], codec.encode(e), now, True)
