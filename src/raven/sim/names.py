"""Which simulated stream a name is, and on which route it is served.

The connector's `streams.py` decides routes from a name; the simulator uses
the same table (so both sides agree) and also needs the parameters: the
update speed of a depth stream, the levels of a partial depth stream, the
interval of a kline stream. Names the venue would acknowledge but never
feed (unknown symbol, uppercase symbol, unknown stream type) parse to None:
the connection keeps the subscription and stays silent, like Binance.
"""

from __future__ import annotations

import enum
import re

import msgspec

from raven.connectors.binance.streams import Route, StreamType, make_stream


class Kind(enum.Enum):
    AGG_TRADE = "aggTrade"
    TRADE = "trade"
    BOOK_TICKER = "bookTicker"
    DEPTH = "depth"  # diff depth, any speed
    PARTIAL = "partial"  # depth5/10/20
    KLINE = "kline"
    MARK_PRICE = "markPrice"
    MARK_PRICE_ALL = "!markPrice@arr"
    FORCE_ORDER = "forceOrder"
    FORCE_ORDER_ALL = "!forceOrder@arr"


class StreamName(msgspec.Struct, frozen=True):
    name: str
    symbol: str  # upper case; "" for the all-market `!` streams
    kind: Kind
    route: Route
    speed_ms: int = 0  # depth/partial: 0 (every change), 100, 250, 500; mark price: 1000, 3000
    levels: int = 0  # partial depth: 5, 10 or 20
    interval: str = ""  # kline interval


DIFF_SPEEDS = (0, 100, 250, 500)
WINDOW_SPEEDS = (100, 250, 500)  # diff speeds that aggregate a window of changes
PARTIAL_LEVELS = (5, 10, 20)

_KINDS = {
    StreamType.AGG_TRADE: Kind.AGG_TRADE,
    StreamType.TRADE: Kind.TRADE,
    StreamType.BOOK_TICKER: Kind.BOOK_TICKER,
    StreamType.DEPTH_DIFF: Kind.DEPTH,
    StreamType.DEPTH_PARTIAL: Kind.PARTIAL,
    StreamType.KLINE: Kind.KLINE,
    StreamType.MARK_PRICE: Kind.MARK_PRICE,
    StreamType.FORCE_ORDER: Kind.FORCE_ORDER,
}
_SPEED = re.compile(r"@(\d+)ms$")
_MARKET_WIDE = {
    "!markPrice@arr": StreamName("!markPrice@arr", "", Kind.MARK_PRICE_ALL, Route.MARKET, 3000),
    "!markPrice@arr@1s": StreamName(
        "!markPrice@arr@1s", "", Kind.MARK_PRICE_ALL, Route.MARKET, 1000
    ),
    "!forceOrder@arr": StreamName("!forceOrder@arr", "", Kind.FORCE_ORDER_ALL, Route.MARKET),
}


def parse_name(name: str, symbols: frozenset[str]) -> StreamName | None:
    """The stream `name` means, or None when the venue would keep it silent."""
    wide = _MARKET_WIDE.get(name)
    if wide is not None:
        return wide
    lower, sep, suffix = name.partition("@")
    if not sep or lower != lower.lower() or lower.upper() not in symbols:
        return None
    try:
        stream = make_stream(lower, suffix)
    except ValueError:
        return None
    kind = _KINDS[stream.type]
    symbol = lower.upper()
    if kind is Kind.DEPTH or kind is Kind.PARTIAL:
        match = _SPEED.search(suffix)
        speed = int(match.group(1)) if match else 250
        levels = int(suffix[5 : suffix.find("@") if "@" in suffix else None] or 0)
        return StreamName(name, symbol, kind, stream.route, speed, levels)
    if kind is Kind.KLINE:
        return StreamName(name, symbol, kind, stream.route, interval=suffix.partition("_")[2])
    if kind is Kind.MARK_PRICE:
        return StreamName(name, symbol, kind, stream.route, 1000 if suffix.endswith("1s") else 3000)
    return StreamName(name, symbol, kind, stream.route)


def route_of(name: str) -> Route | None:
    """The route of any name the simulator knows, whatever the symbol."""
    wide = _MARKET_WIDE.get(name)
    if wide is not None:
        return wide.route
    lower, sep, suffix = name.partition("@")
    if not sep:
        return None
    try:
        return make_stream(lower, suffix).route
    except ValueError:
        return None


class SymbolNames:
    """The names of one symbol's streams, built once (no string work per event)."""

    def __init__(self, symbol: str) -> None:
        s = symbol.lower()
        self.agg_trade = f"{s}@aggTrade"
        self.trade = f"{s}@trade"
        self.book_ticker = f"{s}@bookTicker"
        self.depth = {
            0: f"{s}@depth@0ms",
            100: f"{s}@depth@100ms",
            250: f"{s}@depth",
            500: f"{s}@depth@500ms",
        }
        self.partial = {
            (speed, n): f"{s}@depth{n}" + ("" if speed == 250 else f"@{speed}ms")
            for speed in WINDOW_SPEEDS
            for n in PARTIAL_LEVELS
        }
        self.mark_price = {1000: f"{s}@markPrice@1s", 3000: f"{s}@markPrice"}
        self.force_order = f"{s}@forceOrder"
