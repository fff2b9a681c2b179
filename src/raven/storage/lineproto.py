"""Records <-> InfluxDB line protocol and query rows. No I/O.

Schema (also in the README): one measurement per table (`trade`, `quote`,
`book_snapshot`, `book_delta`, `candle`, `funding`, `liquidation`, `status`,
`book_checkpoint`); tags `exchange` and `symbol` (omitted when empty, as line
protocol has no empty tag values), plus `side` ("buy"/"sell") on trade and
liquidation and `interval` on candle. Never ids: tags are series keys, and
ids would give one series per event.

Fields are the rest of the model struct, under the model's own names:
prices and quantities as *string* fields holding the exchange's exact
decimal text (and, with `float_fields`, a float copy named `<name>_float`
for dashboards), ids and times as integers, flags as booleans, the Status
kind as its lower-case name, and book levels as one string
"price:quantity,price:quantity,..." per side, best first.

The point's timestamp is the record's `ts`, so (measurement, tags, ts)
identifies the record: writing it again overwrites it with itself.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from raven.storage.base import ITEM_TYPES, Item, Record, Table, table_of
from raven.types import Side, StatusKind

# Decimal text fields (the model types them as str, like free text).
DECIMALS = frozenset(
    (
        "price", "quantity", "bid_price", "bid_quantity", "ask_price", "ask_quantity",
        "open", "high", "low", "close", "volume", "quote_volume", "mark_price", "index_price",
        "estimated_settle_price", "funding_rate", "average_price", "filled_quantity",
    )
)  # fmt: skip
TAGS: dict[Table, tuple[str, ...]] = dict.fromkeys(Table, ("exchange", "symbol"))
TAGS[Table.TRADE] += ("side",)
TAGS[Table.LIQUIDATION] += ("side",)
TAGS[Table.CANDLE] += ("interval",)

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


def escape_tag(text: str) -> str:
    """A tag key or value (or a field key): commas, equals signs and spaces escaped."""
    if "\n" in text or "\r" in text or text.endswith("\\"):
        # Line protocol can't carry these in a tag; exchange and symbol names never have them.
        raise ValueError(f"tag value {text!r} can't be written as line protocol")
    return text.translate(_TAG_ESCAPES)


def escape_measurement(text: str) -> str:
    return text.replace(",", r"\,").replace(" ", r"\ ")


def quote_string(text: str) -> str:
    """A string field value: backslashes and double quotes escaped, in quotes."""
    return '"' + text.translate(_STRING_ESCAPES) + '"'


def levels_text(levels: Iterable[tuple[str, str]]) -> str:
    return ",".join(f"{p}:{q}" for p, q in levels)


def parse_levels(text: str) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    out = []
    for level in text.split(","):
        price, _, qty = level.partition(":")
        out.append((price, qty))
    return tuple(out)


Formatter = Callable[[Any], str]


def _field_formatters(name: str, hint: Any, floats: bool) -> list[tuple[str, Formatter]]:
    key = escape_tag(name)
    if name in DECIMALS:
        out: list[tuple[str, Formatter]] = [(key, quote_string)]
        if floats:
            out.append((f"{key}_float", lambda v: repr(float(v))))
        return out
    if hint is bool:
        return [(key, lambda v: "true" if v else "false")]
    if hint is int:
        return [(key, lambda v: f"{v}i")]
    if hint is str:
        return [(key, quote_string)]
    if isinstance(hint, type) and issubclass(hint, enum.IntEnum):
        return [(key, lambda v: quote_string(v.name.lower()))]
    if typing.get_origin(hint) is tuple:
        return [(key, lambda v: quote_string(levels_text(v)))]
    raise TypeError(f"no field type for {name}: {hint!r}")  # pragma: no cover


class PointSpec:
    """How one table's records become points and query rows become records."""

    def __init__(self, table: Table, floats: bool) -> None:
        self.table = table
        self.measurement = escape_measurement(table.measurement)
        self.cls = ITEM_TYPES[table]
        self.hints = typing.get_type_hints(self.cls)
        self.tags = TAGS[table]
        self.fields: list[tuple[str, list[tuple[str, Formatter]]]] = [
            (name, _field_formatters(name, self.hints[name], floats))
            for name in self.cls.__struct_fields__
            if name not in self.tags
        ]

    def line(self, ts: int, item: Item) -> str:
        parts = [self.measurement]
        for tag in self.tags:
            value = getattr(item, tag)
            if isinstance(value, enum.Enum):
                value = value.name.lower()
            if value:
                parts.append(f"{tag}={escape_tag(value)}")
        fields: list[str] = []
        for name, formatters in self.fields:
            value = getattr(item, name)
            fields.extend(f"{key}={fmt(value)}" for key, fmt in formatters)
        return ",".join(parts) + " " + ",".join(fields) + f" {ts}"

    def item(self, get: Callable[[str], Any]) -> Item:
        """A record's item from a query row; `get(column)` is None when absent."""
        args: list[Any] = []
        for name in self.cls.__struct_fields__:
            hint = self.hints[name]
            value = get(name)
            if hint is str or name in DECIMALS:
                args.append("" if value is None else str(value))
            elif hint is Side:
                args.append(Side[str(value).upper()])
            elif hint is StatusKind:
                args.append(StatusKind[str(value).upper()])
            elif hint is bool:
                args.append(bool(value))
            elif hint is int:
                args.append(int(value or 0))
            else:  # book levels
                args.append(parse_levels(value or ""))
        return self.cls(*args)


class LineEncoder:
    def __init__(self, float_fields: bool = True) -> None:
        self.specs = {t: PointSpec(t, float_fields) for t in Table}

    def lines(self, records: Iterable[Record]) -> Iterator[str]:
        specs = self.specs
        for ts, item in records:
            yield specs[table_of(item)].line(ts, item)

    def bodies(self, records: Sequence[Record], max_bytes: int) -> Iterator[bytes]:
        """The batch as request bodies of at most `max_bytes` (one point may exceed it)."""
        chunk: list[bytes] = []
        size = 0
        for line in self.lines(records):
            data = line.encode()
            if chunk and size + len(data) + 1 > max_bytes:
                yield b"\n".join(chunk)
                chunk, size = [], 0
            chunk.append(data)
            size += len(data) + 1
        if chunk:
            yield b"\n".join(chunk)
