"""Depth snapshots for the book sync: fetched a few at a time, retried until they come.

`BookSync` asks for a symbol's snapshot through `request`; `run` fetches
them with `concurrency` workers through the REST client (whose limiter
spreads them within the venue's request weight), retrying each with capped
exponential back-off, and hands each to `deliver` (`BookSync.on_snapshot`).
A symbol is queued at most once however often it is asked for, so the
queue never holds more than one entry per symbol.

`refresh_books` asks, one symbol at a time and spread evenly over the
interval, for the periodic refresh of every live book.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import msgspec

from raven.connectors.backoff import exponential_backoff
from raven.connectors.binance.rest import BinanceRest, RestError, RestRejected
from raven.model import BookSnapshot

log = logging.getLogger("raven.connectors.binance.snapshots")


class SnapshotStats(msgspec.Struct):
    requested: int = 0  # requests accepted (repeats of a queued symbol not counted)
    fetched: int = 0
    failures: int = 0  # failed attempts (each retried)
    queued: int = 0  # waiting or in flight now
    refreshes_skipped: int = 0  # periodic refreshes left out to keep REST weight for resyncs


class SnapshotFetcher:
    def __init__(
        self,
        rest: BinanceRest,
        deliver: Callable[[BookSnapshot], None],
        symbols: Sequence[str],
        limit: int = 1000,
        concurrency: int = 2,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        self.rest = rest
        self.deliver = deliver
        self.limit = limit
        self.concurrency = concurrency
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.stats = SnapshotStats()
        # Bounded by the symbol count: a symbol is in it at most once (see `request`).
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=max(len(symbols), 1))
        self._queued: set[str] = set()

    def request(self, symbol: str) -> None:
        """Fetch `symbol`'s snapshot soon (no-op if it is already queued)."""
        if symbol in self._queued:
            return
        self._queued.add(symbol)
        self._queue.put_nowait(symbol)
        self.stats.requested += 1
        self.stats.queued = len(self._queued)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for n in range(self.concurrency):
                group.create_task(self._worker(), name=f"snapshot-worker-{n}")

    async def _worker(self) -> None:
        while True:
            symbol = await self._queue.get()
            snapshot = await self._fetch(symbol)
            self._queued.discard(symbol)  # before deliver: it may ask again at once
            self.stats.queued = len(self._queued)
            self.stats.fetched += 1
            self.deliver(snapshot)

    async def _fetch(self, symbol: str) -> BookSnapshot:
        delays = exponential_backoff(self.retry_initial_s, self.retry_max_s)
        while True:
            try:
                return await self.rest.depth(symbol, self.limit)
            except RestError as exc:
                self.stats.failures += 1
                delay = max(exc.retry_in, next(delays))
                level = logging.ERROR if isinstance(exc, RestRejected) else logging.WARNING
                log.log(level, "snapshot of %s failed (%s); retry in %.2f s", symbol, exc, delay)
                await asyncio.sleep(delay)


async def refresh_books(
    symbols: Sequence[str], refresh: Callable[[str], bool], interval_s: float
) -> None:
    """Call `refresh(symbol)` for each symbol every `interval_s`, spread evenly."""
    if not symbols or interval_s <= 0:
        return
    step = interval_s / len(symbols)
    while True:
        for symbol in symbols:
            await asyncio.sleep(step)
            refresh(symbol)
