"""Hand-written protobuf encoding of `raven.v1.MarketEvent`, for the hot path.

Building a generated message and serializing it costs about 2-3 µs an event
in Python; most of that is the per-field attribute machinery, not the
bytes. Here each kind is one bytes %-format over the fields, with the
exchange + symbol header cached per symbol and times and ids written as
fixed 64-bit fields with one `struct.pack` (the proto declares them
sfixed64 / fixed64 for this reason). The output is a valid encoding of the
same message: tests parse it back with the generated classes and compare
field by field. `raven.codec` keeps the generated-class path for cold uses.

Field tags are (field number << 3) | wire type: 0 varint, 1 fixed64,
2 length-delimited.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

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


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int."""
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = tuple(varint(n) for n in range(16384))  # varints of every length below 16 KiB


def length(n: int) -> bytes:
    return _SMALL[n] if n < 16384 else varint(n)


_Q = struct.Struct("<q").pack  # sfixed64: times
_U = struct.Struct("<Q").pack  # fixed64: exchange ids
_TIMES = struct.Struct("<BqBq").pack  # MarketEvent fields 3 and 4
_TRADE_IDS = struct.Struct("<BQBQBQ").pack  # Trade fields 4, 5, 6

# MarketEvent payload field tags (fields 10-18); 16+ need two tag bytes.
TAG_TRADE = b"\x52"
TAG_QUOTE = b"\x5a"
TAG_SNAPSHOT = b"\x62"
TAG_DELTA = b"\x6a"
TAG_CANDLE = b"\x72"
TAG_FUNDING = b"\x7a"
TAG_LIQUIDATION = b"\x82\x01"
TAG_STATUS = b"\x8a\x01"
TAG_GAP = b"\x92\x01"

_heads: dict[str, dict[str, bytes]] = {}


def _head(exchange: str, symbol: str) -> bytes:
    """MarketEvent fields 1 and 2, cached per (exchange, symbol)."""
    try:
        return _heads[exchange][symbol]
    except KeyError:
        pass
    head = _s(b"\x0a", exchange) + _s(b"\x12", symbol)  # empty: left out, as proto3 does
    if len(_heads.get(exchange, ())) < 100_000:  # bounded: symbols are configured
        _heads.setdefault(exchange, {})[symbol] = head
    return head


def _s(tag: bytes, text: str) -> bytes:
    """A string field (omitted when empty, as proto3 does)."""
    if not text:
        return b""
    raw = text.encode()
    n = len(raw)
    return tag + (_SMALL[n] if n < 16384 else varint(n)) + raw  # length(), written out


def _v(tag: bytes, value: int) -> bytes:
    """A varint field (omitted when zero)."""
    return tag + varint(value) if value else b""


def event(e: Event, tag: bytes, body: bytes) -> bytes:
    """The MarketEvent of `e` with payload `body` under `tag`, as a
    StreamResponse `events` entry (tag 0x12 + length + message)."""
    try:
        head = _heads[e.exchange][e.symbol]
    except KeyError:
        head = _head(e.exchange, e.symbol)
    n = len(body)
    size = _SMALL[n] if n < 16384 else varint(n)
    total = len(head) + 18 + len(tag) + len(size) + n  # 18: the two fixed64 times
    return b"\x12%b%b%b%b%b%b" % (
        _SMALL[total] if total < 16384 else varint(total),
        head,
        _TIMES(0x19, e.exchange_time, 0x21, e.receive_time),
        tag,
        size,
        body,
    )


def trade(e: Trade) -> bytes:
    # Prices, quantities and their lengths are far below 16 KiB: _SMALL directly.
    p, q = e.price.encode(), e.quantity.encode()
    lp, lq = len(p), len(q)
    try:
        head = _heads[e.exchange][e.symbol]
    except KeyError:
        head = _head(e.exchange, e.symbol)
    if lp < 128 and lq < 128:
        # The whole chunk in one format (`event` written out): body length is the
        # texts plus 33 bytes of tags, one-byte lengths, side and the three ids.
        n = lp + lq + 33
        size = _SMALL[n]
        return b"\x12%b%b%b\x52%b\x0a%b%b\x12%b%b\x18%b%b" % (
            _SMALL[len(head) + 19 + len(size) + n], head,
            _TIMES(0x19, e.exchange_time, 0x21, e.receive_time), size,
            _SMALL[lp], p, _SMALL[lq], q, _SMALL[e.side],
            _TRADE_IDS(0x21, e.trade_id, 0x29, e.first_trade_id, 0x31, e.last_trade_id),
        )  # fmt: skip
    body = b"\x0a%b%b\x12%b%b\x18%b%b" % (
        length(lp), p, length(lq), q, _SMALL[e.side],
        _TRADE_IDS(0x21, e.trade_id, 0x29, e.first_trade_id, 0x31, e.last_trade_id),
    )  # fmt: skip
    return event(e, TAG_TRADE, body)


