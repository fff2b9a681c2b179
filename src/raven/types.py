"""Small aliases and enums that every layer shares.

The enum values equal the protobuf enum values of `raven.v1`, so conversion
between the model and the wire is a plain int.
"""

from __future__ import annotations

import enum
from typing import TypeAlias

Nanos: TypeAlias = int  # nanoseconds since the Unix epoch
Symbol: TypeAlias = str  # exchange symbol, upper case: "BTCUSDT"
Exchange: TypeAlias = str  # configured exchange name: "binance_futures"
Decimal: TypeAlias = str  # a price or quantity exactly as the exchange wrote it


class Kind(enum.IntEnum):
    """The kinds of normalized market data (= raven.v1.DataKind)."""

    TRADE = 1
    QUOTE = 2
    BOOK = 3
    CANDLE = 4
    FUNDING = 5
    LIQUIDATION = 6
    STATUS = 7

    @classmethod
    def parse(cls, name: str) -> Kind:
        """`"trade"` or `"TRADE"` -> Kind.TRADE; ValueError names the choices."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            choices = ", ".join(k.name.lower() for k in cls)
            raise ValueError(f"unknown data kind {name!r}; expected one of: {choices}") from None


class Side(enum.IntEnum):
    """The aggressor's side of a trade, or a liquidation order's side (= raven.v1.Side)."""

    BUY = 1
    SELL = 2


class StatusKind(enum.IntEnum):
    """What a Status event reports (= raven.v1.StatusKind)."""

    FEED_CONNECTED = 1
    FEED_DISCONNECTED = 2
    BOOK_STALE = 3
    BOOK_LIVE = 4
    SERVER_SHUTDOWN = 5


MS_NS = 1_000_000  # nanoseconds per millisecond
S_NS = 1_000_000_000  # nanoseconds per second
