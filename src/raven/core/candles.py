"""Candles built from trades, bar boundaries by the exchange's clock.

A `CandleBuilder` keeps the open bar of one (exchange, symbol, interval).
Bars are aligned to the Unix epoch (a 1m bar opens at a whole minute) and
a trade belongs to the bar that holds its *exchange* time. The bar closes
when the first trade at or after its end arrives: no wall-clock timer, so a
replay at any speed gives exactly the same candles as the live feed did.
Bars with no trades are not emitted (the next bar opens with the next trade).

Volumes are exact: base volume and quote volume (sum of price x quantity)
are kept as scaled integers (see `raven.core.decimals`). High and low are
compared as floats of the price text (monotonic in the text's value) and
kept as the original text. A trade older than the open bar (a venue resend
across a boundary) can't change a bar already closed: it is counted in
`late` and left out.

Building a `Candle` struct is lazy: `current()` makes it on demand (for a
subscriber, a snapshot, or a close) and caches it until the next trade.
"""

from __future__ import annotations

from raven.config import interval_seconds
from raven.core.decimals import Scaled, add, format_scaled, parse
from raven.model import Candle, Trade
from raven.types import S_NS

PARSE_CACHE_LIMIT = 65_536  # decimal texts remembered per symbol before a reset


def interval_ns(name: str) -> int:
    return interval_seconds(name) * S_NS


class CandleBuilder:
    """The open bar of one interval for one symbol."""

    __slots__ = (
        "_cached",
        "close",
        "close_time",
        "count",
        "exchange",
        "exchange_time",
        "high",
        "high_f",
        "interval",
        "late",
        "length",
        "low",
        "low_f",
        "open",
        "open_time",
        "quote_volume",
        "receive_time",
        "symbol",
        "volume",
    )

    def __init__(self, exchange: str, symbol: str, interval: str) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.interval = interval
        self.length = interval_ns(interval)
        self.count = 0  # trades in the open bar; 0: no bar yet
        self.open_time = self.close_time = 0
        self.open = self.high = self.low = self.close = ""
        self.high_f = self.low_f = 0.0
        self.volume = self.quote_volume = (0, 0)
        self.exchange_time = self.receive_time = 0
        self.late = 0  # trades older than the open bar, left out
        self._cached: Candle | None = None

    def add(self, trade: Trade, price_f: float, qty: Scaled, notional: Scaled) -> Candle | None:
        """Add a trade (its price as a float, its quantity and price x quantity
        exact); returns the final candle of the bar it closed, if any.

        A late trade (older than the open bar) is counted and changes nothing."""
        t = trade.exchange_time
        closed = None
        if self.count:
            if t >= self.close_time:
                closed = self.final()
                self.count = 0
            elif t < self.open_time:
                self.late += 1
                return None
        self._cached = None
        text = trade.price
        if not self.count:
            start = t - t % self.length
            self.open_time, self.close_time = start, start + self.length
            self.open = self.high = self.low = text
            self.high_f = self.low_f = price_f
            self.volume, self.quote_volume = qty, notional
        else:
            if price_f > self.high_f:
                self.high, self.high_f = text, price_f
            elif price_f < self.low_f:
                self.low, self.low_f = text, price_f
            self.volume = add(self.volume, qty)
            self.quote_volume = add(self.quote_volume, notional)
        self.close = text
        self.count += 1
        self.exchange_time = t
        self.receive_time = trade.receive_time
        return closed

    def current(self) -> Candle | None:
        """The open bar as a Candle (None before the first trade)."""
        if not self.count:
            return None
        if self._cached is None:
            self._cached = self._candle(closed=False)
        return self._cached

    def final(self) -> Candle:
        return self._candle(closed=True)

    def _candle(self, closed: bool) -> Candle:
        v, q = self.volume, self.quote_volume
        return Candle(
            self.exchange,
            self.symbol,
            self.interval,
            self.open_time,
            self.close_time,
            self.open,
            self.high,
            self.low,
            self.close,
            format_scaled(*v),
            format_scaled(*q),
            self.count,
            closed,
            True,
            self.exchange_time,
            self.receive_time,
        )


class CandleSet:
    """Every configured interval's builder for one symbol, sharing one parse per trade."""

    __slots__ = ("_numbers", "builders")

    def __init__(self, exchange: str, symbol: str, intervals: tuple[str, ...]) -> None:
        self.builders = [CandleBuilder(exchange, symbol, name) for name in intervals]
        self._numbers: dict[str, Scaled] = {}

    def number(self, text: str) -> Scaled:
        """The exact value of an accepted (so well-formed) decimal text, cached."""
        value = self._numbers.get(text)
        if value is None:
            parsed = parse(text)
            value = parsed if parsed is not None else (0, 0)
            if len(self._numbers) >= PARSE_CACHE_LIMIT:
                self._numbers.clear()
            self._numbers[text] = value
        return value
