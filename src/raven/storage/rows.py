"""Embedded-store rows -> protobuf bytes, a column at a time, for GetHistoricalData. No I/O.

History used to build a model struct and then a generated protobuf message
per event (about 7 µs an event). Here a page of rows read from the embedded
store as Arrow columns is encoded with Arrow compute kernels: each field is
one vectorized step (tag + varint length + bytes, fixed 64-bit values viewed
straight from the int64 column's buffer, empty/zero fields left out as
proto3 does), and the fields are concatenated row-wise. Python touches each
row only to take the finished bytes out. The output of `encode_rows` for a
row is one `HistoricalDataResponse.events` entry (tag 0x0a + length +
MarketEvent), so a response is the concatenation of entries plus a cursor.

`encode_rows` is canonical (fields in number order, defaults left out), so
its bytes equal `HistoricalDataResponse(events=[codec.to_proto(e)])`
serialized (tests/storage/test_encode.py). `raven.storage.encode` has the
per-event encoder for everything else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from raven import fastproto
from raven.storage.base import Table
from raven.storage.encode import EVENTS_TAG

_SMALL_LIMIT = 16384  # varints below this come from one table lookup (at most 2 bytes)
_SMALL = pa.array([fastproto.varint(n) for n in range(_SMALL_LIMIT)], pa.binary())
# Arrow scalars made once: a Python literal passed to a kernel is converted on
# every call, which costs more than the kernel itself on a page.
_EMPTY = pa.scalar(b"", pa.binary())
_ZERO = pa.scalar(0, pa.int64())
_ONE = pa.scalar(1, pa.int64())

Arrays = dict[str, pa.Array]
Part: TypeAlias = pa.Array | pa.Scalar
# A field: the columns in, its parts out (concatenated row-wise with the
# message's other parts in a single join: one copy of the bytes per message).
Field = Callable[[Arrays], list[Part]]


def _varints(values: pa.Array) -> pa.Array:
    """The varint bytes of each (non-negative) value."""
    if len(values) and pc.max(values).as_py() >= _SMALL_LIMIT:  # rare: long books, big counts
        return pa.array([fastproto.varint(v) for v in values.to_pylist()], pa.binary())
    return pc.take(_SMALL, values)


def _join(parts: Sequence[Part]) -> pa.Array:
    return pc.binary_join_element_wise(*parts, _EMPTY)


def _length(parts: Sequence[Part]) -> pa.Array:
    """The encoded length of each row of `parts` (cheap: array offsets, no bytes copied)."""
    fixed = sum(len(p.as_py()) for p in parts if isinstance(p, pa.Scalar))
    sizes = [pc.binary_length(p) for p in parts if not isinstance(p, pa.Scalar)]
    total = sizes[0] if fixed == 0 else pc.add(sizes[0], pa.scalar(fixed, pa.int32()))
    for size in sizes[1:]:
        total = pc.add(total, size)
    return total


def _omit(parts: list[Part], empty: pa.Array) -> list[Part]:
    """Leave a field out where `empty` is true (proto3 doesn't write default values)."""
    if pc.any(empty).as_py():
        return [pc.if_else(empty, _EMPTY, p) for p in parts]
    return parts


def _tag(tag: bytes) -> pa.Scalar:
    return pa.scalar(tag, pa.binary())


class _Prefixes:
    """tag + varint(n) for each n below a bound, and nothing for 0: the prefix of a
    string of length n, or a whole varint field of value n, as proto3 writes them."""

    BOUND = 2048  # strings and small ints below this take one lookup; longer ones, two

    def __init__(self, tag: bytes) -> None:
        self.tag = _tag(tag)
        values = [b""] + [tag + fastproto.varint(n) for n in range(1, self.BOUND)]
        self.table = pa.array(values, pa.binary())

    def of(self, values: pa.Array) -> Part:
        if len(values) and pc.max(values).as_py() >= self.BOUND:
            return _join(_omit([self.tag, _varints(values)], pc.equal(values, _ZERO)))
        return pc.take(self.table, values)


def string(tag: bytes, name: str) -> Field:
    prefixes = _Prefixes(tag)

    def field(cols: Arrays) -> list[Part]:
        raw = cols[name].cast(pa.binary())
        return [prefixes.of(pc.binary_length(raw)), raw]

    return field


def fixed64(tag: bytes, name: str) -> Field:
    """sfixed64 / fixed64: the int64 column's own little-endian bytes."""
    key = _tag(tag)

    def field(cols: Arrays) -> list[Part]:
        values = cols[name]
        raw = pa.Array.from_buffers(
            pa.binary(8), len(values), [None, values.buffers()[1]], offset=values.offset
        ).cast(pa.binary())
        return _omit([key, raw], pc.equal(values, _ZERO))

    return field


def varint(tag: bytes, name: str) -> Field:
    prefixes = _Prefixes(tag)
    return lambda cols: [prefixes.of(cols[name])]


def boolean(tag: bytes, name: str) -> Field:
    true = _tag(tag + b"\x01")
    return lambda cols: [pc.if_else(cols[name], true, _EMPTY)]


def levels(tag: bytes, name: str) -> Field:
    """Repeated PriceLevel from a `VARCHAR[2][]` column: every level encoded at once,
    then each row's levels concatenated by the list offsets."""
    key, price, quantity = _tag(tag), string(b"\x0a", "p"), string(b"\x12", "q")

    def field(cols: Arrays) -> list[Part]:
        rows = cols[name]
        pairs = rows.flatten()
        inner = price({"p": pc.list_element(pairs, _ZERO)})
        inner += quantity({"q": pc.list_element(pairs, _ONE)})
        encoded = _join([key, _varints(_length(inner)), *inner])
        offsets = pc.subtract(rows.offsets, rows.offsets[0])
        return [pc.binary_join(pa.ListArray.from_arrays(offsets, encoded), _EMPTY)]

    return field


def _s(tag: bytes, *names: str) -> list[Field]:
    """String fields numbered consecutively from `tag`."""
    return [string(bytes([tag[0] + 8 * i]), n) for i, n in enumerate(names)]


# Per table: the MarketEvent payload field tag, then the payload's fields in number order.
PAYLOADS: dict[Table, tuple[pa.Scalar, list[Field]]] = {
    Table.TRADE: (_tag(fastproto.TAG_TRADE), [
        *_s(b"\x0a", "price", "quantity"), varint(b"\x18", "side"),
        fixed64(b"\x21", "trade_id"), fixed64(b"\x29", "first_trade_id"),
        fixed64(b"\x31", "last_trade_id"),
    ]),
    Table.QUOTE: (_tag(fastproto.TAG_QUOTE), [
        *_s(b"\x0a", "bid_price", "bid_quantity", "ask_price", "ask_quantity"),
        fixed64(b"\x29", "update_id"),
    ]),
    Table.BOOK_SNAPSHOT: (_tag(fastproto.TAG_SNAPSHOT), [
        levels(b"\x0a", "bids"), levels(b"\x12", "asks"), fixed64(b"\x19", "update_id"),
        varint(b"\x20", "depth"),
    ]),
    Table.BOOK_DELTA: (_tag(fastproto.TAG_DELTA), [
        levels(b"\x0a", "bids"), levels(b"\x12", "asks"), fixed64(b"\x19", "prev_update_id"),
        fixed64(b"\x21", "update_id"), varint(b"\x28", "depth"),
    ]),
    Table.CANDLE: (_tag(fastproto.TAG_CANDLE), [
        string(b"\x0a", "interval"), fixed64(b"\x11", "open_time"),
        fixed64(b"\x19", "close_time"),
        *_s(b"\x22", "open", "high", "low", "close", "volume", "quote_volume"),
        varint(b"\x50", "trade_count"), boolean(b"\x58", "closed"),
        boolean(b"\x60", "from_trades"),
    ]),
    Table.FUNDING: (_tag(fastproto.TAG_FUNDING), [
        *_s(b"\x0a", "mark_price", "index_price", "estimated_settle_price", "funding_rate"),
        fixed64(b"\x29", "next_funding_time"),
    ]),
    Table.LIQUIDATION: (_tag(fastproto.TAG_LIQUIDATION), [
        varint(b"\x08", "side"),
        *_s(b"\x12", "price", "quantity", "average_price", "filled_quantity", "order_status"),
    ]),
    Table.STATUS: (_tag(fastproto.TAG_STATUS), [
        varint(b"\x08", "status"), string(b"\x12", "detail"),
    ]),
}  # fmt: skip
_HEAD = [
    string(b"\x0a", "exchange"), string(b"\x12", "symbol"),
    fixed64(b"\x19", "exchange_time"), fixed64(b"\x21", "receive_time"),
]  # fmt: skip


_EVENTS = _tag(EVENTS_TAG)


def encode_rows(table: Table, rows: pa.Table) -> pa.Array:
    """One `events` entry per row of a stored table (columns as in `columns.py`).

    Lengths are summed from the parts, so the bytes are copied once, by one join."""
    if not rows.num_rows:
        return pa.array([], pa.binary())
    cols = {name: rows.column(name).combine_chunks() for name in rows.column_names}
    tag, fields = PAYLOADS[table]
    body = [part for f in fields for part in f(cols)]
    event = [part for f in _HEAD for part in f(cols)]
    event += [tag, _varints(_length(body)), *body]
    return _join([_EVENTS, _varints(_length(event)), *event])
