"""The storage boundary: records, tables, and the `Store` / `Recorder` / `BookSource` protocols.

A *record* is `(ts, item)`: a stored event (or a periodic book checkpoint)
with its storage time `ts`. `ts` is the event's own receive time, nudged
forward by at most a few nanoseconds by the recorder so that it is unique and
strictly increasing across everything one Raven server records. It is the key
of the record in every store (InfluxDB: measurement + tags + timestamp;
DuckDB: table + exchange + symbol + ts), so writing the same record twice
stores it once, and it is the order history is returned in.

    pipeline --record(event)--> Recorder --(ts, event)--> StoreWriter --batch--> Store
                                                   (buffer, spool, breaker)

Stores are interchangeable: the embedded DuckDB file (`embedded.py`), InfluxDB
1.x / 2.x over HTTP (`influx.py`), and an in-memory store for tests
(`memory.py`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol, TypeAlias, runtime_checkable

import msgspec

from raven.model import (
    BookDelta,
    BookSnapshot,
    Candle,
    Event,
    Funding,
    Level,
    Liquidation,
    Quote,
    Status,
    Trade,
)
from raven.types import Kind


class BookCheckpoint(msgspec.Struct, frozen=True, gc=False):
    """A full book taken from the live state at a point in the stream.

    Stored apart from the BookSnapshot events the feed produced, so history
    returns exactly what went live; checkpoints only speed up rebuilding the
    book at a time T (start from the last checkpoint, apply the deltas after it).
    Same fields as BookSnapshot.
    """

    exchange: str
    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    update_id: int
    exchange_time: int
    receive_time: int
    depth: int = 0

    @classmethod
    def of(cls, s: BookSnapshot) -> BookCheckpoint:
        return cls(
            s.exchange, s.symbol, s.bids, s.asks, s.update_id, s.exchange_time, s.receive_time,
            s.depth,
        )  # fmt: skip


Item: TypeAlias = Event | BookCheckpoint
Record: TypeAlias = tuple[int, Item]  # (ts, item); ts unique per recorder, see the docstring


class Table(enum.IntEnum):
    """Where a record is stored: one DuckDB table / InfluxDB measurement each.

    The values are stable: they are written into spool files.
    """

    TRADE = 1
    QUOTE = 2
    BOOK_SNAPSHOT = 3
    BOOK_DELTA = 4
    CANDLE = 5
    FUNDING = 6
    LIQUIDATION = 7
    STATUS = 8
    BOOK_CHECKPOINT = 9

    @property
    def measurement(self) -> str:
        """The InfluxDB measurement name ("trade", "book_delta", ...)."""
        return self.name.lower()


ITEM_TYPES: dict[Table, type[Item]] = {
    Table.TRADE: Trade,
    Table.QUOTE: Quote,
    Table.BOOK_SNAPSHOT: BookSnapshot,
    Table.BOOK_DELTA: BookDelta,
    Table.CANDLE: Candle,
    Table.FUNDING: Funding,
    Table.LIQUIDATION: Liquidation,
    Table.STATUS: Status,
    Table.BOOK_CHECKPOINT: BookCheckpoint,
}
TABLE_OF: dict[type[Item], Table] = {cls: table for table, cls in ITEM_TYPES.items()}

KIND_TABLES: dict[Kind, tuple[Table, ...]] = {
    Kind.TRADE: (Table.TRADE,),
    Kind.QUOTE: (Table.QUOTE,),
    Kind.BOOK: (Table.BOOK_SNAPSHOT, Table.BOOK_DELTA),
    Kind.CANDLE: (Table.CANDLE,),
    Kind.FUNDING: (Table.FUNDING,),
    Kind.LIQUIDATION: (Table.LIQUIDATION,),
    Kind.STATUS: (Table.STATUS,),
}


def table_of(item: Item) -> Table:
    return TABLE_OF[type(item)]


class StoreError(Exception):
    """A store could not do what was asked.

    `retryable`: the store is down or overloaded and the same call may work
    later (the writer keeps the batch and retries); otherwise the request
    itself is bad (e.g. InfluxDB rejected the points) and retrying can't help.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class ReadQuery(msgspec.Struct, frozen=True):
    """Records of one table and exchange, `start <= ts < end`, oldest first."""

    table: Table
    exchange: str
    symbols: tuple[str, ...]
    start: int
    end: int
    limit: int
    intervals: tuple[str, ...] = ()  # candles only; empty: every interval


class Store(Protocol):
    """A place history is kept. All methods may raise StoreError."""

    name: str  # "embedded", "influxdb": names spool files, metrics and /health entries

    async def write(self, batch: Sequence[Record]) -> None:
        """Store the batch. Idempotent: a record already stored is not stored twice.
        A record the store can't take raises StoreError(retryable=False) for the call;
        the writer then finds it by writing smaller parts (`raven.storage.isolate`)."""
        ...

    async def read(self, query: ReadQuery) -> list[Record]:
        """At most `query.limit` records in `[start, end)`, in ts order."""
        ...

    async def latest(self, table: Table, exchange: str, symbol: str, at: int) -> Record | None:
        """The newest record of one symbol with ts <= at (book rebuilds start there)."""
        ...

    async def candle_intervals(self, exchange: str, symbol: str) -> frozenset[str]:
        """The candle intervals stored for a symbol (others are built from trades)."""
        ...

    async def last_ts(self) -> int:
        """The largest ts stored (0: none, or the store can't say cheaply)."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; StoreError when it doesn't."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class EncodedReads(Protocol):
    """A store that can hand history out already encoded (the embedded store).

    Other stores are read with `Store.read` and encoded per event."""

    async def read_encoded(self, query: ReadQuery) -> tuple[list[int], list[bytes]]:
        """`read`, as the records' ts and, in the same order, each one's
        GetHistoricalData `events` entry (`raven.storage.rows`)."""
        ...


class Recorder(Protocol):
    """What the pipeline hands every accepted event to. Never blocks, never raises."""

    def record(self, event: Event) -> None: ...


class BookSource(Protocol):
    """The live state's current full book of a symbol (None: no book yet)."""

    def book_snapshot(self, exchange: str, symbol: str) -> BookSnapshot | None: ...
