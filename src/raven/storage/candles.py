"""Candles built from stored trades, for intervals that aren't stored. No I/O.

A bar covers `[open_time, open_time + interval)` of *exchange* time, aligned
to the epoch (a 1h bar starts on the hour, UTC). Prices are the exact text of
the trades that set them; volume and quote volume are exact decimal sums
(quantity, and price x quantity). Bars without trades are not produced.
Trades arrive in storage order; one whose exchange time falls before the
current bar (rare: the exchange's clock is per stream) is counted in the
current bar rather than reopening a finished one.

Each candle is returned as a record keyed by the ts of its last trade, so
in a history stream it comes right after the trade that completed it.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TypeAlias

from raven.model import Candle, Trade
from raven.types import S_NS

BuiltCandle: TypeAlias = tuple[int, Candle]  # (ts of the bar's last trade, candle)

_UNITS = {"s": S_NS, "m": 60 * S_NS, "h": 3600 * S_NS, "d": 86400 * S_NS}
_INTERVAL = re.compile(r"([1-9][0-9]*)([smhd])")
MIN_INTERVAL_NS = S_NS
MAX_INTERVAL_NS = 86400 * S_NS


def interval_ns(text: str) -> int:
    """ "15m" -> 900_000_000_000; ValueError with the rules for anything else."""
    match = _INTERVAL.fullmatch(text.strip())
    ns = int(match.group(1)) * _UNITS[match.group(2)] if match else 0
    if not MIN_INTERVAL_NS <= ns <= MAX_INTERVAL_NS:
        raise ValueError(
            f"bad candle interval {text!r}: a whole number and a unit s, m, h or d, "
            "from 1s to 1d (e.g. 1s, 15m, 4h, 1d)"
        )
    return ns


class _Bar:
    __slots__ = ("close", "count", "high", "last", "low", "open", "open_time", "qvol", "vol")

    def __init__(self, open_time: int, ts: int, t: Trade) -> None:
        self.open_time = open_time
        self.open = self.high = self.low = self.close = t.price
        price, qty = Decimal(t.price), Decimal(t.quantity)
        self.vol = qty
        self.qvol = price * qty
        self.count = 1
        self.last = (ts, t)

    def add(self, ts: int, t: Trade) -> None:
        price, qty = Decimal(t.price), Decimal(t.quantity)
        if price > Decimal(self.high):
            self.high = t.price
        if price < Decimal(self.low):
            self.low = t.price
        self.close = t.price
        self.vol += qty
        self.qvol += price * qty
        self.count += 1
        self.last = (ts, t)


class CandleBuilder:
    """Candles of one symbol and interval from its trades, in storage order."""

    def __init__(self, interval: str, range_end_ns: int) -> None:
        self.interval = interval
        self.step = interval_ns(interval)
        self.range_end = range_end_ns
        self._bar: _Bar | None = None

    def add(self, ts: int, trade: Trade) -> BuiltCandle | None:
        """Add a trade; returns the previous bar's candle when this trade starts a new bar."""
        open_time = trade.exchange_time - trade.exchange_time % self.step
        bar = self._bar
        if bar is None:
            self._bar = _Bar(open_time, ts, trade)
            return None
        if open_time <= bar.open_time:
            bar.add(ts, trade)
            return None
        self._bar = _Bar(open_time, ts, trade)
        return self._candle(bar, closed=True)

    def finish(self) -> BuiltCandle | None:
        """The last bar (closed when the range reaches its end)."""
        bar, self._bar = self._bar, None
        if bar is None:
            return None
        return self._candle(bar, closed=bar.open_time + self.step <= self.range_end)

    def _candle(self, bar: _Bar, closed: bool) -> BuiltCandle:
        ts, last = bar.last
        candle = Candle(
            last.exchange, last.symbol, self.interval, bar.open_time, bar.open_time + self.step,
            bar.open, bar.high, bar.low, bar.close, format(bar.vol, "f"), format(bar.qvol, "f"),
            bar.count, closed, True, last.exchange_time, last.receive_time,
        )  # fmt: skip
        return ts, candle
