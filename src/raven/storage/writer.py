"""The writer: records in from the pipeline, batches out to a store, nothing lost in an outage.

One `StoreWriter` per store. Records wait in a FIFO that is the spool file
(oldest) followed by a memory buffer (newest):

    offer() --> memory buffer --(over max_buffer_events: oldest spilled)--> spool file
                      \\                                                     /
                       `-- flusher task: head batch of (spool ++ memory) --> store.write()

- `offer()` runs on the event loop for every record: an append to a deque.
  It never waits for the store. When the buffer holds `batch_size` records
  it wakes the flusher; otherwise the flusher writes what it has after
  `flush_interval_s`.
- Overflow policy SPILL: over `max_buffer_events`, the oldest `batch_size`
  records move to the spool, appended by the writer's own I/O thread (a
  single-thread executor, so appends, reads and commits of the spool happen
  in submission order). Only if the disk falls more than a whole buffer
  behind does `offer()` wait for it: backpressure, rather than unbounded
  memory or lost data.
- The flusher always writes the *head* of the FIFO and removes it only after
  the store confirmed the write, so batches go out in order and a failed or
  cancelled write is simply retried. Stores key records by (table, exchange,
  symbol, ts), so a batch written twice is stored once: exactly once.
- A batch the store rejects (bad input, not an outage) is bisected
  (`raven.storage.isolate`): the good records are written, in order, and
  only the ones the store refuses go to the rejected spool
  (`<store>.rejected.spool`), with a log line saying how many and why.
- A CircuitBreaker guards the store: after `failure_threshold` failures in a
  row the flusher stops calling it and sends one probe write every
  `probe_interval_s` until it succeeds.
- `stop()` gives the flusher `stop_timeout_s` to write what it can, then
  spools the rest. The next `start()` writes the spool before anything new.
  A hard kill loses only what was still in memory (at most the buffer).

`StorageRecorder` is what the pipeline calls: it gives each event its
storage time `ts` (see `raven.storage.base`) and offers the record to every
writer (backend = "both": embedded and InfluxDB).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from pathlib import Path
from typing import Any

import msgspec

from raven.breaker import BreakerState, CircuitBreaker
from raven.config import WriterConfig
from raven.core.latency import Histogram
from raven.model import BookSnapshot
from raven.ops import tracing
from raven.storage.base import BookCheckpoint, Item, Record, Store, StoreError
from raven.storage.isolate import Isolation, RejectLog, max_writes
from raven.storage.spool import Spool

log = logging.getLogger("raven.storage")

LAST_TS_TIMEOUT_S = 3.0  # for reading a store's newest ts at start
# Bounds (s) of the batch write duration histogram: 1 ms to 30 s (write_timeout_s).
WRITE_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class WriterStats(msgspec.Struct, frozen=True):
    """A writer's counters at one moment, for the metrics layer (`StoreWriter.stats()`)."""

    store: str
    up: bool  # the breaker is closed: the last write (or probe) succeeded
    breaker_state: BreakerState  # 0 closed, 1 half-open, 2 open
    buffered_events: int  # in memory, not yet written
    spool_events: int  # in the spool file, not yet written
    spool_bytes: int
    recorded_events: int  # offered by the recorder since start
    written_events: int  # confirmed by the store
    written_batches: int
    write_failures: int  # failed write calls (each also counts toward the breaker)
    write_retries: int  # write calls that repeated a batch that had failed
    rejected_events: int  # refused by the store as invalid; kept in the rejected spool
    spilled_events: int  # moved from memory to the spool
    write_lag_s: float  # age of the oldest record not yet written (0 when caught up)


class StoreHealth(msgspec.Struct, frozen=True):
    """One store's line in /health."""

    store: str
    up: bool
    since_ns: int  # wall-clock time `up` last changed (or the writer started)
    breaker: str  # "closed", "half_open", "open"
    last_error: str
    pending_events: int


