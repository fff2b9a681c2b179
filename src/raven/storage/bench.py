"""Storage measurements behind the README's numbers: `python -m raven.storage.bench`.

1. Embedded store candidates, on the same N trade rows: DuckDB `executemany`,
   DuckDB Arrow batches (plain, and with Raven's idempotent anti-join insert),
   SQLite in WAL mode with `executemany` batches and one index; then a
   time-range scan of 80 % of the rows (DuckDB as Arrow and as tuples,
   SQLite as tuples) and the file sizes.
2. Raven's own path: events through StorageRecorder -> StoreWriter ->
   DuckDBStore (batching, worker thread, anti-join), until all are on disk.
3. History reads: HistoryReader batches, and GetHistoricalData over a real
   gRPC server on loopback, decoded by the client; CPU per event of building
   the responses with a generated message per event (the old path) and
   encoded from rows (what the server sends), side by side.

Numbers depend on the machine; run it where you deploy.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import duckdb
import grpc
import msgspec

from raven import codec
from raven.api.history import HistoryService, serialize_response
from raven.api.service import SERVICE
from raven.config import HistoryConfig, WriterConfig
from raven.model import Event, Quote, Trade
from raven.storage.base import Record, Store, Table
from raven.storage.columns import SPECS
from raven.storage.embedded import DuckDBStore
from raven.storage.encode import response as encoded_response
from raven.storage.history import HistoryPlan, HistoryReader
from raven.storage.writer import StorageRecorder, StoreWriter
from raven.types import Kind, Side
from raven.v1 import market_data_pb2 as pb
from raven.v1 import market_data_pb2_grpc as pb_grpc

EX = "binance_futures"
T0 = 1_700_000_000_000_000_000
BATCH = 5000


def make_events(n: int, quotes: bool = True, seed: int = 1) -> list[Event]:
    rng = random.Random(seed)
    mid = 50_000.0
    out: list[Event] = []
    for i in range(n):
        mid += rng.choice((-0.1, 0.0, 0.1))
        rt = T0 + i * 100_000 + rng.randint(0, 99_999)
        et = rt - rt % 1_000_000
        sym = "BTCUSDT" if i % 2 else "ETHUSDT"
        if quotes and i % 2:
            out.append(Quote(EX, sym, f"{mid - 0.05:.2f}", f"{rng.random():.3f}",
                             f"{mid + 0.05:.2f}", f"{rng.random():.3f}", i, et, rt))  # fmt: skip
        else:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            out.append(Trade(EX, sym, f"{mid:.2f}", f"{rng.random():.3f}", side, i, et, rt, i, i))
    return out


def rate(label: str, rows: int, seconds: float, extra: str = "", show: bool = True) -> float:
    per_s = rows / seconds
    if show:
        print(f"  {label:<52} {per_s:>12,.0f} rows/s  ({rows:,} in {seconds:.2f} s){extra}")
    return per_s


def quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    con.execute("SET enable_progress_bar = false")
    return con


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def duckdb_inserts(trades: list[Record], rows: list[tuple[Any, ...]], few: int, root: Path) -> None:
    spec = SPECS[Table.TRADE]
    n = len(trades)
    con = quiet(duckdb.connect(str(root / "executemany.duckdb")))
    con.execute(spec.ddl())
    marks = ", ".join("?" * len(rows[0]))
    seconds, _ = timed(lambda: con.executemany(f"INSERT INTO trade VALUES ({marks})", rows[:few]))
    rate("DuckDB executemany", few, seconds)
    con.close()

    path = root / "plain.duckdb"
    con = quiet(duckdb.connect(str(path)))
    con.execute(spec.ddl())

    def plain() -> None:
        for i in range(0, n, BATCH):
            con.register("batch", spec.to_arrow(trades[i : i + BATCH]))
            con.execute("INSERT INTO trade SELECT * FROM batch")
        con.close()

    seconds, _ = timed(plain)
    rate("DuckDB Arrow batches of 5,000 (plain INSERT)", n, seconds, size(path))

    path = root / "raven.duckdb"
    store = DuckDBStore(path)

    async def idempotent() -> None:
        for i in range(0, n, BATCH):
            await store.write(trades[i : i + BATCH])
        await store.close()

    seconds, _ = timed(lambda: asyncio.run(idempotent()))
    rate("DuckDB Arrow batches of 5,000 (Raven: idempotent)", n, seconds, size(path))


def sqlite_inserts(rows: list[tuple[Any, ...]], root: Path) -> sqlite3.Connection:
    spec = SPECS[Table.TRADE]
    path = root / "wal.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    types = [f"{c.name} {'TEXT' if c.sql == 'VARCHAR' else 'INTEGER'}" for c in spec.columns]
    db.execute(f"CREATE TABLE trade ({', '.join(['ts INTEGER', *types])})")
    db.execute("CREATE INDEX trade_ts ON trade (ts)")
    marks = ", ".join("?" * len(rows[0]))

    def insert() -> None:
        for i in range(0, len(rows), BATCH):
            with db:
                db.executemany(f"INSERT INTO trade VALUES ({marks})", rows[i : i + BATCH])

    seconds, _ = timed(insert)
    rate("SQLite WAL, executemany batches of 5,000, 1 index", len(rows), seconds, size(path))
    return db


def scans(n: int, db: sqlite3.Connection, root: Path) -> None:
    spec = SPECS[Table.TRADE]
    lo, hi = n // 10, n // 10 + int(n * 0.8)
    q = f"SELECT * FROM trade WHERE ts >= {lo} AND ts < {hi} ORDER BY ts"
    con = quiet(duckdb.connect(str(root / "plain.duckdb"), read_only=True))
    seconds, table = timed(lambda: con.sql(q).to_arrow_table())
    rate("scan 80 %: DuckDB as Arrow", table.num_rows, seconds)
    seconds, got = timed(lambda: con.sql(q).fetchall())
    rate("scan 80 %: DuckDB as Python tuples", len(got), seconds)
    seconds, got = timed(lambda: spec.from_arrow(con.sql(q).to_arrow_table()))
    rate("scan 80 %: DuckDB as Raven events (Arrow -> structs)", len(got), seconds)
    con.close()
    seconds, got = timed(lambda: db.execute(q).fetchall())
    rate("scan 80 %: SQLite as Python tuples", len(got), seconds)
    db.close()


def compare_stores(n: int, executemany_rows: int, root: Path) -> None:
    print(f"1. embedded store candidates ({n:,} trades, 11 columns)")
    trades: list[Record] = list(enumerate(make_events(n, quotes=False), start=1))
    spec = SPECS[Table.TRADE]
    rows = [(ts, *(c.get(e) for c in spec.columns)) for ts, e in trades]
    duckdb_inserts(trades, rows, executemany_rows, root)
    scans(n, sqlite_inserts(rows, root), root)


def size(path: Path) -> str:
    return f"  file {path.stat().st_size / 1e6:.1f} MB"


class WriteRun(msgspec.Struct, frozen=True):
    path: Path  # the store file written
    per_s: float  # events/s, wall clock
    cpu_us: float  # process CPU (every thread) per event


async def writer_rate(
    n: int, root: Path, max_buffer: int, store: Store | None = None, show: bool = True
) -> WriteRun:
    """Events through StorageRecorder -> StoreWriter -> store until all are written."""
    path = root / f"writer-{max_buffer}.duckdb"
    store = store or DuckDBStore(path)
    config = WriterConfig(spool_dir=str(root), max_buffer_events=max_buffer, stop_timeout_s=600)
    writer = StoreWriter(store, config, root)
    recorder = StorageRecorder([writer])
    await recorder.start()
    events = make_events(n)
    loop_time = 0.0
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, n, 1000):
        t = time.perf_counter()
        for e in events[i : i + 1000]:
            recorder.record(e)
        loop_time += time.perf_counter() - t
        await asyncio.sleep(0)  # let the flusher run, as between feed frames
    await recorder.stop()  # returns when the writer has written everything
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    await store.close()
    label = f"recorded -> {store.name}, buffer {max_buffer:,}"
    extra = f"  spooled {writer.spilled:,}, record() {loop_time / n * 1e6:.2f} µs"
    extra += f", CPU {cpu / n * 1e6:.2f} µs/event"
    return WriteRun(path, rate(label, n, seconds, extra, show), cpu / n * 1e6)


class HistoryRun(msgspec.Struct, frozen=True):
    reader_per_s: float  # HistoryReader.batches: store -> events, no gRPC
    grpc_per_s: float  # GetHistoricalData over loopback gRPC, client in this process
    grpc_cpu_us: float  # process CPU per event of that call (server and client)
    messages_cpu_us: float  # responses as generated messages, one per event (the old path)
    encoded_cpu_us: float  # responses as bytes encoded from rows (what the server sends)


async def cpu_per_event(events: AsyncIterator[int]) -> float:
    """Process CPU µs per event while draining `events` (each item: an event count)."""
    cpu, count = time.process_time(), 0
    async for k in events:
        count += k
    return (time.process_time() - cpu) / max(count, 1) * 1e6


async def _messages(service: HistoryService, plan: HistoryPlan) -> AsyncIterator[int]:
    """GetHistoricalData's work before history was encoded from rows: events read as
    model structs, a generated message per event, the response serialized."""
    async for events, cursor in service.reader.batches(plan, service.config.batch_size):
        protos = [codec.to_proto(e) for e in events]
        pb.HistoricalDataResponse(events=protos, next_cursor=cursor).SerializeToString()
        yield len(events)


async def _encoded(service: HistoryService, plan: HistoryPlan) -> AsyncIterator[int]:
    """The same responses as GetHistoricalData sends them now: bytes from rows."""
    async for entries, cursor in service.reader.encoded_batches(plan, service.config.batch_size):
        encoded_response(entries, cursor)
        yield len(entries)


async def history_rate(path: Path, n: int, show: bool = True) -> HistoryRun:
    """History read rates, and CPU per event of the old and new response building."""
    if show:
        print(f"3. history reads ({n:,} events, trades and quotes merged in time order)")
    store = DuckDBStore(path, read_only=True)
    reader = HistoryReader(store)
    end = T0 + n * 100_000 + 1
    plan = HistoryPlan(EX, ("BTCUSDT", "ETHUSDT"), (Kind.TRADE, Kind.QUOTE), T0, end, 10**9, 0)
    start = time.perf_counter()
    count = sum([len(batch) async for batch, _ in reader.batches(plan, 1000)])
    read_rate = rate("HistoryReader (store -> events, merged)", count,
                     time.perf_counter() - start, show=show)  # fmt: skip

    service = HistoryService(reader, None, HistoryConfig(max_events=10**9))
    messages_cpu = await cpu_per_event(_messages(service, plan))
    encoded_cpu = await cpu_per_event(_encoded(service, plan))
    if show:
        print(f"  CPU per event: {messages_cpu:.2f} µs with a message per event, "
              f"{encoded_cpu:.2f} µs encoded from rows")  # fmt: skip
    grpc_rate, grpc_cpu = await _grpc_rate(service, end, show)
    await store.close()
    return HistoryRun(read_rate, grpc_rate, grpc_cpu, messages_cpu, encoded_cpu)


async def _grpc_rate(service: HistoryService, end: int, show: bool) -> tuple[float, float]:
    """(events/s, process CPU µs per event) of GetHistoricalData over loopback gRPC."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
        "GetHistoricalData": grpc.unary_stream_rpc_method_handler(
            service.get_historical_data,
            request_deserializer=pb.HistoricalDataRequest.FromString,
            response_serializer=serialize_response,
        )}),))  # fmt: skip
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    request = pb.HistoricalDataRequest(
        exchange=EX, symbols=["BTCUSDT", "ETHUSDT"], kinds=[1, 2],  # type: ignore[list-item]
        start_time_ns=T0, end_time_ns=end,
    )  # fmt: skip
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub: pb_grpc.MarketDataServiceAsyncStub = pb_grpc.MarketDataServiceStub(channel)
        start, cpu = time.perf_counter(), time.process_time()
        count = 0
        async for response in stub.GetHistoricalData(request):
            count += len(response.events)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        grpc_rate = rate("GetHistoricalData over loopback gRPC", count, seconds,
                         f"  CPU {cpu / count * 1e6:.2f} µs/event", show=show)  # fmt: skip
    await server.stop(None)
    return grpc_rate, cpu / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="trade rows for part 1")
    parser.add_argument("--executemany-rows", type=int, default=5_000,
                        help="rows for DuckDB executemany (slow)")  # fmt: skip
    parser.add_argument("--events", type=int, default=500_000, help="events for parts 2 and 3")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="raven-bench-") as tmp:
        root = Path(tmp)
        compare_stores(args.rows, args.executemany_rows, root)
        print(f"2. Raven's writer into the embedded store ({args.events:,} events, as fast as "
              "record() takes them: trades and quotes)")  # fmt: skip
        path = asyncio.run(writer_rate(args.events, root, max_buffer=args.events)).path
        asyncio.run(writer_rate(args.events, root, max_buffer=WriterConfig().max_buffer_events))
        asyncio.run(history_rate(path, args.events))


if __name__ == "__main__":
    main()
