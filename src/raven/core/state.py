"""The latest state of every market, kept in memory on the event loop.

One `MarketRecord` per (exchange, symbol) holds the newest event of each
kind together with its encoded chunk, so a new subscriber gets the current
state without re-encoding. Only the event loop writes and reads it, so it
needs no locks.
"""

from __future__ import annotations

from collections.abc import Iterator

from raven.model import Candle, Event, Funding, Quote, Trade
from raven.types import Kind


class MarketRecord:
    __slots__ = ("candles", "exchange", "funding", "quote", "symbol", "trade")

    def __init__(self, exchange: str, symbol: str) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.trade: tuple[Trade, bytes] | None = None
        self.quote: tuple[Quote, bytes] | None = None
        self.funding: tuple[Funding, bytes] | None = None
        self.candles: dict[str, tuple[Candle, bytes]] = {}  # open candle per interval

    def chunks(self, kind: Kind) -> list[bytes]:
        """Encoded current state of one kind, for a new subscriber."""
        if kind is Kind.QUOTE:
            return [self.quote[1]] if self.quote else []
        if kind is Kind.TRADE:
            return [self.trade[1]] if self.trade else []
        if kind is Kind.FUNDING:
            return [self.funding[1]] if self.funding else []
        if kind is Kind.CANDLE:
            return [c for _, c in self.candles.values()]
        return []


class MarketState:
    def __init__(self) -> None:
        self._records: dict[tuple[str, str], MarketRecord] = {}

    def record(self, exchange: str, symbol: str) -> MarketRecord:
        key = (exchange, symbol)
        rec = self._records.get(key)
        if rec is None:
            rec = self._records[key] = MarketRecord(exchange, symbol)
        return rec

    def get(self, exchange: str, symbol: str) -> MarketRecord | None:
        return self._records.get((exchange, symbol))

    def __iter__(self) -> Iterator[MarketRecord]:
        return iter(self._records.values())

    def apply(self, event: Event, chunk: bytes) -> None:
        """Remember `event` as the newest of its kind for its symbol."""
        rec = self.record(event.exchange, event.symbol)
        if type(event) is Trade:
            rec.trade = (event, chunk)
        elif type(event) is Quote:
            rec.quote = (event, chunk)
        elif type(event) is Funding:
            rec.funding = (event, chunk)
        elif type(event) is Candle:
            rec.candles[event.interval] = (event, chunk)
