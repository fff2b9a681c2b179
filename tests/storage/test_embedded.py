"""The DuckDB store: every kind round-trips, writes are idempotent, reads filter, retention."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from raven.config import HistoryConfig, config_from_dict
from raven.model import Trade
from raven.storage.base import ReadQuery, Record, StoreError, Table, table_of
from raven.storage.embedded import DuckDBStore
from raven.storage.runtime import Storage
from raven.types import Side
from tests.helpers import wait_until
from tests.storage.events import EX, Market


def records(n: int = 400, seed: int = 1) -> list[Record]:
    return [(e.receive_time, e) for e in Market(seed).events(n)]


Symbols = tuple[str, ...]
ALL: Symbols = ("BTCUSDT", "ETHUSDT", "")


def of(recs: Sequence[Record], table: Table, symbols: tuple[str, ...] = ALL) -> list[Record]:
    return [r for r in recs if table_of(r[1]) is table and r[1].symbol in symbols]


async def read_all(
    store: DuckDBStore, table: Table, symbols: tuple[str, ...] = ALL
) -> list[Record]:
    return await store.read(ReadQuery(table, EX, symbols, 0, 2**62, 10**6))


async def test_every_kind_comes_back_value_for_value(duck: DuckDBStore) -> None:
    recs = records()
    await duck.write(recs)
    for table in Table:
        assert await read_all(duck, table) == of(recs, table), table
    assert await duck.last_ts() == recs[-1][0]


async def test_writing_a_batch_again_stores_it_once(duck: DuckDBStore) -> None:
    recs = records()
    await duck.write(recs[:300])
    await duck.write(recs[:300])  # a retried batch
    await duck.write(recs[250:])  # overlapping the next one
    for table in Table:
        assert await read_all(duck, table) == of(recs, table)
        assert await duck.count(table) == len(of(recs, table))


async def test_reads_filter_by_symbol_time_interval_and_limit(duck: DuckDBStore) -> None:
    recs = records()
    await duck.write(recs)
    trades = of(recs, Table.TRADE, ("ETHUSDT",))
    start, end = trades[3][0], trades[9][0]
    got = await duck.read(ReadQuery(Table.TRADE, EX, ("ETHUSDT",), start, end, 4))
    assert got == trades[3:7]
    assert await duck.read(ReadQuery(Table.TRADE, "other", ("ETHUSDT",), 0, 2**62, 10)) == []
    candles = await duck.read(ReadQuery(Table.CANDLE, EX, ("BTCUSDT",), 0, 2**62, 100, ("5m",)))
    assert candles == []
    assert await duck.candle_intervals(EX, "BTCUSDT") == {"1m"}
    deltas = of(recs, Table.BOOK_DELTA, ("BTCUSDT",))
    assert await duck.latest(Table.BOOK_DELTA, EX, "BTCUSDT", deltas[5][0] + 1) == deltas[5]
    assert await duck.latest(Table.BOOK_DELTA, EX, "BTCUSDT", 0) is None


def test_a_file_another_process_holds_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    code = (
        "import sys, duckdb; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
        "sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"ready"
        with pytest.raises(StoreError, match=r"cannot open .*lock"):
            DuckDBStore(path)
    finally:
        holder.communicate(b"")


def test_a_missing_file_read_only_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no embedded store at"):
        DuckDBStore(tmp_path / "nope.duckdb", read_only=True)


async def test_retention_deletes_old_history_while_writes_go_on(tmp_path: Path) -> None:
    market = Market()
    old = market.events(200)
    market.now += 2 * 86400 * 10**9  # two days later
    new = market.events(200)
    now = new[0].receive_time
    config = config_from_dict(
        {
            "database": {
                "embedded": {"retention_days": 1.0},
                "writer": {"spool_dir": str(tmp_path / "spool"), "batch_size": 50,
                           "flush_interval_s": 0.05},
            }
        }
    ).database  # fmt: skip
    store = DuckDBStore(tmp_path / "r.duckdb")
    storage = Storage([store], config, HistoryConfig(), wall_ns=lambda: now)
    await storage.start()
    for e in old + new[:100]:
        storage.recorder.record(e)
    await wait_until(lambda: storage.writers[0].written >= 50, what="some old records written")
    retention = asyncio.create_task(storage.enforce_retention())  # runs between write batches
    for e in new[100:]:
        storage.recorder.record(e)
    deleted = await retention
    await wait_until(lambda: storage.writers[0].pending == 0, what="all written")
    await storage.enforce_retention()  # old records written after the first pass
    kept = [r for t in Table for r in await read_all(store, t)]
    assert deleted > 0
    assert storage.retention_deleted == len(old)
    assert sorted(item.receive_time for _, item in kept) == [e.receive_time for e in new]
    await storage.stop()


async def test_a_record_that_does_not_fit_its_columns_is_refused_for_good(
    duck: DuckDBStore,
) -> None:
    good = records(20)
    bad = Trade(EX, "BTCUSDT", 1.5, "1", Side.BUY, 1, 2, 3)  # type: ignore[arg-type]
    huge = Trade(EX, "BTCUSDT", "1", "1", Side.BUY, 1 << 70, 2, 3)  # no 64-bit column holds it
    for wrong in (bad, huge):
        with pytest.raises(StoreError, match="trade") as info:
            await duck.write([*good, (good[-1][0] + 1, wrong)])
        assert not info.value.retryable  # the writer sets it aside instead of retrying forever
    assert await duck.count(Table.TRADE) == 0  # nothing of the batch was stored
    await duck.write(good)
    assert await read_all(duck, Table.TRADE) == of(good, Table.TRADE)
