"""The embedded store: one DuckDB file, no server. Raven's default.

Why DuckDB: it appends Arrow batches at hundreds of thousands of rows a
second and scans time ranges as Arrow at millions of rows a second, in one
file (README, "Storage", has the measurements and the command behind them).

- One table per record kind (`trade`, `quote`, `book_delta`, ...; columns in
  `columns.py`), rows appended in ts order, so DuckDB's per-row-group min/max
  of `ts` prunes time-range scans without an index.
- Idempotent writes: each batch inserts only rows whose (exchange, symbol,
  ts) is not already there, an anti-join limited to the batch's ts range,
  inside one transaction. A batch retried after a failure or replayed from
  the spool is stored once. A batch whose every ts is above the newest
  stored one (the store keeps that per table) can't hold a stored record and
  is appended without the anti-join: the usual case, about half the cost.
- DuckDB calls block, so they run in threads: writes and retention deletes
  on one writer thread (a DuckDB connection is not for concurrent use),
  reads on a small pool of reader threads, each with its own cursor.
- Retention: `delete_before(ts)` runs on the writer thread between batches,
  so writes wait at most one delete and keep arriving in the writer's buffer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from raven.storage.base import ReadQuery, Record, StoreError, Table, table_of
from raven.storage.columns import SPECS
from raven.storage.rows import encode_rows

log = logging.getLogger("raven.storage")

T = TypeVar("T")
READ_THREADS = 4


class DuckDBStore:
    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        memory_limit: str = "1GB",
        name: str = "embedded",
    ) -> None:
        self.name = name
        self.path = Path(path)
        self.read_only = read_only
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise StoreError(f"no embedded store at {self.path}", retryable=False)
        try:
            self._con = duckdb.connect(
                str(self.path), read_only=read_only, config={"memory_limit": memory_limit}
            )
        except duckdb.Error as exc:
            # Typically: another process has the file open for writing.
            raise StoreError(f"cannot open {self.path}: {exc}", retryable=False) from None
        # No progress bar on stderr from a server's long queries (cursors inherit it).
        self._con.execute("SET enable_progress_bar = false")
        if not read_only:
            for spec in SPECS.values():
                self._con.execute(spec.ddl())
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="raven-duckdb-write")
        self._readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="raven-duckdb-read")
        self._closed = False
        self._series: set[tuple[str, str, str]] | None = None  # stored candle series
        self._max_ts: dict[Table, int] = {}  # newest ts per table (writer thread only)

    # --- threads ----------------------------------------------------------------

    async def _on(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreError(f"{self.name} store is closed", retryable=False)
        try:
            return await asyncio.wrap_future(pool.submit(fn, *args))
        except duckdb.Error as exc:
            raise StoreError(f"{self.name}: {exc}") from exc

    def _read_sync(self, sql: str, params: Sequence[Any]) -> Any:
        cursor = self._con.cursor()
        try:
            return cursor.sql(sql, params=list(params)).to_arrow_table()
        finally:
            cursor.close()

    # --- writes -----------------------------------------------------------------

    async def write(self, batch: Sequence[Record]) -> None:
        if self.read_only:
            raise StoreError(f"{self.path} is open read-only", retryable=False)
        await self._on(self._writer, self._write_sync, batch)

    def _write_sync(self, batch: Sequence[Record]) -> None:
        groups: dict[Table, list[Record]] = defaultdict(list)
        for record in batch:
            groups[table_of(record[1])].append(record)
        con = self._con
        newest: dict[Table, int] = {}
        con.execute("BEGIN TRANSACTION")
        try:
            for table, records in groups.items():
                newest[table] = self._insert(table, records)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        for table, ts in newest.items():  # only now: the rows are stored
            self._max_ts[table] = max(ts, self._max_ts.get(table, ts))
        if Table.CANDLE in groups and self._series is not None:
            self._series.update(
                (c.exchange, c.symbol, c.interval)  # type: ignore[union-attr]
                for _, c in groups[Table.CANDLE]
            )

    def _insert(self, table: Table, records: list[Record]) -> int:
        """Insert the records not stored yet; returns their largest ts."""
        spec = SPECS[table]
        try:
            arrow = spec.to_arrow(records)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
            # A record whose values don't fit its columns: retrying can't help.
            raise StoreError(f"{spec.name}: {exc}", retryable=False) from exc
        ts = arrow.column(0)
        bounds = pc.min_max(ts).as_py()
        lo, hi = int(bounds["min"]), int(bounds["max"])
        con = self._con
        con.register("raven_batch", arrow)
        if lo > self._stored_max(table):
            # Every record is newer than anything stored (the usual case: the
            # feed appends), so none can be a duplicate: no anti-join needed.
            in_order = len(ts) < 2 or pc.all(pc.greater(ts[1:], ts[:-1])).as_py()
            con.execute(
                f'INSERT INTO "{spec.name}" ({spec.column_list}) '
                f"SELECT {spec.column_list} FROM raven_batch{'' if in_order else ' ORDER BY ts'}"
            )
        else:
            con.execute(
                f'INSERT INTO "{spec.name}" ({spec.column_list}) '
                f"SELECT {spec.column_list} FROM raven_batch b WHERE NOT EXISTS ("
                f'SELECT 1 FROM "{spec.name}" t WHERE t.ts BETWEEN $lo AND $hi '
                "AND t.ts = b.ts AND t.exchange = b.exchange AND t.symbol = b.symbol) "
                # The anti-join shuffles rows; stored in ts order they compress
                # 2x better and each row group covers a narrow ts range.
                "ORDER BY b.ts",
                {"lo": lo, "hi": hi},
            )
        con.unregister("raven_batch")
        return hi

    def _stored_max(self, table: Table) -> int:
        """The largest ts stored in a table, read once, then kept by `_write_sync`.
        Deletes leave it as it was: too high only ever means an anti-join too many."""
        top = self._max_ts.get(table)
        if top is None:
            row = self._con.execute(f'SELECT max(ts) FROM "{SPECS[table].name}"').fetchone()
            top = int(row[0]) if row and row[0] is not None else -(2**63)
            self._max_ts[table] = top
        return top

    async def delete_before(self, ts: int) -> int:
        """Retention: delete every record older than `ts`; returns how many."""
        return await self._on(self._writer, self._delete_sync, ts)

    def _delete_sync(self, ts: int) -> int:
        self._series = None  # some candle series may be gone now
        deleted = 0
        for spec in SPECS.values():
            row = self._con.execute(f'DELETE FROM "{spec.name}" WHERE ts < $1', [ts]).fetchone()
            deleted += int(row[0]) if row else 0
        return deleted

    # --- reads ------------------------------------------------------------------------

    async def read(self, query: ReadQuery) -> list[Record]:
        sql, params = _read_sql(query)
        arrow = await self._on(self._readers, self._read_sync, sql, params)
        return SPECS[query.table].from_arrow(arrow)

    async def read_encoded(self, query: ReadQuery) -> tuple[list[int], list[bytes]]:
        """Like `read`, as the records' ts and each one's GetHistoricalData `events` entry
        (`raven.storage.rows`), encoded on the reader thread."""
        sql, params = _read_sql(query)
        return await self._on(self._readers, self._encoded_sync, query.table, sql, params)

    def _encoded_sync(
        self, table: Table, sql: str, params: Sequence[Any]
    ) -> tuple[list[int], list[bytes]]:
        arrow = self._read_sync(sql, params)
        return arrow.column(0).to_pylist(), encode_rows(table, arrow).to_pylist()

    async def latest(self, table: Table, exchange: str, symbol: str, at: int) -> Record | None:
        spec = SPECS[table]
        sql = (
            f'SELECT {spec.column_list} FROM "{spec.name}" WHERE exchange = $1 AND symbol = $2 '
            "AND ts <= $3 ORDER BY ts DESC LIMIT 1"
        )
        arrow = await self._on(self._readers, self._read_sync, sql, [exchange, symbol, at])
        records = spec.from_arrow(arrow)
        return records[0] if records else None

    async def candle_intervals(self, exchange: str, symbol: str) -> frozenset[str]:
        series = self._series
        if series is None:
            series = await self._on(self._writer, self._load_series)
        # list(): a copy taken under the GIL, as the writer thread may add to the set.
        return frozenset(i for ex, sym, i in list(series) if ex == exchange and sym == symbol)

    def _load_series(self) -> set[tuple[str, str, str]]:
        """Read the stored candle series once; writes keep the set current from then on.
        On the writer thread, so no write can fall between the read and the cache."""
        if self._series is None:
            sql = 'SELECT DISTINCT exchange, symbol, "interval" FROM candle'
            arrow = self._read_sync(sql, [])
            self._series = set(zip(*(c.to_pylist() for c in arrow.columns), strict=True))
        return self._series

    async def last_ts(self) -> int:
        sql = " UNION ALL ".join(f'SELECT max(ts) AS ts FROM "{s.name}"' for s in SPECS.values())
        arrow = await self._on(self._readers, self._read_sync, f"SELECT max(ts) FROM ({sql})", [])
        value = arrow.column(0)[0].as_py()
        return int(value) if value is not None else 0

    async def count(self, table: Table) -> int:
        sql = f'SELECT count(*) FROM "{SPECS[table].name}"'
        arrow = await self._on(self._readers, self._read_sync, sql, [])
        return int(arrow.column(0)[0].as_py())

    async def ping(self) -> None:
        await self._on(self._readers, self._read_sync, "SELECT 1", [])

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Let queued writes finish (they hold data the writer counts as in flight).
        await asyncio.to_thread(self._writer.shutdown, wait=True)
        await asyncio.to_thread(self._readers.shutdown, wait=True)
        self._con.close()


def _read_sql(query: ReadQuery) -> tuple[str, list[Any]]:
    """The SELECT of `DuckDBStore.read` and its parameters."""
    spec = SPECS[query.table]
    sql = (
        f'SELECT {spec.column_list} FROM "{spec.name}" WHERE exchange = $1 '
        "AND list_contains($2, symbol) AND ts >= $3 AND ts < $4"
    )
    params: list[Any] = [query.exchange, list(query.symbols), query.start, query.end]
    if query.intervals and query.table is Table.CANDLE:
        sql += ' AND list_contains($6, "interval")'
    sql += " ORDER BY ts LIMIT $5"
    params.append(query.limit)
    if query.intervals and query.table is Table.CANDLE:
        params.append(list(query.intervals))
    return sql, params
