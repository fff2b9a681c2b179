"""`raven history`: query history and print it as a table or write CSV / Parquet.

Two ways to read, same request, same results:

- `--target host:port` (the default, localhost:50051): GetHistoricalData on
  a running server, which reads whatever store it uses (embedded or
  InfluxDB, local or remote). This is the usual way.
- `--db FILE`: the embedded DuckDB file directly, without a server (offline
  use, copies, backups). DuckDB lets one process write a file at a time, so
  use this when no server has the file open.

Results arrive in batches and are followed across calls with the cursor, so
exports of any size stream to the file with bounded memory; a progress bar
shows how far through the time range the export is.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TextIO

import grpc
import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table as RichTable

from raven import codec
from raven.model import BookDelta, BookSnapshot, Event
from raven.storage.lineproto import levels_text
from raven.types import S_NS
from raven.v1 import market_data_pb2 as pb
from raven.v1 import market_data_pb2_grpc as pb_grpc

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
TABLE_ROWS = 1000  # a terminal table shows at most this many rows unless --limit says otherwise

# (column, Arrow type); each event fills the columns of its own fields.
COLUMNS: list[tuple[str, pa.DataType]] = [
    ("time", pa.string()), ("kind", pa.string()), ("exchange", pa.string()),
    ("symbol", pa.string()), ("exchange_time_ns", pa.int64()), ("receive_time_ns", pa.int64()),
    ("price", pa.string()), ("quantity", pa.string()), ("side", pa.string()),
    ("trade_id", pa.int64()), ("first_trade_id", pa.int64()), ("last_trade_id", pa.int64()),
    ("bid_price", pa.string()), ("bid_quantity", pa.string()), ("ask_price", pa.string()),
    ("ask_quantity", pa.string()), ("update_id", pa.int64()), ("prev_update_id", pa.int64()),
    ("bids", pa.string()), ("asks", pa.string()), ("depth", pa.int64()),
    ("interval", pa.string()), ("open_time_ns", pa.int64()), ("close_time_ns", pa.int64()),
    ("open", pa.string()), ("high", pa.string()), ("low", pa.string()), ("close", pa.string()),
    ("volume", pa.string()), ("quote_volume", pa.string()), ("trade_count", pa.int64()),
    ("closed", pa.bool_()), ("from_trades", pa.bool_()), ("mark_price", pa.string()),
    ("index_price", pa.string()), ("estimated_settle_price", pa.string()),
    ("funding_rate", pa.string()), ("next_funding_time_ns", pa.int64()),
    ("average_price", pa.string()), ("filled_quantity", pa.string()),
    ("order_status", pa.string()), ("status", pa.string()), ("detail", pa.string()),
]  # fmt: skip
NAMES = [name for name, _ in COLUMNS]
SCHEMA = pa.schema(COLUMNS)
_RENAMED = {
    "exchange_time": "exchange_time_ns", "receive_time": "receive_time_ns",
    "open_time": "open_time_ns", "close_time": "close_time_ns",
    "next_funding_time": "next_funding_time_ns",
}  # fmt: skip


# --- times ------------------------------------------------------------------------


def parse_time(text: str) -> int:
    """ISO 8601 (UTC unless it says otherwise) or integer ns since the epoch."""
    text = text.strip()
    if re.fullmatch(r"[0-9]{11,}", text):
        return int(text)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"bad time {text!r}: use ISO 8601 (2024-05-01T12:00:00, UTC unless an offset "
            "is given) or nanoseconds since the epoch"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp()) * S_NS + when.microsecond * 1000


def parse_duration(text: str) -> int:
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"bad duration {text!r}: a number and a unit s, m, h, d or w (e.g. 15m)")
    return int(float(match.group(1)) * _UNITS[match.group(2)] * S_NS)


def iso(ns: int) -> str:
    seconds, frac = divmod(ns, S_NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


# --- rows --------------------------------------------------------------------------


def kind_name(event: Event) -> str:
    if isinstance(event, BookSnapshot):
        return "book_snapshot"
    if isinstance(event, BookDelta):
        return "book_delta"
    return event.kind.name.lower()


def export_row(event: Event) -> dict[str, Any]:
    """The columns this event fills (the others are empty)."""
    values: dict[str, Any] = {"time": iso(event.receive_time), "kind": kind_name(event)}
    for name, value in msgspec.structs.asdict(event).items():
        if name == "first_update_id":
            continue  # not part of the API's schema (always 0 over gRPC)
        if name in ("bids", "asks"):
            value = levels_text(value)
        elif hasattr(value, "name"):  # Side, StatusKind
            value = value.name.lower()
        values[_RENAMED.get(name, name)] = value
    return values


def details(event: Event) -> str:
    skip = {"time", "kind", "exchange", "symbol", "exchange_time_ns", "receive_time_ns"}
    return " ".join(f"{k}={v}" for k, v in export_row(event).items() if k not in skip)


# --- sinks --------------------------------------------------------------------------


class Sink(Protocol):
    def write(self, events: Sequence[Event]) -> None: ...
    def close(self) -> None: ...


class CsvSink:
    def __init__(self, path: Path) -> None:
        self._file: TextIO = path.open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, NAMES)
        self._writer.writeheader()

    def write(self, events: Sequence[Event]) -> None:
        self._writer.writerows(export_row(e) for e in events)

    def close(self) -> None:
        self._file.close()


class ParquetSink:
    def __init__(self, path: Path) -> None:
        self._writer = pq.ParquetWriter(str(path), SCHEMA)

    def write(self, events: Sequence[Event]) -> None:
        if events:
            self._writer.write_table(pa.Table.from_pylist([export_row(e) for e in events], SCHEMA))

    def close(self) -> None:
        self._writer.close()


class TableSink:
    def __init__(self, console: Console, max_rows: int) -> None:
        self.console = console
        self.max_rows = max_rows
        self.shown = 0
        self.more = False
        self.table = RichTable()
        self.table.add_column("time (received, UTC)", no_wrap=True)
        self.table.add_column("kind", no_wrap=True)
        self.table.add_column("symbol", no_wrap=True)
        self.table.add_column("details")

    def write(self, events: Sequence[Event]) -> None:
        for e in events:
            if self.shown == self.max_rows:
                self.more = True
                return
            self.table.add_row(iso(e.receive_time), kind_name(e), e.symbol, details(e))
            self.shown += 1

    def close(self) -> None:
        self.console.print(self.table)
        if self.more:
            self.console.print(f"(first {self.max_rows} rows; use --limit, --csv or --parquet)")


# --- reading ---------------------------------------------------------------------------

Responses = AsyncGenerator[pb.HistoricalDataResponse, None]
Call = Callable[[pb.HistoricalDataRequest], Responses]


def grpc_call(channel: grpc.aio.Channel) -> Call:
    stub: pb_grpc.MarketDataServiceAsyncStub = pb_grpc.MarketDataServiceStub(channel)

    async def call(request: pb.HistoricalDataRequest) -> Responses:
        async for response in stub.GetHistoricalData(request):
            yield response

    return call


async def follow(
    call: Call, request: pb.HistoricalDataRequest, limit: int
) -> AsyncIterator[list[Event]]:
    """Every batch of the request, following cursors across calls, up to `limit` (0: all)."""
    sent = 0
    while True:
        cursor = ""
        async with contextlib.aclosing(call(request)) as responses:  # ends the call early
            async for response in responses:
                events = [e for e in map(codec.from_proto, response.events) if e is not None]
                if limit:
                    events = events[: limit - sent]
                sent += len(events)
                yield events
                cursor = response.next_cursor
                if limit and sent >= limit:
                    return
        if not cursor:
            return
        request.cursor = cursor


class Export:
    """Writes batches to a sink, with a progress bar over the time range for files."""

    def __init__(self, sink: Sink, console: Console, start: int, end: int, bar: bool) -> None:
        self.sink = sink
        self.count = 0
        self._start, self._end = start, end
        self._progress: Progress | None = None
        if bar:
            self._progress = Progress(
                TextColumn("exporting"), BarColumn(), TextColumn("{task.fields[count]:,} events"),
                TimeRemainingColumn(), console=console, transient=True,
            )  # fmt: skip
            self._task = self._progress.add_task("export", total=max(1, end - start), count=0)

    def __enter__(self) -> Export:
        if self._progress is not None:
            self._progress.start()
        return self

    def add(self, events: Iterable[Event]) -> None:
        batch = list(events)
        self.sink.write(batch)
        self.count += len(batch)
        if self._progress is not None and batch:
            done = min(self._end, batch[-1].receive_time) - self._start
            self._progress.update(self._task, completed=done, count=self.count)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
        self.sink.close()
