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

Only the smallest interval is fed trade by trade. Every interval that is a
multiple of it is rolled up from its closed bars (`RollupBuilder`): a bar
boundary of 1m is always a boundary of 1s, so the smallest bar closes on the
same trade that closes the larger one, and the larger bar's open state is
its closed smaller bars plus the smallest bar still open. A trade costs one
builder update whatever the number of intervals. (An interval that is not a
multiple of the smallest, e.g. 1m beside 7s, is fed trade by trade too.) A
late trade, older than the smallest open bar, is left out of every interval.
"""

from __future__ import annotations

from collections.abc import Sequence

from raven.config import interval_seconds
from raven.core.decimals import Scaled, add, format_scaled, parse
from raven.model import Candle, Trade
from raven.types import S_NS

# A bar's raw state: open time, open, high, high as float, low, low as float,
# close, base volume, quote volume, trade count, exchange time, receive time.
Bar = tuple[int, str, str, float, str, float, str, Scaled, Scaled, int, int, int]

PARSE_CACHE_LIMIT = 256  # decimal texts remembered per symbol before a reset (see
# raven.core.citadel.CACHE_LIMIT: a reset costs a few re-parses, a large cache memory)


def interval_ns(name: str) -> int:
    return interval_seconds(name) * S_NS


class CandleBuilder:
    """The open bar of one interval for one symbol."""

    __slots__ = (
        "_cached",
        "close",
        "close_time",
        "closed_bar",
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
        "version",
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
        self.closed_bar: Bar | None = None  # the bar the last add() closed, raw
        self.version = 0  # bumped by every accepted trade (roll-up caches key on it)

    def add(self, trade: Trade, price_f: float, qty: Scaled, notional: Scaled) -> Candle | None:
        """Add a trade (its price as a float, its quantity and price x quantity
        exact); returns the final candle of the bar it closed, if any.

        A late trade (older than the open bar) is counted and changes nothing."""
        t = trade.exchange_time
        closed = None
        count = self.count
        if count:
            if t >= self.close_time:
                closed = self.final()
                self.closed_bar = self.bar()
                count = 0
            elif t < self.open_time:
                self.late += 1
                return None
        self._cached = None
        text = trade.price
        if not count:
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
            # decimals.add, written out for the usual case of equal scales.
            v, n = self.volume, self.quote_volume
            self.volume = (v[0] + qty[0], v[1]) if v[1] == qty[1] else add(v, qty)
            self.quote_volume = (
                (n[0] + notional[0], n[1]) if n[1] == notional[1] else add(n, notional)
            )
        self.close = text
        self.count = count + 1
        self.exchange_time = t
        self.receive_time = trade.receive_time
        self.version += 1
        return closed

    def bar(self) -> Bar:
        """The open bar's raw state, for roll-ups."""
        return (
            self.open_time, self.open, self.high, self.high_f, self.low, self.low_f,
            self.close, self.volume, self.quote_volume, self.count, self.exchange_time,
            self.receive_time,
        )  # fmt: skip

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


