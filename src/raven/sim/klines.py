"""Candles built from the simulated trades: live bars for the kline streams
and a bounded history of one-second bars for `GET /fapi/v1/klines`.

No I/O. Every trade updates its one-second bar and each live bar that a
kline stream asked for (`track`); `poll` returns what a 250 ms push sends:
a bar that just closed (`x` true), else the open one - one event per push,
as on the venue, so a stream's event times (`E`) never repeat. Bars with no
trades carry the previous close, `f`/`L` -1 and zero volumes, as Binance's.
"""

from __future__ import annotations

import bisect
import calendar
import datetime

from raven.connectors.binance import wire
from raven.sim.instruments import Instrument

SECOND_MS = 1_000
_FIXED_MS = {
    "1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000,
    "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000,
    "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000,
    "3d": 259_200_000, "1w": 604_800_000,
}  # fmt: skip
INTERVALS = (*_FIXED_MS, "1M")
_WEEK_OFFSET_MS = 4 * 86_400_000  # Binance weeks open on Monday; 1970-01-01 was a Thursday
HISTORY_S = 6 * 3600  # one-second bars kept for REST klines


def bar_span(t_ms: int, interval: str) -> tuple[int, int]:
    """(open, next open) in ms of the `interval` bar that contains `t_ms`."""
    if interval == "1M":
        day = datetime.datetime.fromtimestamp(t_ms / 1000, datetime.UTC)
        start = calendar.timegm((day.year, day.month, 1, 0, 0, 0)) * 1000
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return start, calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    size = _FIXED_MS[interval]
    offset = _WEEK_OFFSET_MS if interval == "1w" else 0
    start = (t_ms - offset) // size * size + offset
    return start, start + size


class Bar:
    """One candle in integer units: prices, base volume, quote volume (price*qty units)."""

    __slots__ = ("L", "c", "close_ms", "f", "h", "l", "n", "o", "open_ms", "q", "qb", "v", "vb")

    def __init__(self, open_ms: int, close_ms: int, last_close: int) -> None:
        self.open_ms = open_ms
        self.close_ms = close_ms  # exclusive: the next bar's open
        self.o = self.h = self.l = self.c = last_close
        self.v = self.q = self.vb = self.qb = self.n = 0
        self.f = self.L = -1  # first/last trade id; -1 while the bar has no trade

    def add(self, price: int, qty: int, first: int, last: int, taker_buy: bool) -> None:
        if self.n == 0:
            self.o = self.h = self.l = price
            self.f = first
        elif price > self.h:
            self.h = price
        elif price < self.l:
            self.l = price
        self.c = price
        self.L = last
        self.n += last - first + 1
        self.v += qty
        self.q += price * qty
        if taker_buy:
            self.vb += qty
            self.qb += price * qty

    def merge(self, other: Bar) -> None:
        """Fold a later bar with trades into this one."""
        if other.n == 0:
            return
        if self.n == 0:
            self.o, self.h, self.l, self.f = other.o, other.h, other.l, other.f
        else:
            self.h = max(self.h, other.h)
            self.l = min(self.l, other.l)
        self.c, self.L = other.c, other.L
        self.n += other.n
        self.v += other.v
        self.q += other.q
        self.vb += other.vb
        self.qb += other.qb


