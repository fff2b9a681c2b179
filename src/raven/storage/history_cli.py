"""The body of `raven history` (argument parsing is in raven.cli; output in export.py).

Problems a user can fix (bad times, unknown symbol, server unreachable, a
file held by a running server) end as one-line errors: ValueError for bad
input, RuntimeError for what the server or the store said.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from rich.console import Console

from raven.api.history import HistoryService
from raven.config import load_config
from raven.storage.base import StoreError
from raven.storage.embedded import DuckDBStore
from raven.storage.export import (
    TABLE_ROWS,
    Call,
    CsvSink,
    Export,
    ParquetSink,
    Responses,
    Sink,
    TableSink,
    follow,
    grpc_call,
    parse_duration,
    parse_time,
)
from raven.storage.history import HistoryReader
from raven.types import Kind
from raven.v1 import market_data_pb2 as pb


def build_request(args: argparse.Namespace, now_ns: int) -> pb.HistoricalDataRequest:
    end = parse_time(args.end) if args.end else now_ns
    start = parse_time(args.start) if args.start else end - parse_duration(args.last)
    kinds = [Kind.parse(k) for k in args.kinds]
    return pb.HistoricalDataRequest(
        exchange=args.exchange,
        symbols=[s.upper() for s in args.symbols],
        kinds=[int(k) for k in kinds],  # type: ignore[misc]
        start_time_ns=start,
        end_time_ns=end,
        candle_intervals=args.intervals,
        book_depth=args.depth,
        book_at_ns=parse_time(args.book_at) if args.book_at else 0,
    )


@contextlib.asynccontextmanager
async def open_source(args: argparse.Namespace) -> AsyncIterator[Call]:
    """GetHistoricalData on the server, or the same service over the file (--db)."""
    if args.db is None:
        async with grpc.aio.insecure_channel(args.target) as channel:
            yield grpc_call(channel)
        return
    config = load_config(args.config)
    try:
        store = DuckDBStore(Path(args.db), read_only=True)
    except StoreError as exc:
        raise RuntimeError(
            f"{exc}\n(if a Raven server has the file open, query it with --target instead)"
        ) from None
    service = HistoryService(HistoryReader(store), None, config.history)

    def call(request: pb.HistoricalDataRequest) -> Responses:
        return service.responses(service.plan(request))

    try:
        yield call
    finally:
        await store.close()


def open_sink(args: argparse.Namespace, console: Console) -> Sink:
    if args.csv:
        return CsvSink(Path(args.csv))
    if args.parquet:
        return ParquetSink(Path(args.parquet))
    return TableSink(console, args.limit or TABLE_ROWS)


async def run_history(args: argparse.Namespace) -> None:
    request = build_request(args, time.time_ns())
    to_file = bool(args.csv or args.parquet)
    limit = args.limit or (0 if to_file else TABLE_ROWS + 1)  # +1: tell the table there is more
    messages = Console(stderr=True)
    async with open_source(args) as call:
        sink = open_sink(args, Console())
        start, end = request.start_time_ns, request.end_time_ns
        with Export(sink, messages, start, end, bar=to_file) as export:
            try:
                async for batch in follow(call, request, limit):
                    export.add(batch)
            except grpc.aio.AioRpcError as exc:
                raise RuntimeError(f"server at {args.target}: {exc.details()}") from None
            except StoreError as exc:
                raise RuntimeError(str(exc)) from None
    if to_file:
        messages.print(f"wrote {export.count:,} events to {args.csv or args.parquet}")
