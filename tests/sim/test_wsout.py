"""Frames written several per socket write: valid frames, in order, compressed or not,
and the rate loop's millisecond turns keep to the rate."""

from __future__ import annotations

import asyncio
import struct

import aiohttp
import pytest

from raven.sim.feed import TICK_S
from raven.sim.wsout import header
from tests.helpers import wait_until
from tests.sim.conftest import StartSim
from tests.sim.helpers import read_events

FAST = 4000.0  # transactions/s: several per millisecond turn


def test_headers_follow_rfc_6455_length_forms() -> None:
    assert header(0) == b"\x81\x00"
    assert header(125) == b"\x81\x7d"
    assert header(126) == b"\x81\x7e" + struct.pack("!H", 126)
    assert header(65535) == b"\x81\x7e\xff\xff"
    assert header(65536) == b"\x81\x7f" + struct.pack("!Q", 65536)


@pytest.mark.parametrize("compress", [0, 15])
async def test_depth_diffs_arrive_whole_and_chained_at_a_fast_rate(
    start_sim: StartSim, http: aiohttp.ClientSession, compress: int
) -> None:
    """Every diff is its own frame and `pu` chains to the previous `u` across many
    coalesced writes (or per-frame compressed writes, with permessage-deflate)."""
    sim = await start_sim(paused=True, rate=FAST)
    url = f"{sim.ws_url}/public/stream?streams=btcusdt@depth@0ms"
    async with http.ws_connect(url, compress=compress) as ws:
        assert bool(ws.compress) == bool(compress)
        sim.feed_enabled.set()
        events = await read_events(ws, 600)
    ids = [(data["pu"], data["u"]) for _, data in events]
    assert all(pu == prev_u for (pu, _), (_, prev_u) in zip(ids[1:], ids, strict=False))


async def test_rates_over_one_per_millisecond_are_kept(start_sim: StartSim) -> None:
    sim = await start_sim(paused=True, rate=FAST)
    loop = asyncio.get_running_loop()
    started = loop.time()
    sim.feed_enabled.set()
    await wait_until(lambda: sim.stats.steps >= 2000, what="2,000 market events")
    elapsed = loop.time() - started
    # never ahead of the schedule by more than one turn's transactions
    assert sim.stats.steps <= elapsed * FAST + FAST * TICK_S + 1
