"""Bad records in a batch, against the real stores: the embedded DuckDB file and influxd.

A trade id of 2**63 fits no BIGINT: DuckDB refuses the whole transaction,
InfluxDB 1.x answers 400 "partial write: unable to parse" and stores the
other points. A field stored with another type before gives InfluxDB's 400
"field type conflict" for every point of that measurement in the shard.
Either way the writer must store every good record exactly once, in order,
and put exactly the bad ones in the rejected spool.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec
import pytest

from raven.config import InfluxDBConfig, WriterConfig
from raven.model import Event, Liquidation, Trade
from raven.storage.base import ReadQuery, Record, Store, Table
from raven.storage.embedded import DuckDBStore
from raven.storage.influx import InfluxStore
from raven.storage.writer import StorageRecorder, StoreWriter
from tests.helpers import wait_until
from tests.storage.conftest import influx_config
from tests.storage.events import EX, Market
from tests.storage.influxd import InfluxServer, require_influxd
from tests.storage.test_influx import ALL, of
from tests.storage.test_influx_outage import assert_all_stored_once
from tests.storage.test_writer_isolate import rejected_spool

WRITER = WriterConfig(
    batch_size=500,
    flush_interval_s=0.05,
    max_buffer_events=1500,
    failure_threshold=2,
    probe_interval_s=0.1,
    retry_delay_s=0.02,
    write_timeout_s=5.0,
    stop_timeout_s=5.0,
)


def spoil(events: list[Event], every: int) -> tuple[list[Event], list[Event]]:
    """Every `every`-th trade gets an id no store can hold; returns (events, the bad ones)."""
    out: list[Event] = []
    bad: list[Event] = []
    trades = 0
    for e in events:
        if isinstance(e, Trade):
            trades += 1
            if trades % every == 0:
                e = msgspec.structs.replace(e, trade_id=2**63)
                bad.append(e)
        out.append(e)
    return out, bad


async def write_through(
    store: Store, spool_dir: Path, events: list[Event], config: WriterConfig = WRITER
) -> StoreWriter:
    recorder = StorageRecorder([StoreWriter(store, config, spool_dir)])
    await recorder.start()
    writer = recorder.writers[0]
    for i in range(0, len(events), 100):
        for e in events[i : i + 100]:
            recorder.record(e)
        await asyncio.sleep(0)
    await wait_until(lambda: writer.pending == 0, timeout=30, what="every record resolved")
    await recorder.stop()
    return writer


def keyed(events: list[Event]) -> list[Record]:
    """The records the recorder makes of `events` (receive times are distinct here)."""
    times = [e.receive_time for e in events]
    assert times == sorted(set(times))
    return [(e.receive_time, e) for e in events]


def assert_counters(writer: StoreWriter, good: int, bad: int) -> None:
    stats = writer.stats()
    assert stats.recorded_events == good + bad
    assert stats.written_events == good
    assert stats.rejected_events == bad
    assert (stats.buffered_events, stats.spool_events) == (0, 0)


# --- the embedded store -------------------------------------------------------------


async def assert_in_duckdb(path: Path, good: list[Record]) -> None:
    store = DuckDBStore(path, read_only=True)
    try:
        for table in Table:
            assert await store.count(table) == len(of(good, table)), table
            query = ReadQuery(table, EX, ALL, 0, 2**62, 100_000)
            assert await store.read(query) == of(good, table), table
    finally:
        await store.close()


@pytest.mark.parametrize("every", [400, 15], ids=["one-bad", "several-bad"])
async def test_embedded_stores_the_good_records_and_sets_the_bad_ones_aside(
    tmp_path: Path, every: int
) -> None:
    events, bad = spoil(Market(seed=3).events(1500), every)
    assert len(bad) == 1 if every == 400 else len(bad) > 20
    store = DuckDBStore(tmp_path / "raven.duckdb")
    writer = await write_through(store, tmp_path, events)
    await store.close()
    good = [e for e in events if e not in bad]
    await assert_in_duckdb(tmp_path / "raven.duckdb", keyed(good))
    assert [item for _, item in rejected_spool(tmp_path, "embedded")] == bad
    assert_counters(writer, len(good), len(bad))


async def test_embedded_with_only_bad_records_sets_all_aside(tmp_path: Path) -> None:
    trades: list[Event] = [e for e in Market(seed=4).events(2000) if isinstance(e, Trade)]
    events, bad = spoil(trades, 1)
    store = DuckDBStore(tmp_path / "raven.duckdb")
    writer = await write_through(store, tmp_path, events)
    await store.close()
    await assert_in_duckdb(tmp_path / "raven.duckdb", [])
    assert [item for _, item in rejected_spool(tmp_path, "embedded")] == bad
    assert_counters(writer, 0, len(bad))


# --- InfluxDB 1.x ---------------------------------------------------------------------


async def assert_isolated_in_influx(
    influxd: InfluxServer, config: InfluxDBConfig, spool: Path, events: list[Event],
    bad: Sequence[Event],
) -> None:  # fmt: skip
    """Write `events` through a writer: every good one stored once, exactly the
    `bad` ones in the rejected spool, the counters exact."""
    store = InfluxStore(config)
    writer = await write_through(store, spool, events)
    await store.close()
    good = [e for e in events if e not in bad]
    await assert_all_stored_once(influxd, config.database, good)
    assert [item for _, item in rejected_spool(spool, "influxdb")] == list(bad)
    assert_counters(writer, len(good), len(bad))


async def test_influxdb_partial_writes_store_each_good_point_once(
    influxd: InfluxServer, tmp_path: Path
) -> None:
    """InfluxDB stores the good points of a batch it answers 400 to; the bisection
    writes them again, which overwrites each point with itself (same measurement,
    tags and timestamp): the count stays exact."""
    events, bad = spoil(Market(seed=6).events(1500), 12)
    config = influx_config(influxd, timeout_s=5.0)
    await assert_isolated_in_influx(influxd, config, tmp_path, events, bad)


def write_line(server: InfluxServer, database: str, line: str) -> None:
    url = f"{server.url}/write?db={database}&precision=ns"
    request = urllib.request.Request(url, data=line.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


async def test_influxdb_field_type_conflict_rejects_only_that_measurement(
    influxd: InfluxServer, tmp_path: Path
) -> None:
    events = Market(seed=7).events(1500)
    config = influx_config(influxd, timeout_s=5.0)
    influxd.query(f'CREATE DATABASE "{config.database}"')
    # Another writer stored liquidation prices as integers in the same shard first
    # (under another exchange, so that Raven's reads don't return its point).
    line = f"liquidation,exchange=other,symbol=BTCUSDT price=1i {events[0].receive_time}"
    write_line(influxd, config.database, line)
    bad = [e for e in events if isinstance(e, Liquidation)]
    assert len(bad) > 5
    await assert_isolated_in_influx(influxd, config, tmp_path, events, bad)


@pytest.fixture(scope="module")
def own_influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    """An influxd of this module's own, to stop and start (the session's is shared)."""
    server = InfluxServer(require_influxd(), tmp_path_factory.mktemp("influxd-isolate"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_influxdb_outage_during_bisection(own_influxd: InfluxServer, tmp_path: Path) -> None:
    """influxd freezes while the writer bisects the first big batch (right after its
    first bad record is set aside, with a write in flight); what is left of that
    batch, and the batches recorded during the outage, are bisected when it is back.
    The write in flight when it froze times out, and influxd may still apply it after
    it resumes: the writer writes it again, which stores nothing twice."""
    events, bad = spoil(Market(seed=8).events(4000), 60)
    first, rest = events[:2000], events[2000:]
    bad_in_first = sum(1 for e in first if e in bad)
    assert bad_in_first > 3
    config = influx_config(own_influxd, timeout_s=1.0)
    store = InfluxStore(config)
    writer_config = msgspec.structs.replace(WRITER, batch_size=2000, max_buffer_events=2500)
    recorder = StorageRecorder([StoreWriter(store, writer_config, tmp_path)])
    await recorder.start()
    writer = recorder.writers[0]
    for e in first:
        recorder.record(e)
    await wait_until(lambda: writer.rejected >= 1, timeout=30, what="bisection under way")
    own_influxd.pause()  # no await since the check: the bisection is where the check saw it
    written, rejected = writer.written, writer.rejected
    try:
        assert written > 0
        assert rejected < bad_in_first
        for e in rest:
            recorder.record(e)  # over the memory bound: the spool is used too
        await wait_until(lambda: not writer.up, timeout=30, what="store reported down")
        assert writer.pending > 0
    finally:
        own_influxd.resume()
    await wait_until(lambda: writer.pending == 0, timeout=60, what="everything resolved")
    await recorder.stop()
    await store.close()
    good = [e for e in events if e not in bad]
    await assert_all_stored_once(own_influxd, config.database, good)
    assert [item for _, item in rejected_spool(tmp_path, "influxdb")] == bad
    assert_counters(writer, len(good), len(bad))
    stats = writer.stats()
    assert stats.write_failures >= 2
    assert stats.write_retries >= 1
    assert stats.spilled_events > 0
