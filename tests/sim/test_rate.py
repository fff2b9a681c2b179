"""The rate setting: the feed never runs ahead of it, and keeps up with a modest one."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.helpers import wait_until
from tests.sim.conftest import StartSim
from tests.sim.helpers import read_events

RATE = 500.0
WANTED = 500


async def test_rate_is_respected(start_sim: StartSim) -> None:
    sim = await start_sim(paused=True, rate=RATE)
    loop = asyncio.get_running_loop()
    started = loop.time()
    sim.feed_enabled.set()
    await wait_until(lambda: sim.stats.steps >= WANTED, what=f"{WANTED} market events")
    elapsed = loop.time() - started
    steps = sim.stats.steps
    # never ahead of the schedule: at most one event per 1/rate seconds (+ the first one)
    assert steps <= elapsed * RATE + 1
    # and it kept up (a feed more than a second behind drops and counts its backlog)
    assert steps + sim.stats.skipped_steps >= WANTED


async def test_max_rate_runs_flat_out_and_still_serves_clients(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim(paused=True, rate=float("inf"))
    url = f"{sim.ws_url}/public/stream?streams=btcusdt@bookTicker"
    async with http.ws_connect(url) as ws:
        sim.feed_enabled.set()
        await wait_until(lambda: sim.stats.steps >= 10_000, what="10k market events")
        events = await read_events(ws, 100)  # the writers get their turn between bursts
    assert len(events) == 100
    assert sim.stats.skipped_steps == 0  # an infinite rate has no schedule to fall behind
