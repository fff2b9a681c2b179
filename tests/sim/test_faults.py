"""Every injected fault, through the Python API, the HTTP control endpoint and
the command-line syntax."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import aiohttp
import msgspec
import pytest

from raven.connectors.binance import wire
from raven.sim.faults import Gap, Stall, parse_fault
from raven.sim.limits import FakeClock
from tests.sim.conftest import StartSim
from tests.sim.helpers import next_frame, read_events

DEPTH = "/public/stream?streams=btcusdt@depth@0ms/ethusdt@depth@0ms"


def breaks(events: list[dict[str, Any]]) -> int:
    return sum(b["pu"] != a["u"] for a, b in itertools.pairwise(events))


async def test_drop_connections(start_sim: StartSim, http: aiohttp.ClientSession) -> None:
    sim = await start_sim()
    async with (
        http.ws_connect(f"{sim.ws_url}/public/ws/btcusdt@bookTicker") as public,
        http.ws_connect(f"{sim.ws_url}/market/ws/btcusdt@aggTrade") as market,
    ):
        await next_frame(public)
        assert sim.faults.drop_connections(route="market") == 1
        while (msg := await next_frame(market)).type is aiohttp.WSMsgType.TEXT:
            pass
        assert msg.type is aiohttp.WSMsgType.CLOSED  # no close frame: the TCP link just died
        assert not public.closed
        await next_frame(public)
    assert sim.stats.dropped == 1


async def test_gap_on_one_symbol_breaks_its_chain_only(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim()
    async with http.ws_connect(sim.ws_url + DEPTH) as ws:
        before = await read_events(ws, 40)
        assert sim.faults.gap("BTCUSDT", "0ms") == ["btcusdt@depth@0ms"]
        await asyncio.sleep(0)
        after = await read_events(ws, 200)
    btc = [d for s, d in before + after if s.startswith("btc")]
    eth = [d for s, d in before + after if s.startswith("eth")]
    assert breaks(btc) == 1
    assert breaks(eth) == 0
    assert sim.stats.withheld == 1
    # the withheld event's ids are simply missing: the next pu names it
    gap = next(b for a, b in itertools.pairwise(btc) if b["pu"] != a["u"])
    assert gap["pu"] > btc[btc.index(gap) - 1]["u"]


async def test_gap_on_an_aggregated_stream(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim()
    async with http.ws_connect(f"{sim.ws_url}/public/ws/btcusdt@depth@100ms") as ws:
        first = await read_events_raw(ws, 2)
        sim.faults.gap("BTCUSDT", "100ms")
        later = await read_events_raw(ws, 4)
    assert breaks(first + later) == 1


async def read_events_raw(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[dict[str, Any]]:
    return [(await next_frame(ws)).json() for _ in range(n)]


@pytest.mark.parametrize("form", ["truncated", "not_json", "unknown_event", "oversized"])
async def test_malformed_frames(
    start_sim: StartSim, http: aiohttp.ClientSession, form: Any
) -> None:
    sim = await start_sim()
    url = f"{sim.ws_url}/public/stream?streams=btcusdt@bookTicker"
    async with http.ws_connect(url, max_msg_size=0) as ws:
        await read_events(ws, 1)
        assert sim.faults.malformed("btcusdt@bookTicker", form) == 1
        while True:
            msg = await next_frame(ws)
            try:
                frame = wire.combined_decoder.decode(msg.data)
            except msgspec.DecodeError:
                break  # the broken one
            assert isinstance(frame.data, wire.BookTicker)
        assert msg.data.startswith('{"stream":"btcusdt@bookTicker","data":')
        await read_events(ws, 3)  # and the stream goes on
    assert sim.stats.malformed == 1


async def test_stall_one_stream(start_sim: StartSim, http: aiohttp.ClientSession) -> None:
    sim = await start_sim()
    async with http.ws_connect(sim.ws_url + DEPTH) as ws:
        events = await read_events(ws, 10)
        sim.faults.stall(0.3, ["btcusdt@depth@0ms"])
        ends = time.monotonic() + 0.3
        while time.monotonic() < ends:
            events += await read_events(ws, 1)
        events += await read_events(ws, 5, "btcusdt@depth@0ms")
    btc = [d for _, d in events if d["s"] == "BTCUSDT"]
    eth = [d for _, d in events if d["s"] == "ETHUSDT"]
    assert sim.stats.stalled > 0  # events were held back...
    assert breaks(btc) == 1  # ...so the stream resumes after a gap
    assert breaks(eth) == 0
    assert len(eth) > 10  # the other stream kept flowing


async def test_stall_everything(start_sim: StartSim, http: aiohttp.ClientSession) -> None:
    sim = await start_sim()
    async with http.ws_connect(sim.ws_url + DEPTH) as ws:
        events = await read_events(ws, 10)
        sim.faults.stall(0.3)
        ends = time.monotonic() + 0.3
        while time.monotonic() < ends:
            events += await read_events(ws, 1)
        after = len(events)
        while {d["s"] for _, d in events[after:]} != {"BTCUSDT", "ETHUSDT"}:
            events += await read_events(ws, 1)
    assert sim.stats.stalled > 0
    for symbol in ("BTCUSDT", "ETHUSDT"):  # every stream went quiet and lost its events
        assert breaks([d for _, d in events if d["s"] == symbol]) == 1


async def test_rest_faults(start_sim: StartSim, http: aiohttp.ClientSession) -> None:
    sim = await start_sim(paused=True, clock=FakeClock(1_791_382_990.0))
    url = f"{sim.rest_url}/fapi/v1/depth?symbol=BTCUSDT&limit=5"
    sim.faults.rest_delay(0.2, count=1)
    started = time.monotonic()
    async with http.get(url) as r:
        assert r.status == 200
    assert time.monotonic() - started >= 0.2
    async with http.get(url) as r:
        assert r.status == 200
    assert sim.stats.rest_delayed == 1
    sim.faults.rest_error(429, count=2)
    statuses = []
    for _ in range(3):
        async with http.get(url) as r:
            statuses.append((r.status, r.headers.get("Retry-After")))
    assert statuses == [(429, "50"), (429, "50"), (200, None)]  # 10 s into the clock minute
    sim.faults.rest_error(429, seconds=2)
    async with http.get(url) as r:
        assert (r.status, r.headers["Retry-After"]) == (429, "2")
    sim.faults.rest_error(418, seconds=30)
    async with http.get(url) as r:
        assert (r.status, r.headers["Retry-After"]) == (418, "30")
    sim.faults.clear()  # clears pending faults; a ban runs its course, as on the venue
    async with http.get(url) as r:
        assert r.status == 418
    recorded = [(r.path, r.symbol, r.status) for r in sim.rest.requests]
    assert recorded == [
        ("/fapi/v1/depth", "BTCUSDT", s) for s in (200, 200, 429, 429, 200, 429, 418, 418)
    ]
    arrivals = [r.at for r in sim.rest.requests]
    assert arrivals == sorted(arrivals)


async def test_expire_now(start_sim: StartSim, http: aiohttp.ClientSession) -> None:
    sim = await start_sim()
    async with http.ws_connect(f"{sim.ws_url}/market/ws/btcusdt@aggTrade") as ws:
        await next_frame(ws)
        assert sim.faults.expire_connections() == 1
        while (msg := await next_frame(ws)).type is aiohttp.WSMsgType.TEXT:
            pass
        assert (msg.data, msg.extra) == (1000, "24-hour connection limit")


async def test_http_control_endpoint(start_sim: StartSim, http: aiohttp.ClientSession) -> None:
    sim = await start_sim()
    async with http.ws_connect(f"{sim.ws_url}/public/ws/btcusdt@depth@0ms") as ws:
        first = await read_events_raw(ws, 1)
        body = b'{"kind":"gap","symbol":"BTCUSDT","speed":"0ms"}'
        async with http.post(f"{sim.rest_url}/_sim/fault", data=body) as r:
            assert (r.status, await r.json()) == (200, {"kind": "gap", "affected": 1})
        assert breaks(first + await read_events_raw(ws, 30)) == 1
    async with http.post(f"{sim.rest_url}/_sim/fault", data=b'{"kind":"nope"}') as r:
        assert r.status == 400
        assert "bad fault spec" in (await r.json())["error"]
    async with http.get(f"{sim.rest_url}/_sim/stats") as r:
        assert (await r.json())["withheld"] == 1
    async with http.get(f"{sim.rest_url}/_sim/truth?symbol=ETHUSDT") as r:
        truth = await r.json()
        assert truth["updateId"] == sim.truth.last_update_id("ETHUSDT")


def test_command_line_fault_syntax() -> None:
    assert parse_fault("gap:symbol=BTCUSDT,every=5") == Gap(symbol="BTCUSDT", every=5)
    assert parse_fault("stall:seconds=2.5,streams=a@depth+b@depth,after=1") == Stall(
        seconds=2.5, streams=["a@depth", "b@depth"], after=1
    )
    with pytest.raises(ValueError, match="gap:sym=X"):
        parse_fault("gap:sym=X")
    with pytest.raises(ValueError, match="expected key=value"):
        parse_fault("stall:5")


async def test_scheduled_faults_from_the_config(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim(faults=("expire:after=0.2",))
    async with http.ws_connect(f"{sim.ws_url}/public/ws/btcusdt@bookTicker") as ws:
        while (msg := await next_frame(ws)).type is aiohttp.WSMsgType.TEXT:
            pass
        assert msg.data == 1000
