"""InfluxDB 1.x through a real influxd: every kind round-trips, writes are idempotent."""

from __future__ import annotations

import asyncio
import urllib.parse
import urllib.request
from collections.abc import Sequence

import pytest

from raven.config import InfluxDBConfig
from raven.storage import influxql
from raven.storage.base import ReadQuery, Record, StoreError, Table, table_of
from raven.storage.influx import InfluxStore
from tests.storage.conftest import influx_config
from tests.storage.events import EX, Market
from tests.storage.influxd import InfluxServer, free_port, require_influxd

ALL = ("BTCUSDT", "ETHUSDT", "")


def records(n: int = 300, seed: int = 1) -> list[Record]:
    return [(e.receive_time, e) for e in Market(seed).events(n)]


def of(recs: Sequence[Record], table: Table) -> list[Record]:
    return [r for r in recs if table_of(r[1]) is table]


async def read_all(store: InfluxStore, table: Table) -> list[Record]:
    return await store.read(ReadQuery(table, EX, ALL, 0, 2**62, 100_000))


def influxql_query(server: InfluxServer, database: str, q: str) -> list[influxql.Series]:
    params = urllib.parse.urlencode({"db": database, "epoch": "ns", "q": q})
    with urllib.request.urlopen(f"{server.url}/query?{params}", timeout=10) as response:
        return influxql.parse(response.read())


def count(server: InfluxServer, database: str, table: Table) -> int:
    q = f'SELECT count("receive_time") FROM "{table.measurement}"'
    series = influxql_query(server, database, q)
    return sum(int(row[1]) for s in series for row in s.values)


async def test_every_kind_comes_back_value_for_value(
    influxd: InfluxServer, influx_store: InfluxStore
) -> None:
    recs = records()
    await influx_store.write(recs)  # creates the database first
    for table in Table:
        assert await read_all(influx_store, table) == of(recs, table), table
    assert await influx_store.candle_intervals(EX, "BTCUSDT") == {"1m"}
    assert await influx_store.last_ts() == recs[-1][0]
    deltas = [r for r in of(recs, Table.BOOK_DELTA) if r[1].symbol == "ETHUSDT"]
    assert await influx_store.latest(Table.BOOK_DELTA, EX, "ETHUSDT", deltas[4][0]) == deltas[4]
    await influx_store.ping()


async def test_writing_a_batch_again_stores_it_once(
    influxd: InfluxServer, influx_store: InfluxStore
) -> None:
    recs = records()
    await influx_store.write(recs[:200])
    await influx_store.write(recs[:200])
    await influx_store.write(recs[150:])
    for table in Table:
        assert count(influxd, influx_store.config.database, table) == len(of(recs, table))


async def test_large_batches_are_split_into_several_requests(influxd: InfluxServer) -> None:
    store = InfluxStore(influx_config(influxd, max_body_bytes=2000))
    recs = records(200)
    assert len(list(store.encoder.bodies(recs, 2000))) > 5
    await store.write(recs)
    assert await read_all(store, Table.TRADE) == of(recs, Table.TRADE)
    await store.close()


async def test_points_influxdb_refuses_are_not_retried(
    influxd: InfluxServer, influx_store: InfluxStore
) -> None:
    recs = records(20)
    await influx_store.write(recs[:1])  # creates the database
    trades = [r for r in recs if table_of(r[1]) is Table.TRADE]
    # Someone else wrote `price` as a float in the same shard: our string price conflicts.
    line = f"trade,exchange=x,symbol=Y,side=buy price=1.5 {trades[0][0] - 1}"
    params = urllib.parse.urlencode({"db": influx_store.config.database, "precision": "ns"})
    request = urllib.request.Request(f"{influxd.url}/write?{params}", data=line.encode())
    await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=10).close())
    with pytest.raises(StoreError, match="field type conflict") as info:
        await influx_store.write(trades)
    assert not info.value.retryable


async def test_a_server_that_is_not_there_is_a_retryable_error() -> None:
    store = InfluxStore(InfluxDBConfig(url=f"http://127.0.0.1:{free_port()}", timeout_s=2.0))
    with pytest.raises(StoreError) as info:
        await store.write(records(5))
    assert info.value.retryable
    with pytest.raises(StoreError):
        await store.ping()
    await store.close()


async def test_user_and_password_when_influxdb_requires_them(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = InfluxServer(require_influxd(), tmp_path_factory.mktemp("influxd-auth"), auth=True)
    await asyncio.to_thread(server.start)
    try:
        # With auth on and no users yet, InfluxDB 1.x lets the first admin be created.
        await asyncio.to_thread(
            server.query, "CREATE USER \"raven\" WITH PASSWORD 's3cret' WITH ALL PRIVILEGES"
        )
        anonymous = InfluxStore(influx_config(server))
        with pytest.raises(StoreError, match="HTTP 401") as info:
            await anonymous.write(records(5))
        assert info.value.retryable  # fix the credentials; Raven keeps the events meanwhile
        await anonymous.close()
        store = InfluxStore(influx_config(server, username="raven", password="s3cret"))
        recs = records(50)
        await store.write(recs)
        assert await read_all(store, Table.TRADE) == of(recs, Table.TRADE)
        await store.close()
    finally:
        await asyncio.to_thread(server.stop)
