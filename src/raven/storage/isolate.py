"""Bisection: the records of a rejected batch that the store refuses, and the rest written.

A store rejects a whole write call when one record in it is bad (a value
that overflows its DuckDB column; InfluxDB's 400 "field type conflict" or
"unable to parse"). Rather than set the whole batch aside, the writer hands
the batch to `isolate`, which writes its halves, splits a rejected half
again, and so on down to single records:

    [ 20,000 rejected ]
      [ 10,000 ok ] [ 10,000 rejected ]
                      [ 5,000 rejected ] [ 5,000 ok ]
                        ...  [ 1 rejected ] [ 1 ok ]

Each bad record costs at most two writes per level, ~2*log2(n) in all, and
the chunks are resolved strictly left to right, so the good records reach
the store in their order and the writer can drop each resolved chunk from
the head of its queue as soon as it is resolved.

Bounded work: a batch with very many bad records would cost up to 2n - 1
writes. After `max_writes` writes, a chunk known to be rejected is no longer
split but rejected whole (it may then hold good records too; they are kept
with the bad ones in the rejected spool, not lost). Chunks not yet tried are
still written once each, at most one per level of the split, so a batch
never costs more than `max_writes` + log2(n) + 1 writes.

A retryable failure (an outage) in the middle stops the bisection: what was
resolved so far stays resolved, the rest is still at the head of the
writer's queue and is written (and bisected again) when the store is back.

No I/O of its own: the writer's `Target` does the writing and the bookkeeping;
`RejectLog` writes the (rate-limited) log lines.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from raven.storage.base import StoreError

log = logging.getLogger("raven.storage")

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)

# Per batch, enough writes to isolate this many bad records one by one
# (2 * ceil(log2 n) writes each); past that, known-bad chunks are rejected whole.
ISOLATE_RECORDS = 16


def max_writes(n: int) -> int:
    """The write budget for isolating the bad records of a batch of `n`."""
    return 2 * max(1, math.ceil(math.log2(max(n, 2)))) * ISOLATE_RECORDS


class Target(Protocol[T_contra]):
    """Where the chunks go: the writer (its store, its queue, its counters)."""

    async def attempt(self, chunk: Sequence[T_contra]) -> StoreError | bool:
        """Write a chunk. True: stored (and taken off the queue); a StoreError: the
        store rejected it (nothing taken off); False: it failed for a reason that
        may pass (an outage; counted and handled by the target): stop here."""
        ...

    def reject(self, chunk: Sequence[T_contra], error: StoreError) -> None:
        """Set a rejected chunk aside (the rejected spool) and take it off the queue."""
        ...


class Isolation(Generic[T]):
    """One bisection of a rejected batch; read its counters when `run` returns."""

    def __init__(self, target: Target[T], budget: int) -> None:
        self.target = target
        self.budget = budget
        self.writes = 0  # write calls made (the first, whole-batch one not counted)
        self.written = 0  # records stored
        self.rejected = 0  # records set aside
        self.chunks = 0  # rejected chunks
        self.widest = 0  # the largest rejected chunk (> 1: the budget ran out)
        self.reason: StoreError | None = None  # the error of the first rejected chunk

    async def run(self, batch: Sequence[T], error: StoreError) -> bool:
        """Resolve `batch`, which the store rejected with `error`. False when a write
        failed (an outage) part way: the unresolved rest is left to the caller."""
        return await self._split(batch, error)

    async def _split(self, chunk: Sequence[T], error: StoreError) -> bool:
        if len(chunk) == 1 or self.writes >= self.budget:
            self.target.reject(chunk, error)
            self.rejected += len(chunk)
            self.chunks += 1
            self.widest = max(self.widest, len(chunk))
            if self.reason is None:
                self.reason = error
            return True
        mid = len(chunk) // 2
        for half in (chunk[:mid], chunk[mid:]):
            self.writes += 1
            outcome = await self.target.attempt(half)
            if outcome is False:
                return False
            if isinstance(outcome, StoreError):
                if not await self._split(half, outcome):
                    return False
            else:
                self.written += len(half)
        return True


REJECT_LOG_INTERVAL_S = 10.0  # at most one "rejected" line per store this often


class RejectLog:
    """The log lines of a store's bisections: one per rejected batch, at most one
    every REJECT_LOG_INTERVAL_S (the batches in between are summed into the next)."""

    def __init__(self, store: str, spool: Path, clock: Callable[[], float]) -> None:
        self.store = store
        self.spool = spool  # where the rejected records are kept
        self.clock = clock
        self.logged_at = -math.inf  # clock time of the last line
        self.unlogged = (0, 0)  # events and batches rejected since that line

    def report(self, isolation: Isolation[Any], size: int, error: StoreError) -> None:
        now = self.clock()
        if now - self.logged_at < REJECT_LOG_INTERVAL_S:
            if isolation.rejected:
                events, batches = self.unlogged
                self.unlogged = (events + isolation.rejected, batches + 1)
            return
        if not isolation.rejected:
            if isolation.written == size:  # e.g. too large a request: its halves went in
                self.logged_at = now
                log.warning("store %s rejected a batch of %d events (%s) but stored all of "
                            "them in smaller writes", self.store, size, error)  # fmt: skip
            return
        self.logged_at = now
        events, batches = self.unlogged
        self.unlogged = (0, 0)
        log.error(
            "store %s rejected %d of a batch of %d events (%s) and stored %d; the rejected "
            "ones are kept in %s%s%s",
            self.store, isolation.rejected, size, isolation.reason, isolation.written,
            self.spool,
            f" (bisection stopped after {isolation.writes} writes: rejected chunks of up to "
            f"{isolation.widest} events whole)" if isolation.widest > 1 else "",
            f" (+{events} more events rejected in {batches} batches since the last report)"
            if events else "",
        )  # fmt: skip
