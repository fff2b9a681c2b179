"""Wire payloads from the market model's integer state: one builder per stream.

Builders are only called for streams that have a subscriber, so the model
never formats text nobody reads. Levels in depth events are sorted by price
ascending on both sides, as in the venue's diff events; partial depth and
REST snapshots list each side best first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from raven.connectors.binance import wire
from raven.sim.book import Change, TrueBook
from raven.sim.instruments import Instrument

if TYPE_CHECKING:
    from raven.sim.market import Step

E = TypeVar("E")
SYMBOL_TYPE = 1  # `st`: the venue's symbol type code for perpetuals


class Print:
    """The fills of one taker order at one price."""

    __slots__ = (
        "agg_id",
        "buyer_maker",
        "fills",
        "first_id",
        "insurance",
        "last_id",
        "price",
        "qty",
        "time_ms",
    )

    def __init__(
        self,
        agg_id: int,
        price: int,
        qty: int,
        first_id: int,
        last_id: int,
        fills: list[int],
        time_ms: int,
        buyer_maker: bool,
        insurance: bool,
    ) -> None:
        self.agg_id = agg_id  # 0: an insurance-fund fill, which has no aggTrade
        self.price = price
        self.qty = qty
        self.first_id = first_id  # raw trade ids first..last, one per maker fill
        self.last_id = last_id
        self.fills = fills  # quantity of each maker fill
        self.time_ms = time_ms
        self.buyer_maker = buyer_maker
        self.insurance = insurance


class Liquidation:
    """A liquidation order, in units, until the forceOrder push sends it."""

    __slots__ = ("avg", "last_qty", "price", "qty", "side", "time_ms")

    def __init__(self, side: str, qty: int, price: int, avg: int, last_qty: int, t: int) -> None:
        self.side = side  # BUY or SELL
        self.qty = qty
        self.price = price  # bankruptcy price
        self.avg = avg  # average fill price
        self.last_qty = last_qty
        self.time_ms = t


def merged(changes: Iterable[Change]) -> tuple[dict[int, int], dict[int, int]]:
    """Changes -> final quantity per price and side (the last value wins)."""
    bids: dict[int, int] = {}
    asks: dict[int, int] = {}
    for is_bid, price, _old, new in changes:
        (bids if is_bid else asks)[price] = new
    return bids, asks


def ascending(inst: Instrument, levels: dict[int, int]) -> list[tuple[str, str]]:
    price, qty = inst.price, inst.qty
    return [(price(p), qty(levels[p])) for p in sorted(levels)]


def best_first(inst: Instrument, levels: list[tuple[int, int]]) -> list[tuple[str, str]]:
    price, qty = inst.price, inst.qty
    return [(price(p), qty(q)) for p, q in levels]


def depth_update(
    inst: Instrument,
    ids: tuple[int, int, int],
    sides: tuple[list[tuple[str, str]], list[tuple[str, str]]],
    t_ms: int,
    e_ms: int,
) -> wire.DepthUpdate:
    """A `depthUpdate`; `ids` = (U, u, pu), `sides` = (bids, asks) as text."""
    first, last, prev = ids
    symbol = inst.symbol
    return wire.DepthUpdate(
        E=e_ms,
        T=t_ms,
        s=symbol,
        ps=symbol,
        U=first,
        u=last,
        pu=prev,
        b=sides[0],
        a=sides[1],
        st=SYMBOL_TYPE,
    )


def partial_depth(
    inst: Instrument, book: TrueBook, levels: int, ids: tuple[int, int, int], t: int, e: int
) -> wire.DepthUpdate:
    bids, asks = book.top(levels)
    return depth_update(inst, ids, (best_first(inst, bids), best_first(inst, asks)), t, e)


def book_ticker(inst: Instrument, book: TrueBook, t_ms: int, e_ms: int) -> wire.BookTicker:
    bid, bid_qty, ask, ask_qty = book.touch()
    symbol = inst.symbol
    return wire.BookTicker(
        u=book.last_id,
        s=symbol,
        ps=symbol,
        b=inst.price(bid),
        B=inst.qty(bid_qty),
        a=inst.price(ask),
        A=inst.qty(ask_qty),
        T=t_ms,
        E=e_ms,
        st=SYMBOL_TYPE,
    )


def agg_trade(inst: Instrument, p: Print, e_ms: int) -> wire.AggTrade:
    qty = inst.qty(p.qty)
    return wire.AggTrade(
        E=e_ms,
        a=p.agg_id,
        s=inst.symbol,
        p=inst.price(p.price),
        q=qty,
        nq=qty,
        f=p.first_id,
        l=p.last_id,
        T=p.time_ms,
        m=p.buyer_maker,
        st=SYMBOL_TYPE,
    )


def raw_trades(inst: Instrument, p: Print, e_ms: int) -> list[wire.RawTrade]:
    kind = "INSURANCE_FUND" if p.insurance else "MARKET"
    price = inst.price(p.price)
    return [
        wire.RawTrade(
            E=e_ms,
            T=p.time_ms,
            s=inst.symbol,
            t=p.first_id + i,
            p=price,
            q=inst.qty(fill),
            X=kind,
            m=p.buyer_maker,
        )
        for i, fill in enumerate(p.fills)
    ]


def force_order(inst: Instrument, liq: Liquidation, e_ms: int) -> wire.ForceOrder:
    qty = inst.qty(liq.qty)
    body = wire.ForceOrderBody(
        s=inst.symbol,
        S=liq.side,
        o="LIMIT",
        f="IOC",
        q=qty,
        p=inst.price(liq.price),
        ap=inst.price(liq.avg),
        X="FILLED",
        l=inst.qty(liq.last_qty),
        z=qty,
        T=liq.time_ms,
    )
    return wire.ForceOrder(E=e_ms, o=body)


def emissions(
    inst: Instrument,
    step: Step,
    suffixes: tuple[str, ...],
    e_ms: int,
    make: Callable[[str, str, wire.Payload], E],
) -> list[E]:
    """The real-time payloads of one step for the stream `suffixes` asked for."""
    out: list[E] = []
    txn = step.txn
    symbol = inst.symbol
    if "depth@0ms" in suffixes:
        bids, asks = merged(txn.changes)
        sides = (ascending(inst, bids), ascending(inst, asks))
        update = depth_update(
            inst, (txn.first_id, txn.last_id, step.prev_id), sides, txn.time_ms, e_ms
        )
        out.append(make(symbol, "depth@0ms", update))
    for p in step.prints:
        if "aggTrade" in suffixes and not p.insurance:
            out.append(make(symbol, "aggTrade", agg_trade(inst, p, e_ms)))
        if "trade" in suffixes:
            out.extend(make(symbol, "trade", t) for t in raw_trades(inst, p, e_ms))
    if "bookTicker" in suffixes and step.touch_changed:
        out.append(
            make(symbol, "bookTicker", book_ticker(inst, step.state.book, txn.time_ms, e_ms))
        )
    return out
