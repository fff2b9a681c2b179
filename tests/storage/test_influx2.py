"""The InfluxDB 2.x API against a strict 2.x endpoint on loopback (see influx2.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from raven.config import InfluxDBConfig
from raven.model import Trade
from raven.storage.base import ReadQuery, Record, StoreError, Table, table_of
from raven.storage.influx import TOKEN_ENV, InfluxStore
from raven.types import Side
from tests.storage.events import EX, Market
from tests.storage.influx2 import Influx2, parse_lines

TOKEN = "s3cr3t-t0ken=="
ORG = "raven org"
BUCKET = "market data"
ALL = ("BTCUSDT", "ETHUSDT", "")


@pytest.fixture
async def influx2() -> AsyncIterator[Influx2]:
    server = Influx2(TOKEN, ORG, BUCKET)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def v2_config(server: Influx2, **overrides: object) -> InfluxDBConfig:
    values: dict[str, object] = {"url": server.url, "api": "v2", "org": ORG, "bucket": BUCKET}
    values.update(overrides)
    return InfluxDBConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def store(influx2: Influx2, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[InfluxStore]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)  # the token comes from the environment
    s = InfluxStore(v2_config(influx2))
    try:
        yield s
    finally:
        await s.close()


async def test_the_write_request_is_exactly_what_influxdb_2_expects(
    influx2: Influx2, store: InfluxStore
) -> None:
    trade = Trade(EX, "BTCUSDT", "65000.10", "0.010", Side.SELL, 77, 1_700_000_000_000_000_000,
                  1_700_000_000_003_000_001, 75, 77)  # fmt: skip
    await store.write([(trade.receive_time, trade)])
    path, params, headers, body = influx2.requests[-1]
    assert path == "/api/v2/write"
    assert params == {"org": ORG, "bucket": BUCKET, "precision": "ns"}
    assert headers["Authorization"] == f"Token {TOKEN}"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body == (
        b"trade,exchange=binance_futures,symbol=BTCUSDT,side=sell "
        b'price="65000.10",price_float=65000.1,quantity="0.010",quantity_float=0.01,'
        b"trade_id=77i,exchange_time=1700000000000000000i,receive_time=1700000000003000001i,"
        b"first_trade_id=75i,last_trade_id=77i 1700000000003000001"
    )


async def test_every_kind_is_accepted_and_comes_back_through_flux(
    influx2: Influx2, store: InfluxStore
) -> None:
    recs: list[Record] = [(e.receive_time, e) for e in Market().events(300)]
    await store.write(recs)
    assert len(influx2.points) == len(recs)  # every point parsed, none collided
    for table in Table:
        got = await store.read(ReadQuery(table, EX, ALL, 0, 2**62, 100_000))
        assert got == [r for r in recs if table_of(r[1]) is table], table
    _, params, headers, _ = influx2.requests[-1]
    assert params == {"org": ORG}
    assert headers["Accept"] == "application/csv"
    assert await store.candle_intervals(EX, "ETHUSDT") == {"1m"}
    assert await store.last_ts() == recs[-1][0]
    deltas = [r for r in recs if table_of(r[1]) is Table.BOOK_DELTA and r[1].symbol == "BTCUSDT"]
    assert await store.latest(Table.BOOK_DELTA, EX, "BTCUSDT", deltas[3][0]) == deltas[3]


async def test_awkward_text_is_escaped_so_the_endpoint_parses_it_back(
    influx2: Influx2, store: InfluxStore
) -> None:
    recs: list[Record] = [(e.receive_time, e) for e in Market(seed=3).events(60)]
    await store.write(recs)
    body = influx2.requests[-1][3].decode()
    statuses = [fields for (m, _, _), fields in parse_lines(body) if m == "status"]
    assert 'reconnect "in 5 s", a=b\\c\nnext line: ü → ok' in {f["detail"][0] for f in statuses}


async def test_a_wrong_token_is_retryable_and_named(influx2: Influx2) -> None:
    store = InfluxStore(v2_config(influx2), token="wrong")
    with pytest.raises(StoreError, match="HTTP 401") as info:
        await store.write([(1, Market().events(1)[0])])
    assert info.value.retryable  # credentials can be fixed while Raven keeps buffering
    await store.close()


async def test_a_missing_bucket_and_a_type_conflict(influx2: Influx2, store: InfluxStore) -> None:
    other = InfluxStore(v2_config(influx2, bucket="nope"), token=TOKEN)
    with pytest.raises(StoreError, match="HTTP 404"):
        await other.write([(1, Market().events(1)[0])])
    await other.close()
    await store.write([(1, Market().events(1)[0])])
    # Once a field has a type, a point with another type for it is refused for good.
    influx2.field_types[("book_snapshot", "update_id")] = "double"
    with pytest.raises(StoreError, match="HTTP 422") as info:
        await store.write([(2, Market().events(1)[0])])
    assert not info.value.retryable


def test_2x_without_a_token_in_the_environment_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(StoreError, match="INFLUX_TOKEN"):
        InfluxStore(InfluxDBConfig(api="v2", org=ORG))
