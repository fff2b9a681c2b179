"""Normalized events <-> `raven.v1` protobuf, and hand-built stream frames.

The server encodes each event once, as the bytes of one `events` entry of a
`StreamResponse` (field tag + length + MarketEvent). A frame is then a short
header plus the concatenation of such chunks, so the same chunk bytes are
shared by every subscriber and nothing is re-serialized per client. Clients
parse frames with the generated `StreamResponse` class as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from raven import fastproto
from raven.model import (
    BookDelta,
    BookSnapshot,
    Candle,
    Event,
    Funding,
    Level,
    Liquidation,
    Quote,
    Status,
    Trade,
)
from raven.types import Side, StatusKind
from raven.v1 import market_data_pb2 as pb

_EVENTS_TAG = b"\x12"  # StreamResponse.events: field 2, length-delimited
varint = fastproto.varint


def frame(first_sequence: int, chunks: Sequence[bytes], sent_time_ns: int) -> bytes:
    """A serialized StreamResponse carrying pre-encoded event chunks."""
    return fastproto.frame_header(first_sequence, sent_time_ns) + b"".join(chunks)


def chunk(message: pb.MarketEvent) -> bytes:
    """Wrap a MarketEvent as one `events` entry of a StreamResponse."""
    body = message.SerializeToString()
    return _EVENTS_TAG + varint(len(body)) + body


def encode(event: Event) -> bytes:
    """Encode a normalized event once, as a StreamResponse `events` chunk
    (by hand: see `raven.fastproto`; `chunk(to_proto(event))` is equivalent)."""
    return fastproto.encode(event)


def _levels(levels: Iterable[Level]) -> list[pb.PriceLevel]:
    return [pb.PriceLevel(price=p, quantity=q) for p, q in levels]


def _trade(e: Trade) -> dict[str, Any]:
    return {
        "trade": pb.Trade(
            price=e.price,
            quantity=e.quantity,
            side=e.side,  # type: ignore[arg-type]
            trade_id=e.trade_id,
            first_trade_id=e.first_trade_id,
            last_trade_id=e.last_trade_id,
        )
    }


def _quote(e: Quote) -> dict[str, Any]:
    return {
        "quote": pb.Quote(
            bid_price=e.bid_price,
            bid_quantity=e.bid_quantity,
            ask_price=e.ask_price,
            ask_quantity=e.ask_quantity,
            update_id=e.update_id,
        )
    }


def _snapshot(e: BookSnapshot) -> dict[str, Any]:
    return {
        "book_snapshot": pb.BookSnapshot(
            bids=_levels(e.bids), asks=_levels(e.asks), update_id=e.update_id, depth=e.depth
        )
    }


def _delta(e: BookDelta) -> dict[str, Any]:
    return {
        "book_delta": pb.BookDelta(
            bids=_levels(e.bids),
            asks=_levels(e.asks),
            prev_update_id=e.prev_update_id,
            update_id=e.update_id,
            depth=e.depth,
        )
    }


def _candle(e: Candle) -> dict[str, Any]:
    return {
        "candle": pb.Candle(
            interval=e.interval,
            open_time_ns=e.open_time,
            close_time_ns=e.close_time,
            open=e.open,
            high=e.high,
            low=e.low,
            close=e.close,
            volume=e.volume,
            quote_volume=e.quote_volume,
            trade_count=e.trade_count,
            closed=e.closed,
            from_trades=e.from_trades,
        )
    }


def _funding(e: Funding) -> dict[str, Any]:
    return {
        "funding": pb.Funding(
            mark_price=e.mark_price,
            index_price=e.index_price,
            estimated_settle_price=e.estimated_settle_price,
            funding_rate=e.funding_rate,
            next_funding_time_ns=e.next_funding_time,
        )
    }


def _liquidation(e: Liquidation) -> dict[str, Any]:
    return {
        "liquidation": pb.Liquidation(
            side=e.side,  # type: ignore[arg-type]
            price=e.price,
            quantity=e.quantity,
            average_price=e.average_price,
            filled_quantity=e.filled_quantity,
            order_status=e.order_status,
        )
    }


def _status(e: Status) -> dict[str, Any]:
    return {"status": pb.Status(kind=e.status, detail=e.detail)}  # type: ignore[arg-type]


_PAYLOAD: dict[type[Any], Callable[[Any], dict[str, Any]]] = {
    Trade: _trade,
    Quote: _quote,
    BookSnapshot: _snapshot,
    BookDelta: _delta,
    Candle: _candle,
    Funding: _funding,
    Liquidation: _liquidation,
    Status: _status,
}


def to_proto(event: Event) -> pb.MarketEvent:
    return pb.MarketEvent(
        exchange=event.exchange,
        symbol=event.symbol,
        exchange_time_ns=event.exchange_time,
        receive_time_ns=event.receive_time,
        **_PAYLOAD[type(event)](event),
    )


def gap_chunk(dropped: int, reason: str, now_ns: int) -> bytes:
    """The marker a DROP_OLDEST subscriber sees where its events were dropped."""
    return fastproto.gap(dropped, reason, now_ns)


# --- decoding (client side, history, tests) --------------------------------


def _pairs(levels: Iterable[pb.PriceLevel]) -> tuple[Level, ...]:
    return tuple((lv.price, lv.quantity) for lv in levels)


def from_proto(m: pb.MarketEvent) -> Event | None:
    """The normalized event of a MarketEvent; None for a Gap marker."""
    which = m.WhichOneof("payload")
    ex, sym, et, rt = m.exchange, m.symbol, m.exchange_time_ns, m.receive_time_ns
    if which == "trade":
        t = m.trade
        side = Side(t.side)
        return Trade(
            ex,
            sym,
            t.price,
            t.quantity,
            side,
            t.trade_id,
            et,
            rt,
            t.first_trade_id,
            t.last_trade_id,
        )
    if which == "quote":
        q = m.quote
        return Quote(
            ex, sym, q.bid_price, q.bid_quantity, q.ask_price, q.ask_quantity, q.update_id, et, rt
        )
    if which == "book_snapshot":
        b = m.book_snapshot
        return BookSnapshot(ex, sym, _pairs(b.bids), _pairs(b.asks), b.update_id, et, rt, b.depth)
    if which == "book_delta":
        d = m.book_delta
        return BookDelta(
            ex, sym, _pairs(d.bids), _pairs(d.asks), 0, d.update_id, d.prev_update_id, et, rt,
            d.depth,
        )  # fmt: skip
    return _from_proto_rest(m, which)


def _from_proto_rest(m: pb.MarketEvent, which: str | None) -> Event | None:
    ex, sym, et, rt = m.exchange, m.symbol, m.exchange_time_ns, m.receive_time_ns
    if which == "candle":
        c = m.candle
        return Candle(
            ex, sym, c.interval, c.open_time_ns, c.close_time_ns, c.open, c.high, c.low, c.close,
            c.volume, c.quote_volume, c.trade_count, c.closed, c.from_trades, et, rt,
        )  # fmt: skip
    if which == "funding":
        f = m.funding
        return Funding(
            ex, sym, f.mark_price, f.index_price, f.estimated_settle_price, f.funding_rate,
            f.next_funding_time_ns, et, rt,
        )  # fmt: skip
    if which == "liquidation":
        x = m.liquidation
        return Liquidation(
            ex, sym, Side(x.side), x.price, x.quantity, x.average_price, x.filled_quantity,
            x.order_status, et, rt,
        )  # fmt: skip
    if which == "status":
        return Status(ex, sym, StatusKind(m.status.kind), m.status.detail, et, rt)
    return None
