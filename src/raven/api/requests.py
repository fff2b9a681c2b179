"""Validation of client subscription requests: protobuf in, a plan or a clear error out.

No I/O. Every problem raises `RequestError` with a message a person can act
on; the service turns it into INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from raven.core.bus import Policy
from raven.types import Kind
from raven.v1 import market_data_pb2 as pb

MAX_BOOK_DEPTH = 1000


class RequestError(ValueError):
    """A client request that can't be served; the message says why."""


class Plan(msgspec.Struct, frozen=True):
    """A validated subscription: which (kind, symbol) pairs, with which options."""

    exchange: str
    symbols: tuple[str, ...]  # may be ("*",)
    kinds: tuple[Kind, ...]
    policy: Policy | None  # None: the default per kind
    book_depth: int
    candle_intervals: tuple[str, ...]


def plan_subscription(
    sub: pb.Subscription,
    catalog: Mapping[str, frozenset[str]],
    default_depth: int,
    candle_intervals: tuple[str, ...] = (),
) -> Plan:
    """Check a Subscription against the configured exchanges and symbols."""
    exchange = sub.exchange or next(iter(catalog), "")
    if exchange not in catalog:
        known = ", ".join(sorted(catalog)) or "none"
        raise RequestError(f"unknown exchange {sub.exchange!r}; configured: {known}")
    symbols = _symbols(list(sub.symbols), catalog[exchange], exchange)
    kinds = _kinds(list(sub.kinds))
    policy = Policy(sub.policy) if sub.policy else None
    if sub.policy and sub.policy not in Policy._value2member_map_:
        raise RequestError(f"unknown overflow policy {sub.policy}")
    depth = sub.book_depth or default_depth
    if depth > MAX_BOOK_DEPTH:
        raise RequestError(f"book_depth {depth} is too large; the maximum is {MAX_BOOK_DEPTH}")
    intervals = tuple(sub.candle_intervals)
    unknown = [i for i in intervals if i not in candle_intervals]
    if unknown and candle_intervals:
        raise RequestError(
            f"unknown candle interval(s) {', '.join(unknown)}; "
            f"configured: {', '.join(candle_intervals)}"
        )
    return Plan(exchange, symbols, kinds, policy, depth, intervals or candle_intervals)


def _symbols(requested: list[str], known: frozenset[str], exchange: str) -> tuple[str, ...]:
    if not requested:
        raise RequestError("no symbols: name at least one symbol, or '*' for all")
    if "*" in requested:
        return ("*",)
    out = []
    for symbol in requested:
        upper = symbol.strip().upper()
        if upper not in known:
            raise RequestError(
                f"unknown symbol {symbol!r} on {exchange}; configured: {', '.join(sorted(known))}"
            )
        if upper not in out:
            out.append(upper)
    return tuple(out)


def _kinds(requested: list[int]) -> tuple[Kind, ...]:
    if not requested:
        raise RequestError("no kinds: name at least one data kind (e.g. DATA_KIND_TRADE)")
    out = []
    for value in requested:
        try:
            kind = Kind(value)
        except ValueError:
            names = ", ".join(pb.DataKind.Name(pb.DataKind.ValueType(k)) for k in Kind)
            raise RequestError(f"unknown data kind {value}; expected one of: {names}") from None
        if kind not in out:
            out.append(kind)
    return tuple(out)
