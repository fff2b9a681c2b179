"""A deterministic stream of every kind of event, and the live order books it implies.

Values are chosen to be awkward where storage could mangle them: decimal
text with trailing zeros, quotes, commas, equals signs, spaces, backslashes,
newlines and non-ASCII in free text, a feed-wide Status with no symbol.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from raven.core.book import OrderBook
from raven.model import (
    BookDelta,
    BookSnapshot,
    Candle,
    Event,
    Funding,
    Level,
    Liquidation,
    Quote,
    Status,
    Trade,
)
from raven.types import MS_NS, S_NS, Side, StatusKind

EX = "binance_futures"
BASE_NS = 1_750_000_000 * S_NS  # 2025-06-15T15:06:40Z
AWKWARD = 'reconnect "in 5 s", a=b\\c\nnext line: ü → ok'


class Market:
    """`events(n)` continues the stream; `books` are the live books after each event."""

    def __init__(self, seed: int = 1, symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
                 start_ns: int = BASE_NS, exchange: str = EX) -> None:  # fmt: skip
        self.rng = random.Random(seed)
        self.symbols = symbols
        self.exchange = exchange
        self.now = start_ns
        self.trade_id = 1000
        self.books = {s: OrderBook(s) for s in symbols}
        self.mid = {s: 30000.0 + 1000 * i for i, s in enumerate(symbols)}
        self.last_book_times: dict[str, tuple[int, int]] = {}
        self.started = False

    # --- BookSource, as the state layer would implement it -------------------------

    def book_snapshot(self, exchange: str, symbol: str) -> BookSnapshot | None:
        book = self.books.get(symbol)
        if exchange != self.exchange or book is None or not book.update_id:
            return None
        bids, asks = book.top(0)
        et, rt = self.last_book_times[symbol]
        return BookSnapshot(exchange, symbol, bids, asks, book.update_id, et, rt)

    # --- the stream ---------------------------------------------------------------------

    def _tick(self) -> tuple[int, int]:
        self.now += self.rng.randint(5, 30) * MS_NS + self.rng.randint(0, 999_999)
        return self.now - self.now % MS_NS - 2 * MS_NS, self.now  # exchange ms time, receive ns

    def events(self, n: int) -> list[Event]:
        out: list[Event] = []
        if not self.started:
            self.started = True
            out += [self._snapshot(s) for s in self.symbols]
            out.append(self._status("", StatusKind.FEED_CONNECTED, AWKWARD))
        gen = self._stream()
        while len(out) < n:
            out.append(next(gen))
        return out

    def _stream(self) -> Iterator[Event]:
        i = 0
        while True:
            i += 1
            symbol = self.symbols[i % len(self.symbols)]
            yield self._trade(symbol)
            yield self._quote(symbol)
            yield self._delta(symbol)
            if i % 7 == 0:
                yield self._candle(symbol)
            if i % 11 == 0:
                yield self._funding(symbol)
            if i % 13 == 0:
                yield self._liquidation(symbol)
            if i % 17 == 0:
                yield self._status(symbol, StatusKind.BOOK_LIVE, f"resynced #{i}, ok=yes")

    def _price(self, symbol: str, spread: float = 0.0) -> str:
        self.mid[symbol] += self.rng.choice((-0.1, 0.0, 0.1))
        return f"{self.mid[symbol] + spread:.2f}"

    def _qty(self) -> str:
        return f"{self.rng.randint(1, 5000) / 1000:.3f}"  # e.g. "0.010": trailing zeros kept

    def _trade(self, symbol: str) -> Trade:
        et, rt = self._tick()
        self.trade_id += self.rng.randint(1, 4)
        side = self.rng.choice((Side.BUY, Side.SELL))
        tid = self.trade_id
        return Trade(self.exchange, symbol, self._price(symbol), self._qty(), side, tid, et, rt,
                     tid - 2, tid)  # fmt: skip

    def _quote(self, symbol: str) -> Quote:
        et, rt = self._tick()
        bid, ask = self._price(symbol, -0.05), self._price(symbol, 0.05)
        update_id = self.books[symbol].update_id
        return Quote(self.exchange, symbol, bid, self._qty(), ask, self._qty(), update_id, et, rt)

    def _levels(self, symbol: str, sign: int, count: int, zero_some: bool) -> tuple[Level, ...]:
        mid = self.mid[symbol]
        out = []
        for _ in range(count):
            price = f"{mid + sign * self.rng.randint(1, 40) / 10:.2f}"
            qty = "0" if zero_some and self.rng.random() < 0.3 else self._qty()
            out.append((price, qty))
        return tuple(dict(out).items())  # one change per price, as the exchange sends

    def _snapshot(self, symbol: str) -> BookSnapshot:
        et, rt = self._tick()
        bids, asks = self._levels(symbol, -1, 30, False), self._levels(symbol, 1, 30, False)
        book = self.books[symbol]
        book.load(bids, asks, 5_000_000 + self.rng.randint(0, 1000))
        self.last_book_times[symbol] = (et, rt)
        b, a = book.top(0)
        return BookSnapshot(self.exchange, symbol, b, a, book.update_id, et, rt)

    def _delta(self, symbol: str) -> BookDelta:
        et, rt = self._tick()
        book = self.books[symbol]
        prev = book.update_id
        first, last = prev + 1, prev + self.rng.randint(1, 5)
        bids, asks = self._levels(symbol, -1, 3, True), self._levels(symbol, 1, 3, True)
        book.apply(bids, asks, last)
        self.last_book_times[symbol] = (et, rt)
        return BookDelta(self.exchange, symbol, bids, asks, first, last, prev, et, rt)

    def _candle(self, symbol: str) -> Candle:
        et, rt = self._tick()
        open_time = et - et % (60 * S_NS)
        o, h, low, c = (self._price(symbol) for _ in range(4))
        closed = self.rng.random() < 0.5
        return Candle(self.exchange, symbol, "1m", open_time, open_time + 60 * S_NS, o, h, low,
                      c, "12.3400", "370200.50", 42, closed, True, et, rt)  # fmt: skip

    def _funding(self, symbol: str) -> Funding:
        et, rt = self._tick()
        return Funding(self.exchange, symbol, self._price(symbol), self._price(symbol),
                       self._price(symbol), "0.00010000", et + 3600 * S_NS, et, rt)  # fmt: skip

    def _liquidation(self, symbol: str) -> Liquidation:
        et, rt = self._tick()
        price, avg = self._price(symbol), self._price(symbol)
        return Liquidation(self.exchange, symbol, Side.SELL, price, self._qty(), avg,
                           self._qty(), "PARTIALLY_FILLED", et, rt)  # fmt: skip

    def _status(self, symbol: str, kind: StatusKind, detail: str) -> Status:
        et, rt = self._tick()
        return Status(self.exchange, symbol, kind, detail, et, rt)
