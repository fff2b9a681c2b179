"""Storage at run time: stores, writers, recorder, history reader and the periodic jobs.

`Storage.from_config()` builds what `[database]` asks for:

    backend = "embedded"   DuckDB file at `path`          reads: DuckDB
    backend = "influxdb"   InfluxDB ([database.influxdb])  reads: InfluxDB
    backend = "both"       both, each with its own writer  reads: DuckDB (local, fast)
    backend = "none"       nothing (from_config returns None)

`start()` starts the writers (writing any spool left from an earlier run
first) and two owned tasks: book checkpoints (every
`[history] book_checkpoint_interval_s`, the live full book of each symbol
from the `BookSource`, so a book at time T is rebuilt from at most one
interval of deltas) and retention of the embedded store (every
`retention_check_interval_s`, rows older than `retention_days` deleted on the
store's writer thread while new records keep arriving). `stop()` cancels the
tasks, stops the writers (which spool what they can't write) and closes the
stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any

from raven.config import DatabaseConfig, HistoryConfig
from raven.storage.base import BookSource, Store, StoreError
from raven.storage.embedded import DuckDBStore
from raven.storage.history import HistoryReader
from raven.storage.influx import InfluxStore
from raven.storage.writer import StorageRecorder, StoreHealth, StoreWriter, WriterStats

log = logging.getLogger("raven.storage")

DAY_NS = 86400 * 1_000_000_000


class Storage:
    def __init__(
        self,
        stores: list[Store],
        config: DatabaseConfig,
        history: HistoryConfig,
        *,
        catalog: Mapping[str, Iterable[str]] | None = None,
        book_source: BookSource | None = None,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if not stores:
            raise ValueError("Storage needs at least one store")
        self.config = config
        self.history_config = history
        self.stores = stores
        self.embedded = next((s for s in stores if isinstance(s, DuckDBStore)), None)
        spool_dir = Path(config.writer.spool_dir)
        self.writers = [StoreWriter(s, config.writer, spool_dir, wall_ns=wall_ns) for s in stores]
        self.recorder = StorageRecorder(self.writers)
        # Reads from the embedded store when there is one: local and fast.
        self.reader = HistoryReader(self.embedded or stores[0])
        self.catalog = {ex: tuple(symbols) for ex, symbols in (catalog or {}).items()}
        self.book_source = book_source
        self._wall_ns = wall_ns
        self._tasks: list[asyncio.Task[None]] = []
        self.checkpoints = 0  # book checkpoints recorded
        self.retention_deleted = 0  # rows deleted by retention

    @classmethod
    def from_config(
        cls,
        config: DatabaseConfig,
        history: HistoryConfig,
        *,
        catalog: Mapping[str, Iterable[str]] | None = None,
        book_source: BookSource | None = None,
    ) -> Storage | None:
        """The stores `[database] backend` names (None for "none").

        Raises StoreError when the embedded file can't be opened (e.g. another
        Raven has it open) or InfluxDB 2.x has no token: better at start than later.
        """
        stores: list[Store] = []
        if config.backend in ("embedded", "both"):
            stores.append(DuckDBStore(config.path, memory_limit=config.embedded.memory_limit))
        if config.backend in ("influxdb", "both"):
            stores.append(InfluxStore(config.influxdb))
        if not stores:
            return None
        return cls(stores, config, history, catalog=catalog, book_source=book_source)

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        await self.recorder.start()
        if self.book_source is not None and self.catalog:
            self._spawn(self._checkpoint_loop(), "book-checkpoints")
        if self.embedded is not None and self.config.embedded.retention_days > 0:
            self._spawn(self._retention_loop(), "retention")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"storage-{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.recorder.stop()
        for store in self.stores:
            await store.close()

    # --- periodic jobs ----------------------------------------------------------------

    def checkpoint_books(self) -> int:
        """Record the live full book of every symbol now; returns how many."""
        if self.book_source is None:
            return 0
        done = 0
        for exchange, symbols in self.catalog.items():
            for symbol in symbols:
                snapshot = self.book_source.book_snapshot(exchange, symbol)
                if snapshot is not None:
                    self.recorder.record_checkpoint(snapshot)
                    done += 1
        self.checkpoints += done
        return done

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.history_config.book_checkpoint_interval_s)
            self.checkpoint_books()

    async def enforce_retention(self) -> int:
        """Delete embedded history older than retention_days; returns rows deleted."""
        days = self.config.embedded.retention_days
        if self.embedded is None or days <= 0:
            return 0
        cutoff = self._wall_ns() - int(days * DAY_NS)
        try:
            deleted = await self.embedded.delete_before(cutoff)
        except StoreError as exc:
            log.error("retention of the embedded store failed: %s", exc)
            return 0
        self.retention_deleted += deleted
        if deleted:
            log.info("retention: deleted %d records older than %g days", deleted, days)
        return deleted

    async def _retention_loop(self) -> None:
        while True:
            await self.enforce_retention()
            await asyncio.sleep(self.config.embedded.retention_check_interval_s)

    # --- observation ------------------------------------------------------------------

    def stats(self) -> list[WriterStats]:
        return self.recorder.stats()

    def health(self) -> list[StoreHealth]:
        return self.recorder.health()
