"""The writer against the in-memory store: batching, outage, spool, breaker, restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from raven.breaker import BreakerState
from raven.config import WriterConfig
from raven.storage.base import Record, Table
from raven.storage.memory import MemoryStore
from raven.storage.spool import Spool
from raven.storage.writer import StorageRecorder, StoreWriter
from tests.helpers import wait_until
from tests.storage.events import Market

FAST = {
    "batch_size": 10,
    "flush_interval_s": 60.0,  # tests that want time-based flushes lower it
    "max_buffer_events": 30,
    "failure_threshold": 2,
    "probe_interval_s": 0.05,
    "retry_delay_s": 0.01,
    "write_timeout_s": 5.0,
    "stop_timeout_s": 5.0,
}


def config(**overrides: object) -> WriterConfig:
    return WriterConfig(**{**FAST, **overrides})  # type: ignore[arg-type]


def stored(store: MemoryStore) -> list[Record]:
    out = [r for t in Table for r in store.all(t)]
    return sorted(out, key=lambda r: r[0])


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    s = MemoryStore()
    yield s
    s.release()


async def started(store: MemoryStore, spool_dir: Path, **overrides: object) -> StorageRecorder:
    recorder = StorageRecorder([StoreWriter(store, config(**overrides), spool_dir)])
    await recorder.start()
    return recorder


async def test_full_batches_go_out_at_once_and_the_rest_at_stop(
    store: MemoryStore, tmp_path: Path
) -> None:
    recorder = await started(store, tmp_path)
    events = Market().events(25)
    for e in events:
        recorder.record(e)
    await wait_until(lambda: store.count() == 20, what="two full batches")
    assert store.writes == 2
    await recorder.stop()  # the partial batch is written at stop
    assert [item for _, item in stored(store)] == events
    assert store.writes == 3


async def test_a_partial_batch_is_written_after_the_flush_interval(
    store: MemoryStore, tmp_path: Path
) -> None:
    recorder = await started(store, tmp_path, flush_interval_s=0.05)
    for e in Market().events(3):
        recorder.record(e)
    await wait_until(lambda: store.count() == 3, what="time-based flush")
    assert recorder.writers[0].stats().buffered_events == 0
    await recorder.stop()


async def test_an_idle_writer_flushes_a_partial_batch_that_arrives_later(
    store: MemoryStore, tmp_path: Path
) -> None:
    recorder = await started(store, tmp_path, flush_interval_s=0.05)
    events = Market().events(25)
    for e in events[:20]:
        recorder.record(e)
    await wait_until(lambda: store.count() == 20, what="two full batches")
    await wait_until(lambda: store.held == 0 and not recorder.writers[0].pending, what="idle")
    for e in events[20:]:
        recorder.record(e)  # fewer than batch_size, to a flusher that waits for work
    await wait_until(lambda: store.count() == 25, what="the partial batch")
    await recorder.stop()


async def test_records_that_arrive_during_a_write_wait_for_their_own_flush_interval(
    store: MemoryStore, tmp_path: Path
) -> None:
    """A slow feed must not make a write per write: after a timed flush, what came
    in meanwhile waits a flush interval from the end of that write."""
    frozen: list[float] = []  # the writer's clock: the real one until the test freezes it
    writer = StoreWriter(
        store, config(flush_interval_s=0.05), tmp_path,
        clock=lambda: frozen[0] if frozen else time.monotonic(),
    )  # fmt: skip
    recorder = StorageRecorder([writer])
    await recorder.start()
    events = Market().events(3)
    store.hold()
    recorder.record(events[0])
    await wait_until(lambda: store.held == 1, what="the timed flush, held by the store")
    # From here the writer's time stands still, so a flush interval that starts now
    # never runs out, and one that started with events[0] has long run out.
    frozen.append(time.monotonic())
    recorder.record(events[1])  # arrive while that write is in flight
    recorder.record(events[2])
    store.release()
    await wait_until(lambda: store.count() == 1, what="the first write")
    for _ in range(20):  # let the flusher run its next steps
        await asyncio.sleep(0)
    assert store.calls == 1, "the records that arrived during the write went out at once"
    assert writer.pending == 2
    await recorder.stop()  # and at stop they are written
    assert [item for _, item in stored(store)] == events


async def test_storage_times_are_unique_and_increasing(store: MemoryStore, tmp_path: Path) -> None:
    recorder = await started(store, tmp_path)
    event = Market().events(1)[0]
    for _ in range(5):
        recorder.record(event)  # the same receive time five times
    await recorder.stop()
    assert [ts for ts, _ in stored(store)] == [event.receive_time + i for i in range(5)]


async def test_outage_buffers_then_spools_then_writes_everything_once_in_order(
    store: MemoryStore, tmp_path: Path
) -> None:
    recorder = await started(store, tmp_path)
    writer = recorder.writers[0]
    store.down = True
    events = Market().events(200)
    for e in events:
        recorder.record(e)
    stats = writer.stats()
    assert stats.buffered_events <= 30  # the memory bound
    assert stats.spool_events + stats.buffered_events == 200
    await wait_until(lambda: writer.breaker.state is BreakerState.OPEN, what="breaker open")
    assert not writer.health().up
    assert "down" in writer.health().last_error
    await wait_until(lambda: writer.spool.bytes > 0, what="spool on disk")
    store.down = False
    await wait_until(lambda: writer.pending == 0, what="backlog written")
    assert [item for _, item in stored(store)] == events
    assert store.order == sorted(store.order)  # written in order
    assert store.duplicates == 0
    stats = writer.stats()
    assert stats.up
    assert stats.breaker_state is BreakerState.CLOSED
    assert stats.write_failures >= 2
    assert stats.write_retries >= 1
    assert stats.spilled_events > 0
    assert stats.written_events == 200
    assert stats.spool_events == 0
    await recorder.stop()


async def test_spilling_while_a_write_is_in_flight_keeps_exactly_once(
    store: MemoryStore, tmp_path: Path
) -> None:
    recorder = await started(store, tmp_path)
    writer = recorder.writers[0]
    store.hold()  # a slow store: the first batch stays in flight
    events = Market().events(100)
    for e in events[:10]:
        recorder.record(e)
    await wait_until(lambda: store.held == 1, what="a write in flight")
    for e in events[10:]:
        recorder.record(e)  # spills the in-flight batch's records too
    assert writer.stats().spilled_events > 0
    store.release()
    await wait_until(lambda: writer.pending == 0, what="backlog written")
    assert [item for _, item in stored(store)] == events
    assert store.duplicates == 0
    await recorder.stop()


async def test_a_new_writer_writes_the_spool_left_by_a_stopped_one(
    store: MemoryStore, tmp_path: Path
) -> None:
    market = Market()
    first = await started(store, tmp_path)
    store.down = True
    before = market.events(120)
    for e in before:
        first.record(e)
    await first.stop()  # store down: everything goes to the spool
    assert first.writers[0].stats().spool_events == 120
    assert store.count() == 0

    store.down = False
    second = await started(store, tmp_path)
    assert second.last_ts == before[-1].receive_time  # continues after the spooled records
    after = market.events(15)
    for e in after:
        second.record(e)
    await wait_until(lambda: store.count() == 130, what="the spool and a full new batch written")
    await second.stop()  # writes the last partial batch
    assert [item for _, item in stored(store)] == before + after
    assert store.order == sorted(store.order)
    assert store.duplicates == 0
    assert (tmp_path / "memory.spool").stat().st_size == 0
    assert not (tmp_path / "memory.spool.pos").exists()


async def test_a_batch_the_store_rejects_is_kept_aside_and_writing_goes_on(
    store: MemoryStore, tmp_path: Path
) -> None:
    recorder = await started(store, tmp_path)
    writer = recorder.writers[0]
    events = Market().events(20)
    store.reject = True
    for e in events[:10]:
        recorder.record(e)
    await wait_until(lambda: writer.stats().rejected_events == 10, what="rejection")
    store.reject = False
    for e in events[10:]:
        recorder.record(e)
    await wait_until(lambda: store.count() == 10, what="next batch")
    await recorder.stop()
    rejected = Spool(tmp_path / "memory.rejected.spool")
    rejected.open()
    assert [item for _, item in rejected.peek(100)] == events[:10]
    rejected.close()
    assert [item for _, item in stored(store)] == events[10:]


async def test_a_write_that_hangs_times_out_and_is_retried(
    store: MemoryStore, tmp_path: Path
) -> None:
    recorder = await started(store, tmp_path, write_timeout_s=0.05, failure_threshold=100)
    writer = recorder.writers[0]
    store.hold()
    events = Market().events(10)
    for e in events:
        recorder.record(e)
    await wait_until(lambda: writer.stats().write_failures >= 1, what="timeout")
    assert "timed out" in writer.breaker.last_error
    store.release()
    await wait_until(lambda: store.count() == 10, what="retry")
    assert writer.stats().write_retries >= 1
    await recorder.stop()


async def test_both_writers_get_every_record_with_the_same_keys(tmp_path: Path) -> None:
    a, b = MemoryStore("a"), MemoryStore("b")
    recorder = StorageRecorder(
        [StoreWriter(a, config(), tmp_path), StoreWriter(b, config(), tmp_path)]
    )
    await recorder.start()
    b.down = True  # one store's outage doesn't hold the other back
    events = Market().events(50)
    for e in events:
        recorder.record(e)
    await wait_until(lambda: a.count() == 50, what="store a")
    b.down = False
    await wait_until(lambda: b.count() == 50, what="store b after its outage")
    await recorder.stop()
    assert stored(a) == stored(b)
    assert {h.store for h in recorder.health()} == {"a", "b"}
