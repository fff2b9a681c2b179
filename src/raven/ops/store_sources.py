"""Metric sources and health checks of the storage layer (one writer per store).

Each `StoreWriter` gives its counters as a `WriterStats` (`stats()`) and its
health as a `StoreHealth` (`health()`); its circuit breaker is exported by
`sources.breaker_source`. All read at scrape time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from raven.ops.health import HealthCheck, store_check
from raven.ops.metrics import MetricSource, Scrape

if TYPE_CHECKING:  # the stores import duckdb and pyarrow: only when storage is on
    from raven.storage import Storage, StoreWriter


def storage_source(storage: Storage) -> MetricSource:
    def source(scrape: Scrape) -> None:
        for writer in storage.writers:
            _writer(scrape, writer)
        scrape.counter("raven_store_book_checkpoints_total", storage.checkpoints)
        if storage.embedded is not None:
            name = storage.embedded.name
            scrape.counter("raven_store_retention_deleted_total", storage.retention_deleted, name)

    return source


def _writer(scrape: Scrape, writer: StoreWriter) -> None:
    s = writer.stats()
    store = s.store
    scrape.gauge("raven_store_up", int(s.up), store)
    scrape.counter("raven_store_events_recorded_total", s.recorded_events, store)
    scrape.counter("raven_store_events_written_total", s.written_events, store)
    scrape.counter("raven_store_batches_written_total", s.written_batches, store)
    scrape.counter("raven_store_write_failures_total", s.write_failures, store)
    scrape.counter("raven_store_write_retries_total", s.write_retries, store)
    scrape.counter("raven_store_events_rejected_total", s.rejected_events, store)
    scrape.counter("raven_store_events_spilled_total", s.spilled_events, store)
    scrape.gauge("raven_store_write_lag_seconds", s.write_lag_s, store)
    scrape.gauge("raven_store_buffered_events", s.buffered_events, store)
    scrape.gauge("raven_store_spooled_events", s.spool_events, store)
    scrape.gauge("raven_store_spool_bytes", s.spool_bytes, store)
    scrape.histogram("raven_store_batch_write_seconds", writer.write_seconds, store)


def storage_checks(storage: Storage, down_after_s: float) -> list[HealthCheck]:
    """One `store_check` per store."""
    return [store_check(writer, down_after_s) for writer in storage.writers]
