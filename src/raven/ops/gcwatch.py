"""Garbage-collection pauses of the server process, and freezing its start-up heap.

Every Python collection runs on whichever thread allocates at that moment,
in the server almost always the event loop's, and nothing else runs while
it does: a pause is a stall of every stream. A full (generation 2)
collection walks every tracked object; once built the server holds
~49,000 of them (modules, functions, classes, the gRPC and aiohttp
machinery; ~63,000 with the store's DuckDB and Arrow), which takes ~30 ms
of CPU on the 2-core development machine (gen-2 collections of 50-80 ms
CPU were measured at 10,000 events/s x 10 clients), although none of them
will ever be garbage. `freeze_startup_heap()` moves
them to the permanent generation (`gc.freeze()`), so a full collection
walks only what was made since. `raven serve` calls it once, after the app
is built and before it starts.

`GcWatch` times each collection from `gc.callbacks` (two clock reads and a
bucket add per collection, off the per-event path) into one histogram per
generation, exported as `raven_gc_pause_seconds{generation}`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from raven.core.latency import Histogram

GENERATIONS = (0, 1, 2)
# Upper bounds in seconds, 100 µs to 1 s: a young collection takes ~0.1-1 ms.
PAUSE_BOUNDS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip


_frozen = 0  # objects the last freeze_startup_heap() moved out of the collector's reach


def freeze_startup_heap() -> int:
    """Collect once, then move every object alive now out of the collector's
    reach (collecting first, so no garbage is frozen); returns how many."""
    global _frozen
    gc.collect()
    gc.freeze()
    _frozen = gc.get_freeze_count()
    return _frozen


def thaw_startup_heap() -> None:
    """Undo `freeze_startup_heap()`: everything is the collector's again."""
    global _frozen
    gc.unfreeze()
    _frozen = 0


def frozen_count() -> int:
    """Objects frozen by the last `freeze_startup_heap()` (0 before it), for the
    metrics. Not `gc.get_freeze_count()`: CPython 3.11 counts the permanent
    generation by walking it: ~4 ms of the event loop per scrape (44% of it) at the
    server's ~60,000 frozen objects."""
    return _frozen


class GcWatch:
    """Times every garbage collection of this process while started."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.pauses = {g: Histogram(PAUSE_BOUNDS) for g in GENERATIONS}
        self.longest = 0.0  # seconds, the longest pause seen
        self._began = 0.0

    @property
    def started(self) -> bool:
        return self._on_gc in gc.callbacks

    def start(self) -> None:
        if not self.started:
            gc.callbacks.append(self._on_gc)

    def stop(self) -> None:
        if self.started:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = self.clock()
            return
        pause = self.clock() - self._began
        self.pauses[info["generation"]].observe(pause)
        if pause > self.longest:
            self.longest = pause
