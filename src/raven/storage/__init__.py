"""Persistence and history: every accepted event stored, and served back in the live schema.

- `base`: records, tables and the Store / Recorder / BookSource protocols.
- `writer`: StorageRecorder (the pipeline's recorder) and StoreWriter (batching,
  memory buffer, spool, circuit breaker per store); `spool`: the on-disk spool.
- `embedded` (+ `columns`): the DuckDB single-file store, Raven's default.
- `influx` (+ `lineproto`, `influxql`, `flux`): InfluxDB 1.x / 2.x over HTTP.
- `memory`: an in-memory store for tests.
- `history` (+ `candles`, `replay`): time-ordered reads, cursors, candles built
  from trades, the order book at a time T.
- `runtime`: `Storage`, everything above built from the config, with its
  periodic jobs (book checkpoints, retention).
- `export`: rows for `raven history` (table, CSV, Parquet).


Only `base` is imported eagerly: the stores pull in duckdb and pyarrow (about
50 MB of a process's memory), which a server with `backend = "none"` never
needs, so the names below that live in `runtime` and `writer` load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from raven.storage.base import BookSource, Recorder, Store, StoreError

if TYPE_CHECKING:
    from raven.storage.runtime import Storage
    from raven.storage.writer import StorageRecorder, StoreHealth, StoreWriter, WriterStats

_LAZY = {
    "Storage": "raven.storage.runtime",
    "StorageRecorder": "raven.storage.writer",
    "StoreHealth": "raven.storage.writer",
    "StoreWriter": "raven.storage.writer",
    "WriterStats": "raven.storage.writer",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'raven.storage' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "BookSource",
    "Recorder",
    "Storage",
    "StorageRecorder",
    "Store",
    "StoreError",
    "StoreHealth",
    "StoreWriter",
    "WriterStats",
]
