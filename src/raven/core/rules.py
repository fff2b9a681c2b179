"""The citadel's validation rules: small pure functions, no I/O, no clocks.

Each rule has a name (`RULES`), which is also the label of its rejection
counter. `raven.core.citadel.Citadel` applies them to every event and keeps
the per-symbol state some of them need (reference price, recent trade ids).
"""

from __future__ import annotations

import collections

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


class RecentIds:
    """The last `window` trade ids of a symbol, for duplicate detection.

    A set for O(1) lookups plus a FIFO that bounds it: memory stays fixed and
    ids may arrive out of order within the window."""

    __slots__ = ("_order", "_seen", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self._seen: set[int] = set()
        self._order: collections.deque[int] = collections.deque()

    def seen(self, trade_id: int) -> bool:
        """True for a duplicate; otherwise remembers `trade_id`."""
        seen = self._seen
        if trade_id in seen:
            return True
        order = self._order
        if len(order) >= self.window:
            seen.discard(order.popleft())
        order.append(trade_id)
        seen.add(trade_id)
        return False
