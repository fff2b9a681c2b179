"""The citadel's validation rules: small pure functions, no I/O, no clocks.

Each rule has a name (`RULES`), which is also the label of its rejection
counter. `raven.core.citadel.Citadel` applies them to every event and keeps
the per-symbol state some of them need (reference price, recent trade ids).
"""

from __future__ import annotations

import array
import sys
from bisect import bisect_left

from raven.core.decimals import POW10, Increment, Scaled, parse

MAX_SCALE = len(POW10)  # decimals.parse's limit on digits after the point

POSITIVE_FINITE = "positive_finite"  # a price or quantity that is not a positive decimal
PRICE_TICK = "price_tick"  # a price off the symbol's tick grid
QUANTITY_STEP = "quantity_step"  # a quantity off the symbol's step grid
PRICE_BAND = "price_band"  # a price too far from the symbol's reference price
TIME_FUTURE = "time_future"  # exchange time too far ahead of the receive time
TIME_PAST = "time_past"  # exchange time too far behind the receive time
DUPLICATE_TRADE = "duplicate_trade"  # a trade id seen recently for the symbol
CROSSED_QUOTE = "crossed_quote"  # best bid >= best ask in a quote (rejected)
CROSSED_BOOK = "crossed_book"  # best bid >= best ask in the L2 book (flagged, not rejected)

RULES = (
    POSITIVE_FINITE,
    PRICE_TICK,
    QUANTITY_STEP,
    PRICE_BAND,
    TIME_FUTURE,
    TIME_PAST,
    DUPLICATE_TRADE,
    CROSSED_QUOTE,
    CROSSED_BOOK,
)


def positive_finite(text: str, allow_zero: bool = False) -> Scaled | None:
    """The value of a plain decimal text that is > 0 (>= 0 with `allow_zero`).

    Finite by construction: "nan", "inf", "1e400" are not plain decimals."""
    # decimals.parse (unsigned), written out: this runs for every new number.
    whole, dot, frac = text.partition(".")
    if not (whole.isascii() and whole.isdigit()):
        return None
    if dot and not (frac.isascii() and frac.isdigit()):
        return None
    if len(frac) >= MAX_SCALE:
        return None
    mantissa = int(whole + frac) if frac else int(whole)
    if mantissa > 0 or (allow_zero and mantissa == 0):
        return mantissa, len(frac)
    return None


def finite(text: str) -> bool:
    """A plain decimal text, possibly negative (e.g. a funding rate)."""
    return parse(text, signed=True) is not None


def on_grid(value: Scaled, increment: Increment | None) -> Scaled | None:
    """`value` if on the increment's grid, snapped when within rounding
    error, None when off the grid. No increment known: accepted as is."""
    if increment is None:
        return value
    return increment.snap(value)


def within_band(price: float, reference: float, fraction: float) -> bool:
    """|price - reference| <= fraction * reference; always true without a
    reference (0) or with the band switched off (fraction 0)."""
    if reference <= 0.0 or fraction <= 0.0:
        return True
    return abs(price - reference) <= fraction * reference


def exchange_time(exchange_ns: int, receive_ns: int, max_future_ns: int, max_past_ns: int) -> str:
    """ "" when the exchange time is plausible, else the rule it breaks.

    A limit of 0 switches that side off; an exchange time of 0 is unknown."""
    if exchange_ns <= 0:
        return ""
    if max_future_ns and exchange_ns - receive_ns > max_future_ns:
        return TIME_FUTURE
    if max_past_ns and receive_ns - exchange_ns > max_past_ns:
        return TIME_PAST
    return ""


def crossed(bid: float, ask: float) -> bool:
    """A crossed (bid > ask) or locked (bid == ask) top of book."""
    return bid >= ask


ID_LIMIT = 2**64  # trade ids are fixed64 on the wire


class RecentIds:
    """The last `window` trade ids of a symbol, for duplicate detection.

    A ring of unsigned 64-bit ids (8 bytes each; a set of 2,000 Python ints
    held ~200 KB per symbol) and the newest id. Exchange trade ids rise, so
    the common case is one comparison; an id at or below the newest (a
    replay after a reconnect, or out of order) is looked up by bisecting the
    ring's two ascending runs (before and after the write position), then, if
    ids came out of order, by a byte search of the whole ring. Memory stays
    fixed and ids may arrive out of order within the window."""

    __slots__ = ("_newest", "_next", "_ring", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self._ring = array.array("Q")  # grows to `window`, then overwritten oldest first
        self._next = 0  # the ring slot the next id overwrites, once full
        self._newest = -1

    def seen(self, trade_id: int) -> bool:
        """True for a duplicate; otherwise remembers `trade_id`."""
        if trade_id <= self._newest:
            if self._holds(trade_id):
                return True
        else:
            self._newest = trade_id
        if not 0 <= trade_id < ID_LIMIT:
            return False  # not an exchange id (fixed64): nothing to compare it with
        ring = self._ring
        if len(ring) < self.window:
            ring.append(trade_id)
        else:
            ring[self._next] = trade_id
            self._next = (self._next + 1) % self.window
        return False

    def _holds(self, trade_id: int) -> bool:
        ring, split = self._ring, self._next
        for lo, hi in ((split, len(ring)), (0, split)):
            i = bisect_left(ring, trade_id, lo, hi)
            if i < hi and ring[i] == trade_id:
                return True
        if not 0 <= trade_id < ID_LIMIT:
            return False
        # Not where ascending ids would put it: search every slot (C speed on bytes;
        # `in` on the array would build an int per slot).
        data, needle = ring.tobytes(), trade_id.to_bytes(8, sys.byteorder)
        at = data.find(needle)
        while at >= 0 and at % 8:
            at = data.find(needle, at + 1)
        return at >= 0
