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
"""

from raven.storage.base import BookSource, Recorder, Store, StoreError
from raven.storage.runtime import Storage
from raven.storage.writer import StorageRecorder, StoreHealth, StoreWriter, WriterStats

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
