"""REST over real HTTP: answers, weights, errors, 429 and the 418 ban (on a fake clock)."""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp
import msgspec
import pytest

from raven.sim.limits import FakeClock
from tests.sim import reference
from tests.sim.conftest import StartSim

MINUTE = 1_791_382_980.0  # 2026-10-07 12:23:00 UTC: a whole minute
_decode = msgspec.json.Decoder(Any)


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.get(url) as response:
        return response.status, _decode.decode(await response.read()), response


def used(response: aiohttp.ClientResponse) -> int:
    return int(response.headers["X-MBX-USED-WEIGHT-1M"])


@pytest.mark.parametrize(
    ("limit", "weight"),
    [(5, 2), (10, 2), (20, 2), (50, 2), (100, 5), (500, 10), (1000, 20), (None, 10)],
)
async def test_depth_limits_and_weights(
    start_sim: StartSim, http: aiohttp.ClientSession, limit: int | None, weight: int
) -> None:
    sim = await start_sim(clock=FakeClock(MINUTE + 1), book_depth=600, paused=True)
    query = "" if limit is None else f"&limit={limit}"
    status, body, response = await get(http, f"{sim.rest_url}/fapi/v1/depth?symbol=BTCUSDT{query}")
    assert status == 200
    assert used(response) == weight
    assert list(body) == ["lastUpdateId", "E", "T", "bids", "asks"]
    assert len(body["bids"]) == min(limit or 500, 600)
    assert body["lastUpdateId"] == sim.truth.last_update_id("BTCUSDT")
    status, _, response = await get(http, f"{sim.rest_url}/fapi/v1/exchangeInfo")
    assert used(response) == weight + 1  # the minute's total


async def test_depth_errors(start_sim: StartSim, http: aiohttp.ClientSession) -> None:
    sim = await start_sim(paused=True)
    base = f"{sim.rest_url}/fapi/v1/depth"
    cases = {
        "?symbol=BTCUSDT&limit=7": {"code": -4021, "msg": "7 is not valid depth limit"},
        "?symbol=NOPEUSDT": {"code": -1121, "msg": "Invalid symbol."},
    }
    for query, error in cases.items():
        status, body, response = await get(http, base + query)
        assert (status, body) == (400, error)
        assert "X-MBX-USED-WEIGHT-1M" in response.headers
    status, body, _ = await get(http, base)
    assert status == 400
    assert body["code"] == -1102


async def test_429_then_418_ban_then_recovery(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    clock = FakeClock(MINUTE + 1)
    sim = await start_sim(clock=clock, paused=True, rest_weight_limit=50, rest_ban_s=120.0)
    url = f"{sim.rest_url}/fapi/v1/depth?symbol=BTCUSDT&limit=1000"  # weight 20
    assert [(await get(http, url))[0] for _ in range(2)] == [200, 200]
    status, body, response = await get(http, url)
    assert status == 429
    assert body["code"] == -1003
    assert body["msg"].startswith("Too many requests; current limit of IP(127.0.0.1) is 50")
    assert response.headers["Retry-After"] == "59"  # to the end of the UTC minute
    assert used(response) == 60
    status, _, _ = await get(http, url)
    assert status == 429  # the second one this minute: still a warning
    status, body, response = await get(http, url)
    assert status == 418  # a client that keeps going after 429s is banned
    assert response.headers["Retry-After"] == "120"
    assert "banned until" in body["msg"]
    clock.advance(119)  # a new minute, but still banned: every endpoint says 418
    status, _, response = await get(http, f"{sim.rest_url}/fapi/v1/exchangeInfo")
    assert status == 418
    assert response.headers["Retry-After"] == "1"
    clock.advance(1)
    status, _, response = await get(http, url)
    assert status == 200
    assert used(response) == 20
    assert (sim.stats.rest_429, sim.stats.rest_418) == (2, 2)


async def test_repeated_bans_escalate(start_sim: StartSim, http: aiohttp.ClientSession) -> None:
    clock = FakeClock(MINUTE)
    sim = await start_sim(clock=clock, paused=True, rest_weight_limit=1,
                          rest_429s_before_ban=0, rest_ban_s=10.0)  # fmt: skip
    url = f"{sim.rest_url}/fapi/v1/premiumIndex"  # weight 10 without a symbol
    for ban in (10, 20, 40):
        status, _, response = await get(http, url)
        assert (status, response.headers["Retry-After"]) == (418, str(ban))
        clock.advance(60 * 60)


async def test_klines(start_sim: StartSim, http: aiohttp.ClientSession) -> None:
    sim = await start_sim(trade_share=0.6)
    feed = sim.feed
    assert feed is not None
    sim.feed_enabled.clear()
    for _ in range(200):
        feed.step()
    base = f"{sim.rest_url}/fapi/v1/klines?symbol=ETHUSDT"
    status, rows, response = await get(http, base + "&interval=1s&limit=3")
    assert status == 200
    assert used(response) == 1
    assert 1 <= len(rows) <= 3
    for row in rows:
        assert [type(x) for x in row] == [type(x) for x in reference.KLINE_ROW]
        assert row[6] == row[0] + 999
    state = sim.model.states["ETHUSDT"] if sim.model else None
    assert state is not None
    assert rows[-1][4] == state.inst.price(state.klines.last_close)
    status, body, _ = await get(http, base + "&interval=2m")
    assert (status, body["code"]) == (400, -1120)
    status, body, response = await get(http, base + "&interval=1m&limit=1501")
    assert (status, body["code"], used(response)) == (400, -1130, 1 + 5 + 10)


async def test_premium_index_and_funding_rate(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim(paused=True)
    status, body, _ = await get(http, f"{sim.rest_url}/fapi/v1/premiumIndex?symbol=BTCUSDT")
    assert status == 200
    assert list(body) == reference.PREMIUM_INDEX_KEYS
    status, body, response = await get(http, f"{sim.rest_url}/fapi/v1/premiumIndex")
    assert [row["symbol"] for row in body] == ["BTCUSDT", "ETHUSDT"]
    assert used(response) == 1 + 10
    url = f"{sim.rest_url}/fapi/v1/fundingRate?symbol=ETHUSDT&limit=5"
    status, body, _ = await get(http, url)
    assert status == 200
    assert len(body) == 5
    assert all(list(row) == reference.FUNDING_RATE_KEYS for row in body)
    times = [row["fundingTime"] for row in body]
    assert times == sorted(times)
    assert {b - a for a, b in itertools.pairwise(times)} == {8 * 3600 * 1000}


async def test_exchange_info_tick_and_step_sizes(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim(paused=True, symbols=("BTCUSDT", "SOLUSDT"))
    status, body, _ = await get(http, f"{sim.rest_url}/fapi/v1/exchangeInfo")
    assert status == 200
    assert body["rateLimits"][0]["limit"] == 2400
    btc = body["symbols"][0]
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert (filters["PRICE_FILTER"]["tickSize"], btc["pricePrecision"]) == ("0.10", 2)
    assert filters["LOT_SIZE"]["stepSize"] == "0.001"
    # every simulated price is a multiple of the tick it advertises
    bids, asks = sim.truth.book("SOLUSDT")
    sol = {f["filterType"]: f for f in body["symbols"][1]["filters"]}
    tick = float(sol["PRICE_FILTER"]["tickSize"])
    assert all(round(float(p) / tick, 6).is_integer() for p, _ in bids + asks)
