"""The embedded store's append path: batches newer than anything stored skip the
anti-join, and every other batch still stores each record once."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from raven.model import Event, Trade
from raven.storage.base import ReadQuery, Record, StoreError, Table
from raven.storage.embedded import DuckDBStore
from tests.storage.events import EX, Market

SYMBOLS = ("BTCUSDT", "ETHUSDT", "")


async def stored(store: DuckDBStore) -> list[Record]:
    out: list[Record] = []
    for table in Table:
        out += await store.read(ReadQuery(table, EX, SYMBOLS, 0, 2**62, 10**6))
    return sorted(out, key=lambda r: r[0])


def records(events: list[Event]) -> list[Record]:
    return [(e.receive_time, e) for e in events]


async def test_overlapping_repeated_and_older_batches_are_stored_once(tmp_path: Path) -> None:
    rows = records(Market(seed=3).events(600))
    store = DuckDBStore(tmp_path / "raven.duckdb")
    await store.write(rows[200:400])  # appended: nothing stored yet
    await store.write(rows[300:500])  # overlaps the newest stored: anti-join
    await store.write(rows[500:600])  # newer than everything: appended
    await store.write(rows[0:250])  # older, partly stored
    await store.write(rows[0:600])  # all of it again
    assert await stored(store) == rows
    await store.close()


async def test_a_reopened_file_knows_what_it_holds(tmp_path: Path) -> None:
    rows = records(Market(seed=4).events(300))
    store = DuckDBStore(tmp_path / "raven.duckdb")
    await store.write(rows[:200])
    await store.close()
    store = DuckDBStore(tmp_path / "raven.duckdb")
    await store.write(rows[100:300])  # the first half is in the file already
    assert await stored(store) == rows
    await store.delete_before(rows[150][0])
    await store.write(rows[100:300])  # deleted ones come back, the rest once
    assert await stored(store) == rows[100:]
    await store.close()


async def test_a_failed_batch_leaves_nothing_and_is_stored_once_on_retry(tmp_path: Path) -> None:
    rows = records(Market(seed=5).events(200))
    store = DuckDBStore(tmp_path / "raven.duckdb")
    await store.write(rows[:100])
    trade = next(e for _, e in rows[150:] if isinstance(e, Trade))
    bad = (rows[150][0], msgspec.structs.replace(trade, price=12))  # not text: refused
    with pytest.raises(StoreError):
        await store.write([*rows[100:150], bad])
    assert await stored(store) == rows[:100]  # the transaction rolled back
    await store.write(rows[100:200])
    assert await stored(store) == rows
    await store.close()