def quote(e: Quote) -> bytes:
    bp, bq = e.bid_price.encode(), e.bid_quantity.encode()
    ap, aq = e.ask_price.encode(), e.ask_quantity.encode()
    lbp, lbq, lap, laq = len(bp), len(bq), len(ap), len(aq)
    try:
        head = _heads[e.exchange][e.symbol]
    except KeyError:
        head = _head(e.exchange, e.symbol)
    if lbp < 128 and lbq < 128 and lap < 128 and laq < 128:
        # One format for the whole chunk, as in `trade`: 17 bytes of tags, one-byte
        # lengths and the fixed64 update id besides the texts.
        n = lbp + lbq + lap + laq + 17
        size = _SMALL[n]
        return b"\x12%b%b%b\x5a%b\x0a%b%b\x12%b%b\x1a%b%b\x22%b%b\x29%b" % (
            _SMALL[len(head) + 19 + len(size) + n], head,
            _TIMES(0x19, e.exchange_time, 0x21, e.receive_time), size,
            _SMALL[lbp], bp, _SMALL[lbq], bq, _SMALL[lap], ap, _SMALL[laq], aq,
            _U(e.update_id),
        )  # fmt: skip
    body = b"\x0a%b%b\x12%b%b\x1a%b%b\x22%b%b\x29%b" % (
        length(lbp), bp, length(lbq), bq, length(lap), ap, length(laq), aq, _U(e.update_id),
    )  # fmt: skip
    return event(e, TAG_QUOTE, body)


def levels(tag: bytes, side: Iterable[Level]) -> bytes:
    """Repeated PriceLevel under `tag`."""
    parts = []
    small = _SMALL
    for price, qty in side:
        p, q = price.encode(), qty.encode()
        lp, lq = len(p), len(q)
        if lp < 128 and lq < 128:  # always, in practice: one format per level
            parts.append(b"%b%b\x0a%b%b\x12%b%b" % (tag, small[lp + lq + 4], small[lp], p,
                                                       small[lq], q))  # fmt: skip
        else:
            inner = b"\x0a%b%b\x12%b%b" % (length(lp), p, length(lq), q)
            parts.append(tag + length(len(inner)) + inner)
    return b"".join(parts)


def snapshot(e: BookSnapshot) -> bytes:
    body = b"%b%b\x19%b%b" % (
        levels(b"\x0a", e.bids),
        levels(b"\x12", e.asks),
        _U(e.update_id),
        _v(b"\x20", e.depth),
    )
    return event(e, TAG_SNAPSHOT, body)


def delta(e: BookDelta) -> bytes:
    body = b"%b%b\x19%b\x21%b%b" % (
        levels(b"\x0a", e.bids), levels(b"\x12", e.asks), _U(e.prev_update_id),
        _U(e.update_id), _v(b"\x28", e.depth),
    )  # fmt: skip
    return event(e, TAG_DELTA, body)


def candle(e: Candle) -> bytes:
    body = b"".join((
        _s(b"\x0a", e.interval), b"\x11", _Q(e.open_time), b"\x19", _Q(e.close_time),
        _s(b"\x22", e.open), _s(b"\x2a", e.high), _s(b"\x32", e.low), _s(b"\x3a", e.close),
        _s(b"\x42", e.volume), _s(b"\x4a", e.quote_volume), _v(b"\x50", e.trade_count),
        b"\x58\x01" if e.closed else b"", b"\x60\x01" if e.from_trades else b"",
    ))  # fmt: skip
    return event(e, TAG_CANDLE, body)


def funding(e: Funding) -> bytes:
    body = b"".join((
        _s(b"\x0a", e.mark_price), _s(b"\x12", e.index_price),
        _s(b"\x1a", e.estimated_settle_price), _s(b"\x22", e.funding_rate),
        b"\x29", _Q(e.next_funding_time),
    ))  # fmt: skip
    return event(e, TAG_FUNDING, body)


def liquidation(e: Liquidation) -> bytes:
    body = b"".join((
        _v(b"\x08", e.side), _s(b"\x12", e.price), _s(b"\x1a", e.quantity),
        _s(b"\x22", e.average_price), _s(b"\x2a", e.filled_quantity),
        _s(b"\x32", e.order_status),
    ))  # fmt: skip
    return event(e, TAG_LIQUIDATION, body)


def status(e: Status) -> bytes:
    return event(e, TAG_STATUS, _v(b"\x08", e.status) + _s(b"\x12", e.detail))


ENCODERS: dict[type[Any], Callable[[Any], bytes]] = {
    Trade: trade,
    Quote: quote,
    BookSnapshot: snapshot,
    BookDelta: delta,
    Candle: candle,
    Funding: funding,
    Liquidation: liquidation,
    Status: status,
}


def encode(e: Event) -> bytes:
    """A normalized event as one StreamResponse `events` chunk."""
    return ENCODERS[type(e)](e)


def gap(dropped: int, reason: str, now_ns: int) -> bytes:
    """A Gap marker event (no exchange, no symbol) as an `events` chunk."""
    body = _v(b"\x08", dropped) + _s(b"\x12", reason)
    msg = b"\x19%b\x21%b%b%b%b" % (_Q(now_ns), _Q(now_ns), TAG_GAP, length(len(body)), body)
    return b"\x12" + length(len(msg)) + msg


def frame_header(first_sequence: int, sent_time_ns: int) -> bytes:
    """StreamResponse fields 1 (first_sequence) and 3 (sent_time_ns)."""
    return b"\x08%b\x19%b" % (varint(first_sequence), _Q(sent_time_ns))
