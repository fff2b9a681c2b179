"""Validation of client requests: protobuf in, a plan or a clear error out.

No I/O. Every problem raises `RequestError` with a message a person can act
on (what was wrong, what is allowed); the service turns it into
INVALID_ARGUMENT.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import msgspec

from raven.config import ServerConfig
from raven.core.bus import Policy
from raven.types import Kind
from raven.v1 import market_data_pb2 as pb


class RequestError(ValueError):
    """A client request that can't be served; the message says why."""


class BookMode(enum.IntEnum):
    """= raven.v1.BookMode (UNSPECIFIED is read as DELTAS)."""

    DELTAS = 1
    SNAPSHOTS = 2


class Catalog:
    """What clients may ask for: symbols and exchange kline intervals per
    exchange, and the candle intervals Raven builds from trades."""

    def __init__(self, intervals: tuple[str, ...] = ()) -> None:
        self.intervals = intervals
        self.symbols: dict[str, frozenset[str]] = {}
        self.klines: dict[str, tuple[str, ...]] = {}

    def add(self, exchange: str, symbols: Iterable[str], klines: Iterable[str] = ()) -> None:
        self.symbols[exchange] = frozenset(s.upper() for s in symbols)
        self.klines[exchange] = tuple(klines)

    def default_exchange(self) -> str:
        return next(iter(self.symbols), "")

    def candle_intervals(self, exchange: str) -> tuple[str, ...]:
        """Every interval a client may ask for on `exchange`, built ones first."""
        extra = [i for i in self.klines.get(exchange, ()) if i not in self.intervals]
        return (*self.intervals, *extra)


class Plan(msgspec.Struct, frozen=True):
    """A validated subscription: which (kind, symbol) pairs, with which options."""

    exchange: str
    symbols: tuple[str, ...]  # "*" expanded to every configured symbol
    kinds: tuple[Kind, ...]
    policy: Policy | None  # None: the default per kind
    book_depth: int
    book_mode: BookMode
    book_interval_ms: int  # BOOK_MODE_SNAPSHOTS only
    candle_intervals: tuple[str, ...]  # never empty when CANDLE is asked for


def plan_subscription(sub: pb.Subscription, catalog: Catalog, config: ServerConfig) -> Plan:
    """Check a Subscription against the catalog and the server's limits."""
    exchange = exchange_of(sub.exchange, catalog)
    symbols = _symbols(list(sub.symbols), catalog.symbols[exchange], exchange)
    kinds = _kinds(list(sub.kinds))
    policy = _policy(sub.policy)
    depth, mode, interval = _book(sub, config)
    intervals = _intervals(list(sub.candle_intervals), catalog.candle_intervals(exchange), exchange)
    return Plan(exchange, symbols, kinds, policy, depth, mode, interval, intervals)


def exchange_of(name: str, catalog: Catalog) -> str:
    exchange = name.strip() or catalog.default_exchange()
    if exchange not in catalog.symbols:
        known = ", ".join(sorted(catalog.symbols)) or "none"
        raise RequestError(f"unknown exchange {name!r}; configured: {known}")
    return exchange


def symbol_of(name: str, catalog: Catalog, exchange: str) -> str:
    symbol = name.strip().upper()
    if not symbol:
        raise RequestError("no symbol: name one, e.g. BTCUSDT")
    known = catalog.symbols[exchange]
    if symbol not in known:
        raise RequestError(f"unknown symbol {name!r} on {exchange}; configured: {_list(known)}")
    return symbol


def book_depth(requested: int, config: ServerConfig) -> int:
    depth = requested or config.default_book_depth
    if depth > config.max_book_depth:
        raise RequestError(
            f"book_depth {depth} is too deep; ask for 1 to {config.max_book_depth} levels "
            "(0: the server default)"
        )
    return depth


def _symbols(requested: list[str], known: frozenset[str], exchange: str) -> tuple[str, ...]:
    if not requested:
        raise RequestError("no symbols: name at least one symbol, or '*' for all")
    if "*" in (s.strip() for s in requested):
        return tuple(sorted(known))
    out: list[str] = []
    for name in requested:
        symbol = name.strip().upper()
        if symbol not in known:
            raise RequestError(f"unknown symbol {name!r} on {exchange}; configured: {_list(known)}")
        if symbol not in out:
            out.append(symbol)
    return tuple(out)


def _kinds(requested: list[int]) -> tuple[Kind, ...]:
    if not requested:
        raise RequestError("no kinds: name at least one data kind (e.g. DATA_KIND_TRADE)")
    out: list[Kind] = []
    for value in requested:
        try:
            kind = Kind(value)
        except ValueError:
            names = ", ".join(pb.DataKind.Name(pb.DataKind.ValueType(k)) for k in Kind)
            raise RequestError(f"unknown data kind {value}; expected one of: {names}") from None
        if kind not in out:
            out.append(kind)
    return tuple(out)


def _policy(value: int) -> Policy | None:
    if not value:
        return None
    try:
        return Policy(value)
    except ValueError:
        names = ", ".join(pb.OverflowPolicy.Name(pb.OverflowPolicy.ValueType(p)) for p in Policy)
        raise RequestError(f"unknown overflow policy {value}; expected one of: {names}") from None


def _book(sub: pb.Subscription, config: ServerConfig) -> tuple[int, BookMode, int]:
    depth = book_depth(sub.book_depth, config)
    try:
        mode = BookMode(sub.book_mode or BookMode.DELTAS)
    except ValueError:
        raise RequestError(
            f"unknown book_mode {sub.book_mode}; expected BOOK_MODE_DELTAS or BOOK_MODE_SNAPSHOTS"
        ) from None
    interval = sub.book_interval_ms
    if mode is BookMode.DELTAS:
        if interval:
            raise RequestError(
                "book_interval_ms applies to book_mode BOOK_MODE_SNAPSHOTS only; "
                "leave it 0 for deltas"
            )
        return depth, mode, 0
    interval = interval or config.default_book_interval_ms
    low, high = config.min_book_interval_ms, config.max_book_interval_ms
    if not low <= interval <= high:
        raise RequestError(f"book_interval_ms {interval} is out of range; use {low} to {high}")
    return depth, mode, interval


def _intervals(requested: list[str], available: tuple[str, ...], exchange: str) -> tuple[str, ...]:
    if not requested:
        return available
    out: list[str] = []
    for name in requested:
        interval = name.strip()
        if interval not in available:
            raise RequestError(
                f"bad candle interval {name!r}; available on {exchange}: "
                f"{', '.join(available) or 'none'}"
            )
        if interval not in out:
            out.append(interval)
    return tuple(out)


def _list(names: frozenset[str], limit: int = 20) -> str:
    ordered = sorted(names)
    head = ", ".join(ordered[:limit])
    return head + (f", ... ({len(ordered)} in all)" if len(ordered) > limit else "")
