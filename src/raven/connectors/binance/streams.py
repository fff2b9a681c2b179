"""Binance USD-M stream names, their routes and connection URLs.

Since 2026-04-23 each stream lives on a routed path: `/public` (books,
book ticker, raw trades) or `/market` (aggregate trades, mark price,
klines, liquidations, tickers). A stream on the wrong route is acknowledged
and then stays silent, so routing is decided here, once, from the name.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence

import msgspec


class StreamType(enum.Enum):
    AGG_TRADE = "aggTrade"
    TRADE = "trade"
    BOOK_TICKER = "bookTicker"
    DEPTH_DIFF = "depth"
    DEPTH_PARTIAL = "depthN"
    KLINE = "kline"
    MARK_PRICE = "markPrice"
    FORCE_ORDER = "forceOrder"


class Route(enum.Enum):
    PUBLIC = "public"
    MARKET = "market"


_PATTERNS: tuple[tuple[re.Pattern[str], StreamType], ...] = (
    (re.compile(r"aggTrade"), StreamType.AGG_TRADE),
    (re.compile(r"trade"), StreamType.TRADE),
    (re.compile(r"bookTicker"), StreamType.BOOK_TICKER),
    (re.compile(r"depth(@(100ms|500ms|0ms))?"), StreamType.DEPTH_DIFF),
    (re.compile(r"depth(5|10|20)(@(100ms|500ms))?"), StreamType.DEPTH_PARTIAL),
    (
        re.compile(r"kline_(1s|1m|3m|5m|15m|30m|1h|2h|4h|6h|8h|12h|1d|3d|1w|1M)"),
        StreamType.KLINE,
    ),
    (re.compile(r"markPrice(@1s)?"), StreamType.MARK_PRICE),
    (re.compile(r"forceOrder"), StreamType.FORCE_ORDER),
)

_ROUTES = {
    StreamType.AGG_TRADE: Route.MARKET,
    StreamType.TRADE: Route.PUBLIC,
    StreamType.BOOK_TICKER: Route.PUBLIC,
    StreamType.DEPTH_DIFF: Route.PUBLIC,
    StreamType.DEPTH_PARTIAL: Route.PUBLIC,
    StreamType.KLINE: Route.MARKET,
    StreamType.MARK_PRICE: Route.MARKET,
    StreamType.FORCE_ORDER: Route.MARKET,
}

SUPPORTED = (
    "aggTrade, trade, bookTicker, depth[@100ms|@500ms|@0ms], depth5|10|20[@100ms|@500ms], "
    "kline_<interval>, markPrice[@1s], forceOrder"
)


class Stream(msgspec.Struct, frozen=True):
    name: str  # "btcusdt@aggTrade", as the venue names it (lower-case symbol)
    symbol: str  # "BTCUSDT"
    type: StreamType
    suffix: str  # "aggTrade", "depth@100ms", ...

    @property
    def route(self) -> Route:
        return _ROUTES[self.type]

    @property
    def depth(self) -> int:
        """N of a partial depth stream ("depth20@100ms" -> 20); 0 for other streams."""
        if self.type is not StreamType.DEPTH_PARTIAL:
            return 0
        return int(self.suffix.partition("@")[0].removeprefix("depth"))


def stream_type(suffix: str) -> StreamType:
    """The type of a stream suffix such as "depth20@100ms"; ValueError if unknown."""
    for pattern, kind in _PATTERNS:
        if pattern.fullmatch(suffix):
            return kind
    raise ValueError(f"unsupported Binance stream {suffix!r}; supported: {SUPPORTED}")


def make_stream(symbol: str, suffix: str) -> Stream:
    return Stream(f"{symbol.lower()}@{suffix}", symbol.upper(), stream_type(suffix), suffix)


def plan_streams(symbols: tuple[str, ...], suffixes: tuple[str, ...]) -> list[Stream]:
    """Every (symbol, stream type) pair, in a stable order."""
    return [make_stream(symbol, suffix) for suffix in suffixes for symbol in symbols]


def combined_url(ws_base: str, route: Route, names: list[str]) -> str:
    """`<base>/<route>/stream?streams=a/b`: every frame arrives as {"stream", "data"}.

    With no names, the bare `<base>/<route>/stream` (streams follow by SUBSCRIBE).
    """
    base = f"{ws_base.rstrip('/')}/{route.value}/stream"
    return f"{base}?streams={'/'.join(names)}" if names else base


def plan_connections(
    streams: Sequence[Stream], max_per_connection: int
) -> list[tuple[Route, list[Stream]]]:
    """Streams grouped by route, then cut into connections of at most
    `max_per_connection` streams (the venue refuses the one past its limit)."""
    plan: list[tuple[Route, list[Stream]]] = []
    for route in Route:
        routed = [s for s in streams if s.route is route]
        for start in range(0, len(routed), max_per_connection):
            plan.append((route, routed[start : start + max_per_connection]))
    return plan


def route_of(name: str) -> Route | None:
    """The route of a stream name such as "btcusdt@depth@100ms"; None if unsupported."""
    _, sep, suffix = name.partition("@")
    if not sep:
        return None
    try:
        return _ROUTES[stream_type(suffix)]
    except ValueError:
        return None
