"""A batch with bad records: the writer stores the good ones and sets only the bad ones aside.

Against the in-memory store (which refuses chosen records, all or nothing
like DuckDB or storing the rest first like InfluxDB 1.x, and can go down at
a chosen write call). The real stores are in test_writer_isolate_stores.py.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from raven.breaker import BreakerState
from raven.model import Event
from raven.sim.limits import FakeClock
from raven.storage.base import Record
from raven.storage.isolate import max_writes
from raven.storage.memory import MemoryStore
from raven.storage.spool import Spool
from raven.storage.writer import StorageRecorder, StoreWriter
from tests.helpers import wait_until
from tests.storage.events import Market
from tests.storage.test_writer import config, stored


def rejected_spool(spool_dir: Path, name: str = "memory") -> list[Record]:
    spool = Spool(spool_dir / f"{name}.rejected.spool")
    spool.open()
    try:
        return spool.peek(1_000_000)
    finally:
        spool.close()


def times(recorder: StorageRecorder, events: list[Event], at: set[int] | range) -> set[int]:
    """The storage times the recorder will give the events at positions `at`."""
    out, last = set(), recorder.last_ts
    for i, e in enumerate(events):
        last = max(e.receive_time, last + 1)
        if i in at:
            out.add(last)
    return out


async def write_all(
    store: MemoryStore, spool_dir: Path, events: list[Event], bad: set[int], **overrides: object
) -> StoreWriter:
    """Record `events` (their positions in `bad` refused by the store), wait until all
    are resolved, stop the writer."""
    recorder = StorageRecorder([StoreWriter(store, config(**overrides), spool_dir)])
    await recorder.start()
    writer = recorder.writers[0]
    store.bad = times(recorder, events, bad)
    for e in events:
        recorder.record(e)
    await wait_until(lambda: writer.pending == 0, what="every record resolved")
    await recorder.stop()
    return writer


def assert_split(
    store: MemoryStore, spool_dir: Path, events: list[Event], bad: set[int], in_order: bool = True
) -> None:
    """The good events stored once each (in order), exactly the bad ones set aside."""
    good = [e for i, e in enumerate(events) if i not in bad]
    assert [item for _, item in stored(store)] == good
    assert [item for _, item in rejected_spool(spool_dir)] == [events[i] for i in sorted(bad)]
    assert store.order == sorted(store.order) or not in_order


async def test_one_bad_record_among_many_is_the_only_one_set_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    events = Market().events(1000)
    with caplog.at_level(logging.ERROR, "raven.storage"):
        writer = await write_all(store, tmp_path, events, {637}, batch_size=1000,
                                 max_buffer_events=3000)  # fmt: skip
    assert_split(store, tmp_path, events, {637})
    assert store.duplicates == 0
    stats = writer.stats()
    assert (stats.recorded_events, stats.written_events, stats.rejected_events) == (1000, 999, 1)
    assert (stats.buffered_events, stats.spool_events, stats.write_lag_s) == (0, 0, 0.0)
    assert stats.write_failures == 0
    assert stats.up
    # The whole batch, then two halves per level down to the one record.
    assert store.calls <= 1 + 2 * math.ceil(math.log2(1000))
    assert stats.written_batches == store.writes
    lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(lines) == 1
    assert "rejected 1 of a batch of 1000 events" in lines[0]
    assert f"refused ts {rejected_spool(tmp_path)[0][0]}" in lines[0]  # the store's reason
    assert "stored 999" in lines[0]
    assert "memory.rejected.spool" in lines[0]


async def test_several_bad_records_across_batches(tmp_path: Path) -> None:
    store = MemoryStore()
    events = Market().events(600)
    bad = {0, 1, 99, 100, 250, 251, 252, 599}  # at edges of batches and halves, side by side
    writer = await write_all(store, tmp_path, events, bad, batch_size=100, max_buffer_events=300)
    assert_split(store, tmp_path, events, bad)
    assert store.duplicates == 0
    stats = writer.stats()
    assert stats.written_events == 600 - len(bad)
    assert stats.rejected_events == len(bad)
    assert stats.written_events + stats.rejected_events == stats.recorded_events


async def test_when_every_record_is_bad_all_are_set_aside_with_bounded_work(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    events = Market().events(2000)
    bad = set(range(2000))
    with caplog.at_level(logging.ERROR, "raven.storage"):
        writer = await write_all(store, tmp_path, events, bad, batch_size=2000,
                                 max_buffer_events=6000)  # fmt: skip
    assert store.count() == 0
    assert [item for _, item in rejected_spool(tmp_path)] == events
    assert writer.stats().rejected_events == 2000
    assert writer.stats().written_events == 0
    # Bisection stops at its budget (plus one untried half per level), not 2n - 1 writes.
    assert store.calls <= 1 + max_writes(2000) + math.ceil(math.log2(2000)) + 1
    assert store.calls < 2 * 2000 - 1
    assert any("bisection stopped after" in r.getMessage() for r in caplog.records)


async def test_a_store_that_keeps_the_good_records_of_a_rejected_batch(tmp_path: Path) -> None:
    """InfluxDB 1.x stores the good points of a batch it answers 400 to: writing them
    again in the bisection overwrites each with itself (the same key), so each is
    stored once and only the bad one is set aside."""
    store = MemoryStore()
    store.partial = True
    events = Market().events(300)
    bad = {5, 150, 151}
    writer = await write_all(store, tmp_path, events, bad, batch_size=300, max_buffer_events=900)
    assert_split(store, tmp_path, events, bad, in_order=False)
    assert store.duplicates > 0  # the overwrites; the key-by-key check above found no extra row
    assert writer.stats().written_events == 300 - len(bad)
    assert writer.stats().rejected_events == len(bad)


async def test_an_outage_during_bisection_is_retried_and_loses_nothing(tmp_path: Path) -> None:
    store = MemoryStore()
    events = Market().events(400)
    recorder = StorageRecorder([StoreWriter(store, config(batch_size=100, max_buffer_events=150),
                                            tmp_path)])  # fmt: skip
    await recorder.start()
    writer = recorder.writers[0]
    bad = {37, 38, 90}
    store.bad = times(recorder, events, bad)
    # Call 1: the whole first batch (rejected); 2: [0, 50) (rejected); 3: [0, 25) (stored);
    # 4: [25, 50) rejected, ... the store goes down at call 5, in the middle of it.
    store.down_at_call = 5
    for e in events:
        recorder.record(e)  # more than the memory bound: part of it goes to the spool
    await wait_until(lambda: writer.breaker.state is BreakerState.OPEN, what="breaker open")
    assert 0 < writer.stats().written_events < 400
    assert writer.stats().spool_events > 0
    store.down = False
    await wait_until(lambda: writer.pending == 0, what="everything resolved")
    await recorder.stop()
    assert_split(store, tmp_path, events, bad)
    assert store.duplicates == 0
    stats = writer.stats()
    assert stats.written_events == 400 - len(bad)
    assert stats.rejected_events == len(bad)
    assert stats.write_failures >= 1
    assert stats.write_retries >= 1
    assert stats.up
    assert stats.breaker_state is BreakerState.CLOSED


async def test_a_rejected_probe_closes_the_breaker(tmp_path: Path) -> None:
    """After an outage the probe batch may be one the store refuses: that answer is
    the store being up, and writing goes on."""
    store = MemoryStore()
    recorder = StorageRecorder([StoreWriter(store, config(), tmp_path)])
    await recorder.start()
    writer = recorder.writers[0]
    events = Market().events(20)
    store.down = True
    store.bad = times(recorder, events, range(10))  # the whole first batch
    for e in events:
        recorder.record(e)
    await wait_until(lambda: writer.breaker.state is BreakerState.OPEN, what="breaker open")
    store.down = False
    await wait_until(lambda: writer.pending == 0, what="everything resolved")
    await recorder.stop()
    assert [item for _, item in stored(store)] == events[10:]
    assert [item for _, item in rejected_spool(tmp_path)] == events[:10]
    assert writer.breaker.state is BreakerState.CLOSED


async def test_rejection_lines_are_rate_limited_and_summed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(1000.0)
    store = MemoryStore()
    writer = StoreWriter(store, config(), tmp_path, clock=clock.time)
    recorder = StorageRecorder([writer])
    await recorder.start()
    events = Market().events(40)
    store.bad = times(recorder, events, {3, 13, 23, 33})  # one per batch
    with caplog.at_level(logging.ERROR, "raven.storage"):
        for e in events[:30]:
            recorder.record(e)
        await wait_until(lambda: writer.pending == 0, what="three batches resolved")
        assert writer.rejected == 3
        clock.advance(10.0)  # isolate.REJECT_LOG_INTERVAL_S
        for e in events[30:]:
            recorder.record(e)
        await wait_until(lambda: writer.pending == 0, what="the fourth batch")
    await recorder.stop()
    lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(lines) == 2
    assert "rejected 1 of a batch of 10" in lines[0]
    assert "more" not in lines[0]
    assert "+2 more events rejected in 2 batches since the last report" in lines[1]
    assert store.count() == 36
    assert writer.rejected == 4
