"""The latest state of every market, kept in memory on the event loop.

One `MarketRecord` per (exchange, symbol) holds the newest accepted event of
each kind with its encoded chunk (so a new subscriber gets the current state
without re-encoding), the canonical L2 order book and whether it is live,
the candles being built from trades, and the open exchange klines. Only the
event loop writes and reads it, so it needs no locks; nothing here awaits.
"""

from __future__ import annotations

from collections.abc import Iterator

from raven import codec
from raven.core.book import OrderBook
from raven.core.bus import Topic
from raven.core.candles import CandleBuilder, CandleSet
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
from raven.types import Kind

EVENT_TYPES: tuple[type[Event], ...] = (
    Trade, Quote, BookSnapshot, BookDelta, Candle, Funding, Liquidation, Status,
)  # fmt: skip


def topic(kind: Kind, exchange: str, symbol: str, channel: str = "") -> Topic:
    return (kind, exchange, symbol, channel)


def candle_channel(interval: str, from_trades: bool) -> str:
    """Raven's own candles use the interval; the exchange's klines "<interval>@exchange"."""
    return interval if from_trades else f"{interval}@exchange"


class MarketRecord:
    __slots__ = (
        "_candle_chunks",
        "book",
        "book_crossed",
        "book_full",
        "book_live",
        "candle_topics",
        "candles",
        "exchange",
        "funding",
        "klines",
        "last_receive_ns",
        "liquidation",
        "quote",
        "received",
        "symbol",
        "topics",
        "trade",
    )

    def __init__(self, exchange: str, symbol: str, intervals: tuple[str, ...] = ()) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.trade: tuple[Trade, bytes] | None = None
        self.quote: tuple[Quote, bytes] | None = None
        self.funding: tuple[Funding, bytes] | None = None
        self.liquidation: tuple[Liquidation, bytes] | None = None
        self.klines: dict[str, tuple[Candle, bytes]] = {}  # the exchange's, per interval
        self.candles = CandleSet(exchange, symbol, intervals)  # Raven's, from trades
        self.book = OrderBook(symbol)
        self.book_live = False  # loaded from a snapshot and in sequence since
        self.book_full = False  # loaded from a full (depth 0) snapshot
        self.book_crossed = 0  # consecutive updates with a crossed or locked book
        self.last_receive_ns = 0  # receive time of the newest accepted event
        # Events the pipeline took in for this symbol, before validation, by event
        # type (keyed by the type the pipeline already holds: ~40 ns per event; an
        # IntEnum index costs more). Read by the metrics layer.
        self.received: dict[type[Event], int] = dict.fromkeys(EVENT_TYPES, 0)
        # Topics of the plain kinds, built once: publishing needs no tuple per event.
        self.topics = {k: topic(k, exchange, symbol) for k in Kind}
        self.candle_topics = [
            topic(Kind.CANDLE, exchange, symbol, candle_channel(b.interval, True))
            for b in self.candles.builders
        ]
        self._candle_chunks: dict[str, tuple[Candle, bytes]] = {}

    def candle_chunk(self, builder: CandleBuilder) -> tuple[Candle, bytes] | None:
        """The open bar of `builder`, encoded once per change."""
        candle = builder.current()
        if candle is None:
            return None
        cached = self._candle_chunks.get(builder.interval)
        if cached is None or cached[0] is not candle:
            cached = self._candle_chunks[builder.interval] = (candle, codec.encode(candle))
        return cached

    def candle_state(self, intervals: tuple[str, ...] | None = None) -> list[tuple[str, bytes]]:
        """(channel, chunk) of the current candle of each interval (built and exchange)."""
        out = []
        for builder in self.candles.builders:
            if intervals is None or builder.interval in intervals:
                current = self.candle_chunk(builder)
                if current is not None:
                    out.append((candle_channel(builder.interval, True), current[1]))
        for interval, (_, chunk) in self.klines.items():
            if intervals is None or interval in intervals:
                out.append((candle_channel(interval, False), chunk))
        return out

    def book_snapshot(self, depth: int) -> BookSnapshot:
        """The top `depth` levels of the canonical book (all when 0)."""
        bids, asks = self.book.top(depth)
        book = self.book
        return BookSnapshot(
            self.exchange,
            self.symbol,
            bids,
            asks,
            book.update_id,
            book.exchange_time,
            self.last_receive_ns,
            depth,
        )


class MarketState:
    def __init__(self, candle_intervals: tuple[str, ...] = ()) -> None:
        self.candle_intervals = candle_intervals
        # exchange -> symbol -> record; the pipeline reads it directly (hot path).
        self.records: dict[str, dict[str, MarketRecord]] = {}

    def record(self, exchange: str, symbol: str) -> MarketRecord:
        by_symbol = self.records.get(exchange)
        if by_symbol is None:
            by_symbol = self.records[exchange] = {}
        rec = by_symbol.get(symbol)
        if rec is None:
            rec = by_symbol[symbol] = MarketRecord(exchange, symbol, self.candle_intervals)
        return rec

    def get(self, exchange: str, symbol: str) -> MarketRecord | None:
        by_symbol = self.records.get(exchange)
        return None if by_symbol is None else by_symbol.get(symbol)

    def __iter__(self) -> Iterator[MarketRecord]:
        for by_symbol in self.records.values():
            yield from by_symbol.values()
