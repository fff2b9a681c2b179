"""Flux (the 2.x query API): query text and annotated-CSV results. No I/O.

A read pivots each point's fields into one row, merges the series (group())
and sorts by time, so rows come back as whole records in ts order. Results
are annotated CSV: `#datatype` rows type each column (long, double,
boolean, string, dateTime:RFC3339), a header row names them, and each table
may start a new annotation block.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from typing import Any

from raven.storage.base import ReadQuery, Record, StoreError, Table
from raven.storage.lineproto import PointSpec

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def string(text: str) -> str:
    """A Flux string literal ("${" would start interpolation, so $ is escaped too)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def _any_of(key: str, values: Iterable[str]) -> str:
    # An empty value means "no such tag" (line protocol has no empty tag values).
    tests = [f"r.{key} == {string(v)}" if v else f"not exists r.{key}" for v in values]
    return "(" + " or ".join(tests) + ")"


def _source(bucket: str, start: int, stop: int) -> str:
    return (
        f"from(bucket: {string(bucket)})\n"
        f"  |> range(start: time(v: {start}), stop: time(v: {stop}))"
    )


def select(bucket: str, query: ReadQuery) -> str:
    where = [
        f"r._measurement == {string(query.table.measurement)}",
        f"r.exchange == {string(query.exchange)}",
        _any_of("symbol", query.symbols),
    ]
    if query.intervals and query.table is Table.CANDLE:
        where.append(_any_of("interval", query.intervals))
    return (
        f"{_source(bucket, query.start, query.end)}\n"
        f"  |> filter(fn: (r) => {' and '.join(where)})\n"
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        "  |> group()\n"
        '  |> sort(columns: ["_time"])\n'
        f"  |> limit(n: {query.limit})"
    )


def select_latest(bucket: str, table: Table, exchange: str, symbol: str, at: int) -> str:
    return (
        f"{_source(bucket, 0, at + 1)}\n"
        f"  |> filter(fn: (r) => r._measurement == {string(table.measurement)} and "
        f"r.exchange == {string(exchange)} and r.symbol == {string(symbol)})\n"
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
        "  |> group()\n"
        '  |> sort(columns: ["_time"], desc: true)\n'
        "  |> limit(n: 1)"
    )


def show_intervals(bucket: str, exchange: str, symbol: str) -> str:
    return (
        'import "influxdata/influxdb/schema"\n'
        f'schema.tagValues(bucket: {string(bucket)}, tag: "interval", start: time(v: 0), '
        f"predicate: (r) => r._measurement == {string(Table.CANDLE.measurement)} and "
        f"r.exchange == {string(exchange)} and r.symbol == {string(symbol)})"
    )


def select_last_time(bucket: str, now: int) -> str:
    return (
        f"{_source(bucket, 0, now)}\n"
        '  |> filter(fn: (r) => r._field == "receive_time")\n'
        "  |> last()\n"
        "  |> group()\n"
        '  |> max(column: "_time")'
    )


def rfc3339_ns(text: str) -> int:
    """`2021-07-01T00:00:00.123456789Z` -> ns since the epoch (any offset, 0-9 digits)."""
    head, dot, rest = text.partition(".")
    digits = ""
    if dot:
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        digits, tz = rest[:i], rest[i:]
        head += tz
    seconds = dt.datetime.fromisoformat(head) - EPOCH
    whole = (seconds.days * 86400 + seconds.seconds) * 1_000_000_000
    return whole + int((digits + "000000000")[:9]) if digits else whole


def _convert(datatype: str, text: str) -> Any:
    if datatype == "string":
        return text
    if text == "":
        return None
    if datatype in ("long", "unsignedLong"):
        return int(text)
    if datatype == "double":
        return float(text)
    if datatype == "boolean":
        return text == "true"
    if datatype.startswith("dateTime"):
        return rfc3339_ns(text)
    return text


def rows(body: str) -> Iterator[dict[str, Any]]:
    """Typed rows of an annotated-CSV response; StoreError for an error table."""
    datatypes: list[str] = []
    defaults: list[str] = []
    header: list[str] | None = None
    for row in csv.reader(io.StringIO(body)):
        if not row or row == [""]:
            header = None  # a blank line ends a table
            continue
        first = row[0]
        if first == "#datatype":
            datatypes, header = row, None
        elif first == "#default":
            defaults = row
        elif first.startswith("#"):
            continue
        elif header is None:
            header = row
            if "error" in header and "reference" in header:
                datatypes = ["string"] * len(header)
        else:
            if header[1:3] == ["error", "reference"]:
                raise StoreError(f"InfluxDB query failed: {row[1]}", retryable=False)
            out = {}
            for i, name in enumerate(header):
                if i == 0 or not name:
                    continue
                text = row[i] if i < len(row) else ""
                if text == "" and i < len(defaults) and defaults[i]:
                    text = defaults[i]
                out[name] = _convert(datatypes[i] if i < len(datatypes) else "string", text)
            yield out


def records(body: str, spec: PointSpec) -> list[Record]:
    return [(int(row["_time"]), spec.item(row.get)) for row in rows(body)]