class RollupBuilder(CandleBuilder):
    """A bar of an interval that is a multiple of the smallest one, made of the
    smallest interval's closed bars plus its open bar (see the module docstring)."""

    __slots__ = ("_cache_key", "base")

    def __init__(self, exchange: str, symbol: str, interval: str, base: CandleBuilder) -> None:
        super().__init__(exchange, symbol, interval)
        self.base = base
        self._cache_key = (-1, -1)

    def merge(self, bar: Bar) -> None:
        """Take a closed bar of the base interval (it lies within this bar's period)."""
        (start, open_, high, high_f, low, low_f, close, volume, quote, count, et, rt) = bar
        if not self.count:
            self.open_time = start - start % self.length
            self.close_time = self.open_time + self.length
            self.open, self.high, self.high_f, self.low, self.low_f = (
                open_, high, high_f, low, low_f)  # fmt: skip
            self.volume, self.quote_volume = volume, quote
        else:
            if high_f > self.high_f:
                self.high, self.high_f = high, high_f
            if low_f < self.low_f:
                self.low, self.low_f = low, low_f
            self.volume = add(self.volume, volume)
            self.quote_volume = add(self.quote_volume, quote)
        self.close = close
        self.count += count
        self.exchange_time, self.receive_time = et, rt
        self.version += 1

    def due(self, t: int) -> Candle | None:
        """The final candle when exchange time `t` is past this bar's end."""
        if self.count and t >= self.close_time:
            closed = self._candle(closed=True)
            self.count = 0
            self.version += 1
            return closed
        return None

    def current(self) -> Candle | None:
        """This bar so far, including the base interval's open bar."""
        base = self.base
        key = (self.version, base.version)
        if key == self._cache_key:
            return self._cached
        self._cache_key = key
        self._cached = None
        live = base.count and (not self.count or base.open_time < self.close_time)
        if not self.count and not live:
            return None
        if not live:
            self._cached = self._candle(closed=False)
            return self._cached
        saved = self.bar(), self.open_time, self.close_time
        self.merge(base.bar())  # the base's open bar, merged into a throwaway state
        self._cached = self._candle(closed=False)
        self._restore(*saved)
        return self._cached

    def _restore(self, bar: Bar, open_time: int, close_time: int) -> None:
        (_, self.open, self.high, self.high_f, self.low, self.low_f, self.close, self.volume,
         self.quote_volume, self.count, self.exchange_time, self.receive_time) = bar  # fmt: skip
        self.open_time, self.close_time = open_time, close_time
        self.version -= 1  # merge() bumped it


class CandleSet:
    """Every configured interval's builder for one symbol, sharing one parse per trade."""

    __slots__ = ("_direct", "_numbers", "_rollups", "builders")

    def __init__(self, exchange: str, symbol: str, intervals: tuple[str, ...]) -> None:
        self._numbers: dict[str, Scaled] = {}
        self.builders: list[CandleBuilder] = []  # in the configured order
        self._direct: list[int] = []  # indexes of the builders fed trade by trade
        self._rollups: list[int] = []  # indexes of the builders rolled up from the base
        if not intervals:
            return
        base_name = min(intervals, key=interval_ns)
        base = CandleBuilder(exchange, symbol, base_name)
        for i, name in enumerate(intervals):
            if name == base_name and base not in self.builders:
                self.builders.append(base)
                self._direct.insert(0, i)
            elif interval_ns(name) % base.length == 0:
                self.builders.append(RollupBuilder(exchange, symbol, name, base))
                self._rollups.append(i)
            else:
                self.builders.append(CandleBuilder(exchange, symbol, name))
                self._direct.append(i)

    def add(self, trade: Trade) -> Sequence[tuple[int, Candle]]:
        """Feed a trade; returns (builder index, final candle) of every bar it closed."""
        numbers = self._numbers  # the cache read inline (a Scaled is never falsy)
        price = numbers.get(trade.price) or self.number(trade.price)
        qty = numbers.get(trade.quantity) or self.number(trade.quantity)
        notional = (price[0] * qty[0], price[1] + qty[1])  # decimals.multiply
        price_f = float(trade.price)
        builders = self.builders
        closed: list[tuple[int, Candle]] | None = None  # made only when a bar closes
        for i in self._direct:
            bar = builders[i].add(trade, price_f, qty, notional)
            if bar is not None:
                if closed is None:
                    closed = []
                closed.append((i, bar))
        if closed is None:
            return ()
        if closed[0][0] == self._direct[0] and self._rollups:
            done = builders[self._direct[0]].closed_bar
            t = trade.exchange_time
            for i in self._rollups:
                rollup: RollupBuilder = builders[i]  # type: ignore[assignment]
                if done is not None:
                    rollup.merge(done)
                final = rollup.due(t)
                if final is not None:
                    closed.append((i, final))
        return closed

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
