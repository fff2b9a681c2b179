"""Scenario 5, storage: sustained write rate of the embedded store and of
InfluxDB through Raven's writer (batching, worker thread, idempotent insert),
and the history read rate through GetHistoricalData to one client; and
what the default embedded store costs a live server (`livestore`).

Baselines from the same run: the embedded store's own `write()` of the same
records in 5,000-row batches (what the writer adds on top is the ratio), and
for history the store-to-events read without gRPC. InfluxDB runs as a local
`influxd` (Debian's 1.x package) on free loopback ports with a temp data
dir; without it that row is left out with a note.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from raven.bench import livestore
from raven.bench.base import Mode, Result, progress
from raven.bench.report import Row
from raven.config import InfluxDBConfig, WriterConfig
from raven.storage import bench as sb
from raven.storage.base import Record
from raven.storage.embedded import DuckDBStore
from raven.storage.influx import InfluxStore
from raven.storage.influxd import INFLUXD, InfluxServer

SCENARIO = "storage"


async def store_rate(n: int, root: Path) -> float:
    """Records/s of DuckDBStore.write() alone, in the writer's batch size (the baseline)."""
    records: list[Record] = list(enumerate(sb.make_events(n), start=1))
    store = DuckDBStore(root / "direct.duckdb")
    batch = WriterConfig().batch_size
    start = time.perf_counter()
    for i in range(0, n, batch):
        await store.write(records[i : i + batch])
    seconds = time.perf_counter() - start
    await store.close()
    return n / seconds


async def influx_rate(n: int, root: Path) -> float | None:
    if INFLUXD is None:
        return None
    server = InfluxServer(INFLUXD, root)
    server.start()
    try:
        config = InfluxDBConfig(url=server.url, database=f"bench_{uuid.uuid4().hex[:8]}")
        run = await sb.writer_rate(n, root, n, store=InfluxStore(config), show=False)
        return run.per_s
    finally:
        server.stop()


def scenario(mode: Mode) -> Result:
    n = int(mode.pick(100_000, 1_000_000))
    n_influx = int(mode.pick(20_000, 200_000))
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="raven-bench-") as tmp:
        root = Path(tmp)
        direct = asyncio.run(store_rate(n, root / "direct"))
        progress.step(f"DuckDBStore.write alone: {direct:,.0f} events/s")
        run = asyncio.run(sb.writer_rate(n, root, max_buffer=n, show=False))
        written = run.per_s
        progress.step(f"embedded writes through the writer: {written:,.0f} events/s")
        rows.append(Row(SCENARIO, "embedded writes through the writer", written, "events/s",
                        baseline=direct, baseline_label="DuckDBStore.write alone",
                        target=">= 200,000", note=f"{n:,} trades and quotes"))  # fmt: skip
        rows.append(Row(SCENARIO, "embedded writer CPU per event", run.cpu_us, "µs/event",
                        note="process CPU (every thread) from the first record() to the "
                        "last write"))  # fmt: skip
        influx_root = root / "influxd"
        influx_root.mkdir()
        influx = asyncio.run(influx_rate(n_influx, influx_root))
        if influx is None:
            notes.append("influxd not installed: InfluxDB write rate not measured")
            progress.step("InfluxDB: influxd not installed, skipped")
        else:
            progress.step(f"InfluxDB 1.x writes through the writer: {influx:,.0f} events/s")
            rows.append(Row(SCENARIO, "InfluxDB 1.x writes through the writer", influx,
                            "events/s", baseline=written, baseline_label="embedded writer",
                            note=f"{n_influx:,} events, local influxd"))  # fmt: skip
        h = asyncio.run(sb.history_rate(run.path, n, show=False))
        progress.step(f"GetHistoricalData to one client: {h.grpc_per_s:,.0f} events/s")
        note = f"{n:,} events, decoded by the client"
        rows.append(Row(SCENARIO, "GetHistoricalData to one client", h.grpc_per_s, "events/s",
                        baseline=h.reader_per_s, baseline_label="store -> events, no gRPC",
                        target=">= 500,000", note=note))  # fmt: skip
        rows.append(Row(SCENARIO, "GetHistoricalData CPU per event", h.grpc_cpu_us, "µs/event",
                        note="process CPU: server and client in one process"))  # fmt: skip
        rows.append(Row(SCENARIO, "history responses CPU per event", h.encoded_cpu_us,
                        "µs/event", baseline=h.messages_cpu_us,
                        baseline_label="a generated message per event (the old path)",
                        note="store -> response bytes, no gRPC"))  # fmt: skip
    rows.append(live_row(livestore.measure(mode.pick(5.0, 20.0))))
    return Result(rows, notes)


def live_row(costs: tuple[livestore.ServerCost, ...]) -> Row:
    off, on = costs
    return Row(SCENARIO, f"live server CPU with the embedded store, {livestore.RATE:,} ev/s",
               on.cpu * 100, "% of a core", baseline=off.cpu * 100,
               baseline_label="the same server and feed, storage off",
               note=f"ingested {on.ingested_per_s:,.0f} events/s; {on.writes_per_s:.1f} store "
               f"writes/s of {on.written_per_s / max(on.writes_per_s, 1e-9):,.0f} events "
               "each (the flush interval is 1 s)")  # fmt: skip
