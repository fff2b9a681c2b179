"""An in-memory `Store`: the fake beside the real stores, for tests and experiments.

It keeps records in dicts keyed like the real stores (table, exchange,
symbol, ts), so a repeated write stores nothing twice, and it can be told to
fail (`down = True`, or `down_at_call`) or to hold every write until released
(`hold()`), which is how the writer's outage handling is tested without a
real outage. It can also refuse particular records (`bad`), the way the real
stores refuse a value they can't hold: all or nothing like DuckDB's
transaction, or (`partial = True`) storing the rest of the batch first, as
InfluxDB 1.x does with a 400 "partial write".
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from raven.storage.base import Item, ReadQuery, Record, StoreError, Table, table_of

Key = tuple[str, str, int]  # exchange, symbol, ts


class MemoryStore:
    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self.down = False  # while True every call raises a retryable StoreError
        self.reject = False  # while True writes raise a non-retryable StoreError
        self.bad: set[int] = set()  # ts of records the store refuses (non-retryable)
        self.partial = False  # a write with bad records stores its good ones first
        self.calls = 0  # write calls made, failed ones too
        self.down_at_call = 0  # > 0: the store goes down (`down`) at this write call
        self.writes = 0  # write calls that succeeded
        self.held = 0  # write calls waiting for release()
        self.duplicates = 0  # records written again (a retried batch; `partial` bisection)
        self.order: list[int] = []  # ts of every record, in the order writes stored them
        self._tables: dict[Table, dict[Key, Item]] = {t: {} for t in Table}
        self._last_ts = 0
        self._gate: asyncio.Event | None = None

    def hold(self) -> None:
        """Make every write wait until `release()`: a slow store."""
        self._gate = asyncio.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()
            self._gate = None

    def _check(self) -> None:
        if self.down:
            raise StoreError(f"{self.name} is down")

    async def write(self, batch: Sequence[Record]) -> None:
        self.calls += 1
        if self.calls == self.down_at_call:
            self.down = True
        if self._gate is not None:
            self.held += 1
            try:
                await self._gate.wait()
            finally:
                self.held -= 1
        self._check()
        if self.reject:
            raise StoreError(f"{self.name} rejected the batch", retryable=False)
        refused = [ts for ts, _ in batch if ts in self.bad] if self.bad else []
        if refused:
            if self.partial:
                self._store([r for r in batch if r[0] not in self.bad])
            raise StoreError(f"{self.name} refused ts {refused[0]}", retryable=False)
        self._store(batch)
        self.writes += 1

    def _store(self, batch: Sequence[Record]) -> None:
        for ts, item in batch:
            table = table_of(item)
            rows = self._tables[table]
            key = (item.exchange, item.symbol, ts)
            if key in rows:
                self.duplicates += 1
            else:
                self._last_ts = max(self._last_ts, ts)
            rows[key] = item
            self.order.append(ts)

    def all(self, table: Table) -> list[Record]:
        """Every record of a table, in ts order."""
        rows = sorted(self._tables[table].items(), key=lambda kv: kv[0][2])
        return [(key[2], item) for key, item in rows]

    def count(self) -> int:
        return sum(len(rows) for rows in self._tables.values())

    async def read(self, query: ReadQuery) -> list[Record]:
        self._check()
        out: list[Record] = []
        symbols = set(query.symbols)
        for ts, item in self.all(query.table):
            if not query.start <= ts < query.end or item.exchange != query.exchange:
                continue
            if item.symbol not in symbols:
                continue
            if query.intervals and getattr(item, "interval", "") not in query.intervals:
                continue
            out.append((ts, item))
            if len(out) >= query.limit:
                break
        return out

    async def latest(self, table: Table, exchange: str, symbol: str, at: int) -> Record | None:
        self._check()
        found: Record | None = None
        for ts, item in self.all(table):
            if ts > at:
                break
            if item.exchange == exchange and item.symbol == symbol:
                found = (ts, item)
        return found

    async def candle_intervals(self, exchange: str, symbol: str) -> frozenset[str]:
        self._check()
        return frozenset(
            getattr(item, "interval", "")
            for (ex, sym, _), item in self._tables[Table.CANDLE].items()
            if ex == exchange and sym == symbol
        )

    async def last_ts(self) -> int:
        return self._last_ts

    async def ping(self) -> None:
        self._check()

    async def close(self) -> None:
        self.release()
