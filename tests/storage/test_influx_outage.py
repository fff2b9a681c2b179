"""InfluxDB goes down while events flow: nothing is lost, nothing is written twice.

A dedicated influxd (stopping the session's would disturb other tests) is
stopped mid-stream; ingestion goes on past the writer's memory bound, so the
spool is used; then influxd comes back. Every event must then be in InfluxDB
exactly once, also when the writer itself was stopped and replaced by a new
one (as after a Raven restart) during the outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from raven.config import WriterConfig
from raven.model import Event
from raven.storage.base import Record, Table
from raven.storage.influx import InfluxStore
from raven.storage.writer import StorageRecorder, StoreWriter
from tests.helpers import wait_until
from tests.storage.conftest import influx_config
from tests.storage.events import Market
from tests.storage.influxd import InfluxServer, require_influxd
from tests.storage.test_influx import count, of, read_all

WRITER = WriterConfig(
    batch_size=50,
    flush_interval_s=0.05,
    max_buffer_events=200,
    failure_threshold=2,
    probe_interval_s=0.1,
    retry_delay_s=0.02,
    write_timeout_s=3.0,
    stop_timeout_s=2.0,
)


@pytest.fixture(scope="module")
def outage_influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    server = InfluxServer(require_influxd(), tmp_path_factory.mktemp("influxd-outage"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def feed(recorder: StorageRecorder, events: list[Event]) -> None:
    """Ingest in small bursts, yielding to the loop as a live feed would."""
    for i in range(0, len(events), 25):
        for e in events[i : i + 25]:
            recorder.record(e)
        await asyncio.sleep(0)


async def start_recorder(server: InfluxServer, database: str, spool: Path) -> StorageRecorder:
    store = InfluxStore(influx_config(server, database=database, timeout_s=1.0))
    recorder = StorageRecorder([StoreWriter(store, WRITER, spool)])
    await recorder.start()
    return recorder


async def assert_all_stored_once(server: InfluxServer, database: str, events: list[Event]) -> None:
    expected: list[Record] = [(e.receive_time, e) for e in events]
    store = InfluxStore(influx_config(server, database=database))
    try:
        for table in Table:
            assert await read_all(store, table) == of(expected, table), table
            assert count(server, database, table) == len(of(expected, table)), table
    finally:
        await store.close()


async def test_outage_with_spool_then_recovery(
    outage_influxd: InfluxServer, tmp_path: Path
) -> None:
    database = "outage_a"
    market = Market(seed=5)
    recorder = await start_recorder(outage_influxd, database, tmp_path)
    writer = recorder.writers[0]
    before = market.events(300)
    await feed(recorder, before)
    await wait_until(lambda: writer.written == 300, what="events written before the outage")

    await asyncio.to_thread(outage_influxd.stop)
    during = market.events(1500)  # far past max_buffer_events
    await feed(recorder, during)
    await wait_until(lambda: not writer.up, what="store reported down")
    assert writer.stats().spool_events > 0
    assert writer.stats().buffered_events <= WRITER.max_buffer_events
    assert not writer.health().up

    await asyncio.to_thread(outage_influxd.start)
    after = market.events(200)
    await feed(recorder, after)
    await wait_until(lambda: writer.pending == 0, timeout=30, what="backlog written")
    stats = writer.stats()
    assert stats.up
    assert stats.spool_events == 0
    assert stats.write_failures >= 2
    assert stats.written_events == len(before) + len(during) + len(after)
    await recorder.stop()
    await recorder.writers[0].store.close()
    await assert_all_stored_once(outage_influxd, database, before + during + after)


async def test_writer_restarted_during_the_outage_writes_the_spool(
    outage_influxd: InfluxServer, tmp_path: Path
) -> None:
    database = "outage_b"
    market = Market(seed=9)
    first = await start_recorder(outage_influxd, database, tmp_path)
    before = market.events(200)
    await feed(first, before)
    await wait_until(lambda: first.writers[0].written == 200, what="written before the outage")

    await asyncio.to_thread(outage_influxd.stop)
    during = market.events(800)
    await feed(first, during)
    await first.stop()  # Raven stops mid-outage: what is left goes to the spool
    await first.writers[0].store.close()
    assert first.writers[0].stats().spool_events == len(during)

    second = await start_recorder(outage_influxd, database, tmp_path)  # a new process
    assert second.writers[0].stats().spool_events == len(during)
    later = market.events(300)  # still down: buffered, then spooled after the old spool
    await feed(second, later)
    await asyncio.to_thread(outage_influxd.start)
    writer = second.writers[0]
    await wait_until(lambda: writer.pending == 0, timeout=30, what="spool written")
    await second.stop()
    await writer.store.close()
    await assert_all_stored_once(outage_influxd, database, before + during + later)
