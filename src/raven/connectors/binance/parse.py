"""Pure conversions from Binance wire structs to Raven's normalized model.

No I/O and no state: a wire struct, the exchange name and the receive time
in, one normalized event out. Times are converted from ms to ns here.
"""

from __future__ import annotations

from raven.connectors.binance import wire
from raven.model import (
    BookDelta,
    BookSnapshot,
    Candle,
    Funding,
    Instrument,
    Level,
    Liquidation,
    Quote,
    Trade,
)
from raven.types import MS_NS, Side

_INTERVAL_MS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}


def _levels(raw: list[tuple[str, str]]) -> tuple[Level, ...]:
    return tuple(raw)


def agg_trade(w: wire.AggTrade, exchange: str, received: int) -> Trade:
    return Trade(
        exchange,
        w.s,
        w.p,
        w.q,
        Side.SELL if w.m else Side.BUY,
        w.a,
        (w.T or w.E) * MS_NS,
        received,
        w.f,
        w.l,
    )


def raw_trade(w: wire.RawTrade, exchange: str, received: int) -> Trade:
    return Trade(
        exchange, w.s, w.p, w.q, Side.SELL if w.m else Side.BUY, w.t, w.T * MS_NS, received
    )


def book_ticker(w: wire.BookTicker, exchange: str, received: int) -> Quote:
    return Quote(exchange, w.s, w.b, w.B, w.a, w.A, w.u, (w.T or w.E) * MS_NS, received)


def depth_diff(w: wire.DepthUpdate, exchange: str, received: int) -> BookDelta:
    return BookDelta(
        exchange,
        w.s,
        _levels(w.b),
        _levels(w.a),
        w.U,
        w.u,
        w.pu,
        (w.T or w.E) * MS_NS,
        received,
    )


def partial_depth(
    w: wire.DepthUpdate, exchange: str, received: int, depth: int = 0
) -> BookSnapshot:
    """A `@depth5/10/20` frame: the top `depth` levels (the stream's N), not a delta."""
    depth = depth or max(len(w.b), len(w.a))
    return BookSnapshot(
        exchange, w.s, _levels(w.b), _levels(w.a), w.u, (w.T or w.E) * MS_NS, received, depth
    )


def depth_snapshot(
    w: wire.DepthSnapshot, symbol: str, exchange: str, received: int
) -> BookSnapshot:
    return BookSnapshot(
        exchange,
        symbol,
        _levels(w.bids),
        _levels(w.asks),
        w.lastUpdateId,
        (w.T or w.E) * MS_NS,
        received,
    )


def kline(w: wire.Kline, exchange: str, received: int) -> Candle:
    k = w.k
    return Candle(
        exchange,
        k.s or w.s,
        k.i,
        k.t * MS_NS,
        (k.T + 1) * MS_NS,
        k.o,
        k.h,
        k.l,
        k.c,
        k.v,
        k.q,
        k.n,
        k.x,
        False,
        w.E * MS_NS,
        received,
    )


def mark_price(w: wire.MarkPrice, exchange: str, received: int) -> Funding:
    return Funding(exchange, w.s, w.p, w.i, w.P, w.r, w.T * MS_NS, w.E * MS_NS, received)


def force_order(w: wire.ForceOrder, exchange: str, received: int) -> Liquidation:
    o = w.o
    side = Side.BUY if o.S == "BUY" else Side.SELL
    return Liquidation(exchange, o.s, side, o.p, o.q, o.ap, o.z, o.X, o.T * MS_NS, received)


def interval_ms(interval: str) -> int:
    """Length of a Binance kline interval in ms ("1M" is calendar based: not here)."""
    try:
        return _INTERVAL_MS[interval]
    except KeyError:
        raise ValueError(f"unknown interval {interval!r}") from None


def instruments(info: wire.ExchangeInfo, exchange: str) -> dict[str, Instrument]:
    """Symbol -> its tick and step size (the venue's text, unchanged).

    `pricePrecision` is not the tick size (BTCUSDT: tick "0.10", precision 2),
    so only the PRICE_FILTER and LOT_SIZE filters are read.
    """
    out: dict[str, Instrument] = {}
    for sym in info.symbols:
        tick = step = min_qty = min_price = ""
        for f in sym.filters:
            if f.filterType == "PRICE_FILTER":
                tick, min_price = f.tickSize, f.minPrice
            elif f.filterType == "LOT_SIZE":
                step, min_qty = f.stepSize, f.minQty
        out[sym.symbol] = Instrument(exchange, sym.symbol, tick, step, min_qty, min_price)
    return out


def request_weight_limit(info: wire.ExchangeInfo) -> int | None:
    """The REQUEST_WEIGHT limit per minute the venue states, if it states one."""
    for rule in info.rateLimits:
        if rule.rateLimitType == "REQUEST_WEIGHT" and rule.interval == "MINUTE":
            return rule.limit // max(rule.intervalNum, 1)
    return None
