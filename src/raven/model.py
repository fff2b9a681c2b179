"""The normalized market data model: one frozen struct per kind.

Connectors convert venue wire formats into these; everything downstream
(validation, state, fan-out, storage, the client) speaks only this model.
Prices and quantities stay decimal strings, exactly as the exchange wrote
them, so they round-trip without error; numeric work parses them where it
needs to. Times are integer nanoseconds since the Unix epoch.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

from raven.types import Decimal, Exchange, Kind, Nanos, Side, StatusKind, Symbol

Level: TypeAlias = tuple[Decimal, Decimal]  # (price, quantity)


class Trade(msgspec.Struct, frozen=True, gc=False):
    exchange: Exchange
    symbol: Symbol
    price: Decimal
    quantity: Decimal
    side: Side  # the aggressor's side
    trade_id: int  # aggregate trade id for aggTrade, trade id for raw trades
    exchange_time: Nanos
    receive_time: Nanos
    first_trade_id: int = 0
    last_trade_id: int = 0

    kind = Kind.TRADE


class Quote(msgspec.Struct, frozen=True, gc=False):
    """Best bid and offer ("book ticker")."""

    exchange: Exchange
    symbol: Symbol
    bid_price: Decimal
    bid_quantity: Decimal
    ask_price: Decimal
    ask_quantity: Decimal
    update_id: int
    exchange_time: Nanos
    receive_time: Nanos

    kind = Kind.QUOTE


class BookSnapshot(msgspec.Struct, frozen=True, gc=False):
    """The top `depth` levels per side (0: all), best first, as of `update_id`."""

    exchange: Exchange
    symbol: Symbol
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    update_id: int
    exchange_time: Nanos
    receive_time: Nanos
    depth: int = 0

    kind = Kind.BOOK


class BookDelta(msgspec.Struct, frozen=True, gc=False):
    """Absolute quantities for changed levels; quantity "0" removes a level.

    Applied to the book as of `prev_update_id` it gives the book as of
    `update_id`. `first_update_id` is the exchange's `U`.
    """

    exchange: Exchange
    symbol: Symbol
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    first_update_id: int
    update_id: int
    prev_update_id: int
    exchange_time: Nanos
    receive_time: Nanos
    depth: int = 0

    kind = Kind.BOOK


class Candle(msgspec.Struct, frozen=True, gc=False):
    exchange: Exchange
    symbol: Symbol
    interval: str  # "1s", "1m", ... "1d"
    open_time: Nanos
    close_time: Nanos  # exclusive end of the bar
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal  # base asset
    quote_volume: Decimal
    trade_count: int
    closed: bool  # final update of the bar
    from_trades: bool  # built by Raven (True) or the exchange's kline (False)
    exchange_time: Nanos
    receive_time: Nanos

    kind = Kind.CANDLE


class Funding(msgspec.Struct, frozen=True, gc=False):
    exchange: Exchange
    symbol: Symbol
    mark_price: Decimal
    index_price: Decimal
    estimated_settle_price: Decimal
    funding_rate: Decimal
    next_funding_time: Nanos
    exchange_time: Nanos
    receive_time: Nanos

    kind = Kind.FUNDING


class Liquidation(msgspec.Struct, frozen=True, gc=False):
    exchange: Exchange
    symbol: Symbol
    side: Side  # side of the liquidation order
    price: Decimal
    quantity: Decimal
    average_price: Decimal
    filled_quantity: Decimal
    order_status: str
    exchange_time: Nanos
    receive_time: Nanos

    kind = Kind.LIQUIDATION


class Status(msgspec.Struct, frozen=True, gc=False):
    """A feed or book changed state; `symbol` is empty for a whole feed."""

    exchange: Exchange
    symbol: Symbol
    status: StatusKind
    detail: str
    exchange_time: Nanos
    receive_time: Nanos

    kind = Kind.STATUS


Event: TypeAlias = (
    Trade | Quote | BookSnapshot | BookDelta | Candle | Funding | Liquidation | Status
)


class Instrument(msgspec.Struct, frozen=True, gc=False):
    """A symbol's trading rules, as the exchange states them (not an event).

    Sizes are the venue's decimal text, unchanged: `tick_size` is the price
    increment, `step_size` the quantity increment; empty when not stated.
    """

    exchange: Exchange
    symbol: Symbol
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal = ""
    min_price: Decimal = ""
