"""InfluxQL (the 1.x query API): query text and JSON results. No I/O.

Times in queries are integer nanoseconds (`time >= 1625097600000000000`),
and results are requested with `epoch=ns`, so no time text is parsed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from raven.storage.base import ReadQuery, Record, StoreError, Table
from raven.storage.lineproto import PointSpec


def ident(name: str) -> str:
    """A quoted identifier: "name"."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(text: str) -> str:
    """A quoted string literal: 'text'."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _any_of(key: str, values: Iterable[str]) -> str:
    return "(" + " OR ".join(f"{ident(key)} = {literal(v)}" for v in values) + ")"


def select(query: ReadQuery) -> str:
    where = [f"{ident('exchange')} = {literal(query.exchange)}", _any_of("symbol", query.symbols)]
    if query.intervals and query.table is Table.CANDLE:
        where.append(_any_of("interval", query.intervals))
    where += [f"time >= {query.start}", f"time < {query.end}"]
    return (
        f"SELECT * FROM {ident(query.table.measurement)} WHERE {' AND '.join(where)} "
        f"ORDER BY time ASC LIMIT {query.limit}"
    )


def select_latest(table: Table, exchange: str, symbol: str, at: int) -> str:
    return (
        f"SELECT * FROM {ident(table.measurement)} WHERE {ident('exchange')} = {literal(exchange)} "
        f"AND {ident('symbol')} = {literal(symbol)} AND time <= {at} ORDER BY time DESC LIMIT 1"
    )


def show_intervals(exchange: str, symbol: str) -> str:
    return (
        f"SHOW TAG VALUES FROM {ident(Table.CANDLE.measurement)} WITH KEY = {ident('interval')} "
        f"WHERE {ident('exchange')} = {literal(exchange)} AND {ident('symbol')} = {literal(symbol)}"
    )


def select_last_times() -> str:
    tables = ", ".join(ident(t.measurement) for t in Table)
    return f"SELECT last({ident('receive_time')}) FROM {tables}"


class Series(msgspec.Struct):
    name: str = ""
    columns: list[str] = []
    values: list[list[Any]] = []


class Result(msgspec.Struct):
    series: list[Series] = []
    error: str = ""


class Response(msgspec.Struct):
    results: list[Result] = []
    error: str = ""


_decoder = msgspec.json.Decoder(Response)


def parse(body: bytes) -> list[Series]:
    """The series of a one-statement response; StoreError for an error result."""
    try:
        response = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise StoreError(f"unreadable InfluxDB response: {exc}", retryable=False) from None
    errors = [response.error] + [r.error for r in response.results]
    problem = next((e for e in errors if e), "")
    if problem:
        raise StoreError(f"InfluxDB query failed: {problem}", retryable=False)
    return [s for r in response.results for s in r.series]


def records(series: list[Series], spec: PointSpec) -> list[Record]:
    out: list[Record] = []
    for s in series:
        index = {name: i for i, name in enumerate(s.columns)}
        t = index["time"]
        for row in s.values:
            values = {name: row[i] for name, i in index.items()}
            out.append((int(row[t]), spec.item(values.get)))
    out.sort(key=lambda r: r[0])
    return out