class StoreWriter:
    def __init__(
        self,
        store: Store,
        config: WriterConfig,
        spool_dir: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.name = store.name
        self.config = config
        self.breaker = CircuitBreaker(
            f"store {store.name}", config.failure_threshold, config.probe_interval_s, clock
        )
        self.spool = Spool(spool_dir / f"{store.name}.spool", config.spool_fsync)
        self.rejects = Spool(spool_dir / f"{store.name}.rejected.spool", config.spool_fsync)
        self._reject_log = RejectLog(store.name, self.rejects.path, clock)
        self._clock = clock
        self._wall_ns = wall_ns
        self._batch = config.batch_size
        self._max_buffer = config.max_buffer_events
        self._io = ThreadPoolExecutor(1, thread_name_prefix=f"raven-spool-{store.name}")
        self._memory: deque[Record] = deque()
        self._spooled = 0  # records in the spool, counting appends the I/O thread hasn't done yet
        self._spills: deque[Future[None]] = deque()  # appends submitted, oldest first
        # When the flush timer started (clock): the arrival of the oldest record in
        # memory, or the end of the last write for the records that arrived during it.
        self._first_at = 0.0
        self._spool_head_ts = 0
        self._failed_head = -1  # ts of the first record of the batch whose write failed
        self._resolved_ts = 0  # ts of the last record taken off the queue (stored or rejected)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.started = False
        # Counters (see WriterStats).
        self.recorded = 0
        self.written = 0
        self.batches = 0
        self.failures = 0
        self.retries = 0
        self.rejected = 0
        self.spilled = 0
        self.last_written_ts = 0
        self.write_seconds = Histogram(WRITE_BOUNDS)  # every write call, failed ones too
        self.up = True
        self.since_ns = wall_ns()

    # --- the hot path (event loop) ----------------------------------------------

    def offer(self, record: Record) -> None:
        memory = self._memory
        if not memory:
            self._first_at = self._clock()
            self._wake.set()  # an idle flusher starts the flush_interval_s timer
        memory.append(record)
        self.recorded += 1
        n = len(memory)
        if n >= self._batch:
            self._wake.set()
            if n > self._max_buffer and self.started:
                self._spill()

    def _spill(self) -> None:
        memory = self._memory
        chunk = [memory.popleft() for _ in range(min(self._batch, len(memory)))]
        if not self._spooled:
            self._spool_head_ts = chunk[0][0]  # the oldest unwritten record, for write_lag_ns
        self._spooled += len(chunk)
        self.spilled += len(chunk)
        spills = self._spills
        spills.append(self._io.submit(self.spool.append, chunk))
        while spills and spills[0].done():
            self._spilled(spills.popleft())
        if len(spills) * self._batch > self._max_buffer:
            # The disk is a whole buffer behind the feed: wait for it here
            # (backpressure) instead of holding an unbounded backlog in memory.
            done = spills.popleft()
            futures_wait([done])
            self._spilled(done)

    def _spilled(self, future: Future[None]) -> None:
        """Disk errors are handled inside the spool; anything else is a bug, reported
        here so that record() never raises into the pipeline."""
        exc = future.exception()
        if exc is not None:
            log.error("store %s: spooling failed", self.name, exc_info=exc)

    @property
    def pending(self) -> int:
        """Records not yet confirmed by the store (memory + spool)."""
        return len(self._memory) + self._spooled

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Open the spool (left over from an earlier run?) and start the flusher."""
        await self._in_io(self.spool.open)
        await self._in_io(self.rejects.open)
        self._spooled = self.spool.events
        if self._spooled:
            head = await self._in_io(self.spool.peek, 1)
            self._spool_head_ts = head[0][0]
            log.info(
                "store %s: %d events in the spool from an earlier run; writing them first",
                self.name,
                self._spooled,
            )
        self.started = True
        self._task = asyncio.create_task(self._run(), name=f"store-writer-{self.name}")

    async def stop(self) -> None:
        """Write what the store takes within stop_timeout_s; spool the rest."""
        if self._task is None:
            return
        self._stopping.set()
        self._wake.set()
        task, self._task = self._task, None
        try:
            await asyncio.wait_for(asyncio.shield(task), self.config.stop_timeout_s)
        except TimeoutError:
            task.cancel()
        # The flusher's own failure (a bug) must not lose the buffer: spool first, report after.
        results = await asyncio.gather(task, return_exceptions=True)
        if self._memory:
            left = list(self._memory)
            self._memory.clear()
            self._spooled += len(left)
            self._spills.append(self._io.submit(self.spool.append, left))
            log.warning("store %s: %d events spooled at shutdown", self.name, self._spooled)
        await self._in_io(self.spool.close)
        await self._in_io(self.rejects.close)
        self._io.shutdown(wait=True)
        self.started = False
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result

    async def _in_io(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.wrap_future(self._io.submit(fn, *args))

    # --- the flusher ----------------------------------------------------------------

    async def _run(self) -> None:
        stopping = self._stopping
        while True:
            await self._until_batch()
            if not self.pending:
                return  # only when stopping
            if not self.breaker.allow():
                if stopping.is_set():
                    return
                await self._sleep(self.breaker.seconds_until_probe())
                continue
            ok = await self._write_head()
            if not ok and stopping.is_set():
                return  # don't retry during shutdown: the rest is spooled

    async def _until_batch(self) -> None:
        """Wait until a batch is due: a full one, spooled records, the flush time, or stop."""
        while True:
            if self._stopping.is_set() or self._spooled or len(self._memory) >= self._batch:
                return
            timeout: float | None = None
            if self._memory:
                timeout = self._first_at + self.config.flush_interval_s - self._clock()
                if timeout <= 0:
                    return
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when stop() is called."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _peek(self) -> list[Record]:
        if self._spooled:
            batch: list[Record] = await self._in_io(self.spool.peek, self._batch)
            return batch
        return list(itertools.islice(self._memory, self._batch))

    async def _write_head(self) -> bool:
        """Write the oldest batch; True when it is resolved: stored, or (the records the
        store rejects) set aside. False when a write failed and should be retried."""
        try:
            batch = await self._peek()
        except Exception:  # a disk error, or a spool this version can't read: keep it, say so
            log.exception("store %s: cannot read the spool %s", self.name, self.spool.path)
            await self._sleep(self.config.retry_delay_s)
            return False
        if batch[0][0] == self._failed_head:
            self.retries += 1
        outcome = await self.attempt(batch)
        if isinstance(outcome, StoreError):
            return await self._isolate(batch, outcome)
        return outcome

    async def attempt(self, batch: Sequence[Record]) -> StoreError | bool:
        """One write call (also `isolate.Target.attempt`). True: stored and taken off the
        queue; a StoreError: rejected, nothing taken off; False: failed (counted, the
        breaker told, and after a short pause when the breaker is still closed)."""
        try:
            await self._timed_write(batch)
        except StoreError as exc:
            if not exc.retryable:
                # The store answered: it is up (a rejected probe must close the breaker,
                # or the flusher would wait for a probe result that never comes).
                self.breaker.record_success()
                self._set_up(True, "")
                return exc
            await self._failed(batch, str(exc))
            return False
        except TimeoutError:
            await self._failed(batch, f"write timed out after {self.config.write_timeout_s:g} s")
            return False
        except Exception as exc:
            # A bug in a store, not an outage. Keep the batch (it is retried like
            # any failure), make it loud, and let /health show it.
            log.exception("store %s: unexpected error writing a batch", self.name)
            await self._failed(batch, f"{type(exc).__name__}: {exc}")
            return False
        self.breaker.record_success()
        self._set_up(True, "")
        self._failed_head = -1
        self.written += len(batch)
        self.batches += 1
        self.last_written_ts = self._resolved_ts = batch[-1][0]
        self._commit(len(batch))
        return True

    async def _timed_write(self, batch: Sequence[Record]) -> None:
        """One write call, timed (`write_seconds`) and traced (`store.write_batch`)."""
        started = time.perf_counter()
        try:
            with tracing.span("store.write_batch", store=self.name, events=len(batch),
                              retry=batch[0][0] == self._failed_head):  # fmt: skip
                async with asyncio.timeout(self.config.write_timeout_s):
                    await self.store.write(batch)
        finally:
            self.write_seconds.observe(time.perf_counter() - started)

    async def _failed(self, batch: Sequence[Record], error: str) -> None:
        self.failures += 1
        self._failed_head = batch[0][0]
        self.breaker.record_failure(error)
        if self.breaker.state is not BreakerState.CLOSED:
            self._set_up(False, error)
        log.warning("store %s: write of %d events failed: %s", self.name, len(batch), error)
        if self.breaker.state is BreakerState.CLOSED and not self._stopping.is_set():
            await self._sleep(self.config.retry_delay_s)

    async def _isolate(self, batch: Sequence[Record], error: StoreError) -> bool:
        """The store rejected `batch`: write its good records, set the bad ones aside
        (bisection, `raven.storage.isolate`). False when an outage interrupted it."""
        isolation = Isolation(self, max_writes(len(batch)))
        done = await isolation.run(batch, error)
        self._reject_log.report(isolation, len(batch), error)
        return done

    def reject(self, batch: Sequence[Record], error: StoreError) -> None:
        """Keep records the store refused in the rejected spool (`isolate.Target.reject`)."""
        self.rejected += len(batch)
        self._io.submit(self.rejects.append, batch)
        self._resolved_ts = batch[-1][0]
        self._commit(len(batch))

    def _commit(self, n: int) -> None:
        """Remove the `n` oldest records of spool ++ memory. Synchronous on purpose:
        no offer() or spill can run between deciding what to remove and removing it."""
        from_spool = min(n, self._spooled)
        if from_spool:
            self._spooled -= from_spool
            self._io.submit(self.spool.commit, from_spool)
        memory = self._memory
        for _ in range(n - from_spool):
            memory.popleft()
        if memory:
            # The records that arrived during the write get a flush interval of their
            # own: with the old start time they were written at once, and a slow feed
            # made a write per write time (~100 tiny DuckDB commits a second, a core).
            self._first_at = self._clock()
        if not self.pending:
            self._spool_head_ts = 0

    def _set_up(self, up: bool, error: str) -> None:
        if up != self.up:
            self.up = up
            self.since_ns = self._wall_ns()
            if up:
                log.info("store %s is back; writing %d pending events", self.name, self.pending)
            else:
                log.error("store %s is down: %s; buffering and spooling", self.name, error)

    # --- observation -------------------------------------------------------------------

    def write_lag_ns(self) -> int:
        """Age of the oldest record not yet written (its ts is its receive time); 0 when
        caught up. The spool's head is known when it started (or was read at start);
        after part of the spool is resolved it is just past the last record written or
        rejected."""
        if not self.pending:
            return 0
        if self._spooled:
            oldest = max(self._spool_head_ts, self._resolved_ts)
        else:
            oldest = self._memory[0][0] if self._memory else 0
        return max(0, self._wall_ns() - oldest) if oldest else 0

    def stats(self) -> WriterStats:
        return WriterStats(
            store=self.name,
            up=self.up,
            breaker_state=self.breaker.state,
            buffered_events=len(self._memory),
            spool_events=self._spooled,
            spool_bytes=self.spool.bytes,
            recorded_events=self.recorded,
            written_events=self.written,
            written_batches=self.batches,
            write_failures=self.failures,
            write_retries=self.retries,
            rejected_events=self.rejected,
            spilled_events=self.spilled,
            write_lag_s=self.write_lag_ns() / 1e9,
        )

    def health(self) -> StoreHealth:
        return StoreHealth(
            store=self.name,
            up=self.up,
            since_ns=self.since_ns,
            breaker=self.breaker.state.name.lower(),
            last_error=self.breaker.last_error if not self.up else "",
            pending_events=self.pending,
        )


class StorageRecorder:
    """The pipeline's recorder: stamps each event with its storage time, offers it to
    every writer. `record()` is an O(1) append per writer; it never raises."""

    def __init__(self, writers: Sequence[StoreWriter]) -> None:
        self.writers = tuple(writers)
        self._offers = tuple(w.offer for w in self.writers)
        self.last_ts = 0
        self.recorded = 0

    def record(self, item: Item) -> None:
        """Key `item` by its receive time, made unique and increasing, and offer
        it to every store's writer. Runs for every event the pipeline accepts."""
        ts = item.receive_time
        if ts <= self.last_ts:
            ts = self.last_ts + 1  # unique and increasing: the key of the record
        self.last_ts = ts
        self.recorded += 1
        record = (ts, item)
        for offer in self._offers:
            offer(record)

    def record_checkpoint(self, snapshot: BookSnapshot) -> None:
        """Store the live full book at this point of the stream (see BookCheckpoint)."""
        self.record(BookCheckpoint.of(snapshot))

    async def start(self) -> None:
        """Start the writers; continue storage times after anything already stored."""
        for writer in self.writers:
            await writer.start()
            last = writer.spool.last_ts
            try:
                # Only a guard against a clock that went back across a restart:
                # don't let a store that doesn't answer hold up the start.
                async with asyncio.timeout(LAST_TS_TIMEOUT_S):
                    last = max(last, await writer.store.last_ts())
            except (StoreError, TimeoutError) as exc:
                log.warning(
                    "store %s: cannot read its last time (%s)", writer.name, exc or "timeout"
                )
            self.last_ts = max(self.last_ts, last)

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.writers))

    def stats(self) -> list[WriterStats]:
        return [w.stats() for w in self.writers]

    def health(self) -> list[StoreHealth]:
        return [w.health() for w in self.writers]
