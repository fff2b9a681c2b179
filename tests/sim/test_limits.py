"""The venue's connection rules, with compressed times: message rate, stream limit,
server pings and the pong timeout, the connection lifetime, slow consumers."""

from __future__ import annotations

import asyncio
import itertools

import aiohttp

from tests.helpers import wait_until
from tests.sim.conftest import StartSim
from tests.sim.helpers import next_frame, read_events


async def read_until_closed(ws: aiohttp.ClientWebSocketResponse) -> list[aiohttp.WSMessage]:
    """Every message up to and including the close."""
    seen = []
    while True:
        msg = await next_frame(ws)
        seen.append(msg)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return seen


async def test_more_than_10_messages_a_second_closes_1008(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim(paused=True)
    async with http.ws_connect(f"{sim.ws_url}/public/ws") as ws:
        for i in range(30):
            await ws.send_str(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
        seen = await read_until_closed(ws)
        replies = [m.data for m in seen if m.type is aiohttp.WSMsgType.TEXT]
        assert 1 <= len(replies) <= 10
        assert replies[0] == '{"result":[],"id":0}'
        assert (seen[-1].data, seen[-1].extra) == (1008, "Too many requests")
    assert sim.stats.rate_closes == 1


async def test_10_messages_are_fine(start_sim: StartSim, http: aiohttp.ClientSession) -> None:
    sim = await start_sim()
    async with http.ws_connect(f"{sim.ws_url}/public/ws") as ws:
        for i in range(9):
            await ws.send_str(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
        await ws.send_str('{"method":"SUBSCRIBE","params":["btcusdt@bookTicker"],"id":9}')
        replies = [(await next_frame(ws)).data for _ in range(10)]
        assert replies[-1] == '{"result":null,"id":9}'
        assert len(await read_events_raw(ws, 20)) == 20  # still open, data flowing
    assert sim.stats.rate_closes == 0


async def read_events_raw(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[str]:
    return [(await next_frame(ws)).data for _ in range(n)]


async def test_stream_limit_error_4_then_1008(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim(max_streams_per_connection=3)
    url = f"{sim.ws_url}/public/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker"
    async with http.ws_connect(url) as ws:
        await ws.send_str('{"method":"SUBSCRIBE","params":["btcusdt@depth"],"id":1}')
        await ws.send_str('{"method":"SUBSCRIBE","params":["ethusdt@depth"],"id":2}')
        seen = await read_until_closed(ws)
        texts = [m.data for m in seen if m.type is aiohttp.WSMsgType.TEXT]
        assert '{"result":null,"id":1}' in texts
        assert texts[-1] == '{"error":{"code":4,"msg":"Too many subscriptions"},"id":2}'
        assert (seen[-1].data, seen[-1].extra) == (1008, "Too many subscriptions")
    too_many = "/".join(f"{s}@depth{x}" for s in ("btcusdt", "ethusdt") for x in ("", "5"))
    async with http.ws_connect(f"{sim.ws_url}/public/stream?streams={too_many}") as ws:
        seen = await read_until_closed(ws)
        assert seen[0].data == '{"error":{"code":4,"msg":"Too many subscriptions"},"id":null}'
        assert seen[-1].data == 1008
    assert sim.stats.stream_limit_closes == 2


async def test_server_pings_with_a_ms_timestamp_and_drops_the_silent(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim(paused=True, ping_interval_s=0.1, pong_timeout_s=0.5)
    async with (
        http.ws_connect(f"{sim.ws_url}/public/ws", autoping=False) as mute,
        http.ws_connect(f"{sim.ws_url}/public/ws", autoping=True) as polite,
    ):
        # the polite connection answers every ping (aiohttp does, while it reads)
        reader = asyncio.create_task(polite.receive())
        ping = await next_frame(mute)
        assert ping.type is aiohttp.WSMsgType.PING
        assert ping.data.isdigit()
        assert abs(int(ping.data) - int(ping.data[:13])) == 0  # a 13-digit epoch-ms value
        seen = await read_until_closed(mute)
        assert (seen[-1].data, seen[-1].extra) == (1008, "Pong timeout")
        assert all(m.type is aiohttp.WSMsgType.PING for m in seen[:-1])
        pings = sim.stats.pings
        await wait_until(lambda: sim.stats.pings >= pings + 12, what="a dozen more pings")
        assert not reader.done()
        reader.cancel()
        assert not polite.closed
        assert sim.stats.pong_timeouts == 1


async def test_client_pings_get_pongs(start_sim: StartSim, http: aiohttp.ClientSession) -> None:
    sim = await start_sim(paused=True)
    async with http.ws_connect(f"{sim.ws_url}/public/ws", autoping=False) as ws:
        await ws.ping(b"hello")
        pong = await next_frame(ws)
        assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"hello")


async def test_connection_lifetime_limit_closes_and_a_new_connection_carries_on(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim(max_connection_s=0.5)
    url = f"{sim.ws_url}/public/stream?streams=btcusdt@depth@0ms"
    async with http.ws_connect(url) as old:
        await read_events(old, 1)
        async with http.ws_connect(url) as new:  # opened before the old one expires
            seen = await read_until_closed(old)
            assert (seen[-1].data, seen[-1].extra) == (1000, "24-hour connection limit")
            assert len(seen) > 1
            later = await read_until_closed(new)  # it, too, lives half a second
            events = [m.json()["data"] for m in later if m.type is aiohttp.WSMsgType.TEXT]
            assert events, "the new connection carried the stream"
            assert all(b["pu"] == a["u"] for a, b in itertools.pairwise(events))
            assert later[-1].data == 1000
    assert sim.stats.expired == 2


async def test_a_slow_consumer_is_closed_1008(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim(rate=float("inf"), queue_frames=100, book_depth=400)
    names = "/".join(f"{s}@depth20@100ms/{s}@depth@0ms" for s in ("btcusdt", "ethusdt"))
    async with http.ws_connect(f"{sim.ws_url}/public/stream?streams={names}") as ws:
        # this client reads nothing until the simulator gives up on it
        await wait_until(lambda: sim.stats.slow_closes == 1, timeout=30, what="a slow close")
        seen = await read_until_closed(ws)
        assert (seen[-1].data, seen[-1].extra) == (1008, "Slow consumer")