class KlineStore:
    """All candles of one symbol."""

    def __init__(self, inst: Instrument, last_close: int) -> None:
        self.inst = inst
        self.last_close = last_close  # the price an empty bar shows
        self.seconds: list[Bar] = []  # one-second bars with trades, ascending
        self._opens: list[int] = []  # their open times, for bisect
        self.live: dict[str, Bar] = {}
        self.closed: dict[str, list[Bar]] = {}  # closed live bars not pushed yet
        self.horizon_ms = 0  # no bar opens before this: the start, or the trimmed history
        self._close_before_history = last_close

    def _see(self, t_ms: int) -> None:
        if not self.horizon_ms:
            self.horizon_ms = t_ms

    def add_trade(
        self, t_ms: int, price: int, qty: int, first: int, last: int, taker_buy: bool
    ) -> None:
        self._see(t_ms)
        seconds = self.seconds
        if not seconds or seconds[-1].close_ms <= t_ms:
            start = t_ms - t_ms % SECOND_MS
            seconds.append(Bar(start, start + SECOND_MS, self.last_close))
            self._opens.append(start)
            self._trim(start)
        seconds[-1].add(price, qty, first, last, taker_buy)
        for interval, bar in self.live.items():
            if bar.close_ms <= t_ms:
                bar = self._roll(interval, t_ms)
            bar.add(price, qty, first, last, taker_buy)
        self.last_close = price

    def _trim(self, now_ms: int) -> None:
        if len(self._opens) > 2 * HISTORY_S:
            cut = bisect.bisect_left(self._opens, now_ms - HISTORY_S * SECOND_MS)
            self._close_before_history = self.seconds[cut - 1].c
            self.horizon_ms = self._opens[cut]
            del self._opens[:cut], self.seconds[:cut]

    def _roll(self, interval: str, t_ms: int) -> Bar:
        self.closed.setdefault(interval, []).append(self.live[interval])
        start, end = bar_span(t_ms, interval)
        bar = self.live[interval] = Bar(start, end, self.last_close)
        return bar

    def track(self, interval: str, now_ms: int) -> None:
        """Start keeping a live bar for `interval` (a kline stream was subscribed)."""
        self._see(now_ms)
        if interval not in self.live:
            self.live[interval] = self.aggregate(interval, now_ms)

    def aggregate(self, interval: str, t_ms: int) -> Bar:
        """The `interval` bar containing `t_ms`, from the one-second history."""
        start, end = bar_span(t_ms, interval)
        lo = bisect.bisect_left(self._opens, start)
        hi = bisect.bisect_left(self._opens, end)
        before = self.seconds[lo - 1].c if lo > 0 else self._close_before_history
        bar = Bar(start, end, before)
        for second in self.seconds[lo:hi]:
            bar.merge(second)
        return bar

    def poll(self, interval: str, now_ms: int) -> list[tuple[Bar, bool]]:
        """A kline push: the oldest bar closed since the last push (final), else the
        open bar. Never both: the venue sends the final bar alone and the next bar
        at the next push, each with its own event time."""
        bar = self.live[interval]
        if bar.close_ms <= now_ms:
            bar = self._roll(interval, now_ms)
        closed = self.closed.get(interval)
        if closed:
            return [(closed.pop(0), True)]
        return [(bar, False)]

    def history(
        self, interval: str, start: int | None, end: int | None, limit: int, now_ms: int
    ) -> list[Bar]:
        """Up to `limit` bars overlapping [start, end] (ms), oldest first, none before the
        store's horizon; without `start`, the latest `limit` bars up to `end`."""
        self._see(now_ms)
        first = bar_span(self.horizon_ms, interval)[0]
        last = min(end if end is not None else now_ms, now_ms)
        t = first if start is None else max(start, first)
        bars: list[Bar] = []
        while t <= last and (start is None or len(bars) < limit):
            bar = self.aggregate(interval, t)
            bars.append(bar)
            t = bar.close_ms
        return bars[-limit:] if start is None else bars

    def kline(self, bar: Bar, interval: str, final: bool, event_ms: int) -> wire.Kline:
        inst = self.inst
        symbol = inst.symbol
        scale = 10**inst.qty_decimals  # quote units carry price*qty decimals
        k = wire.KlineBar(
            bar.open_ms, bar.close_ms - 1, symbol, interval, bar.f, bar.L,
            inst.price(bar.o), inst.price(bar.c), inst.price(bar.h), inst.price(bar.l),
            inst.qty(bar.v), bar.n, final, inst.price(bar.q // scale),
            inst.qty(bar.vb), inst.price(bar.qb // scale), "0",
        )  # fmt: skip
        return wire.Kline(event_ms, symbol, k)

    def row(self, bar: Bar) -> tuple[object, ...]:
        """A `GET /fapi/v1/klines` row."""
        inst = self.inst
        scale = 10**inst.qty_decimals
        return (
            bar.open_ms, inst.price(bar.o), inst.price(bar.h), inst.price(bar.l),
            inst.price(bar.c), inst.qty(bar.v), bar.close_ms - 1, inst.price(bar.q // scale),
            bar.n, inst.qty(bar.vb), inst.price(bar.qb // scale), "0",
        )  # fmt: skip
