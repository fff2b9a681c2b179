"""Garbage-collection pauses timed per generation, and the start-up heap freeze."""

from __future__ import annotations

import gc
import itertools
import weakref
from collections.abc import Callable

from raven.bench import procs
from raven.bench.procs import Market
from raven.ops import catalog
from raven.ops.gcwatch import GcWatch, freeze_startup_heap, frozen_count, thaw_startup_heap
from raven.ops.metrics import MetricsRegistry
from raven.ops.sources import gc_source
from tests.ops.promtool import promtool_check
from tests.ops.scrape import parse, total


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def step_clock(step: float) -> Callable[[], float]:
    """A clock that moves `step` seconds each time it is read: every pause is one step."""
    ticks = itertools.count()
    return lambda: next(ticks) * step


def test_each_collection_is_timed_in_its_generation() -> None:
    watch = GcWatch(clock=step_clock(0.003))
    watch.start()
    try:
        before = {g: h.count for g, h in watch.pauses.items()}
        gc.collect(2)
        gc.collect(1)
    finally:
        watch.stop()
    assert not watch.started
    full, middle = watch.pauses[2], watch.pauses[1]
    assert full.count - before[2] >= 1
    assert middle.count - before[1] >= 1
    # 3 ms lands in the (2.5 ms, 5 ms] bucket; the longest pause is one step
    assert full.buckets[full.bounds.index(0.005)] == full.count
    assert abs(watch.longest - 0.003) < 1e-9
    after = full.count
    gc.collect(2)  # stopped: no longer timed
    assert full.count == after


def test_start_and_stop_are_idempotent() -> None:
    watch = GcWatch()
    watch.start()
    watch.start()
    try:
        assert sum(1 for cb in gc.callbacks if cb == watch._on_gc) == 1
    finally:
        watch.stop()
        watch.stop()
    assert watch._on_gc not in gc.callbacks


def test_frozen_heap_is_skipped_but_new_garbage_is_still_collected() -> None:
    try:
        frozen = freeze_startup_heap()
        assert frozen > 1000  # the interpreter, pytest and Raven's modules
        assert frozen == gc.get_freeze_count()
        cycle = _Cycle()
        alive = weakref.ref(cycle)
        del cycle
        gc.collect()
        assert alive() is None  # made after the freeze: collected as before
    finally:
        thaw_startup_heap()  # the test process keeps collecting everything
    assert gc.get_freeze_count() == 0
    assert frozen_count() == 0


def test_pauses_and_frozen_count_are_exported() -> None:
    watch = GcWatch()
    registry = MetricsRegistry(catalog.ALL, process=False)
    registry.add(gc_source(watch))
    watch.start()
    try:
        gc.collect(2)
        frozen = freeze_startup_heap()
        text = registry.exposition()
    finally:
        watch.stop()
        thaw_startup_heap()
    samples = parse(text)
    assert total(samples, "raven_gc_pause_seconds_count", generation="2") >= 1
    assert ("raven_gc_pause_seconds_count", (("generation", "0"),)) in samples
    assert samples[("raven_gc_frozen_objects", ())] == frozen > 1000
    promtool_check(text)


def test_raven_serve_freezes_its_start_up_heap_and_exports_its_pauses() -> None:
    market = Market(("BTCUSDT",), ("aggTrade", "depth@0ms"), rate=50.0, book_depth=50)
    with procs.sim_and_server(market) as (_, _, server):
        metrics = procs.scrape(server.metrics_url)
    # the server's imports and its built app: tens of thousands of objects
    assert metrics["raven_gc_frozen_objects"] > 10_000
    assert 'raven_gc_pause_seconds_count{generation="0"}' in metrics
