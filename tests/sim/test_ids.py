"""Update ids chain exactly as Binance futures' do, on every diff-depth speed."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import aiohttp

from tests.sim.conftest import StartSim
from tests.sim.helpers import read_events

SYMBOLS = ("btcusdt", "ethusdt")
SPEEDS = ("@depth@0ms", "@depth@100ms", "@depth", "@depth@500ms")


async def test_ids_chain_per_stream_in_one_shared_sequence(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim()
    names = [s + suffix for s in SYMBOLS for suffix in (*SPEEDS, "@bookTicker")]
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    async with http.ws_connect(f"{sim.ws_url}/public/stream?streams={'/'.join(names)}") as ws:
        while min(len(events[s + "@depth@500ms"]) for s in SYMBOLS) < 4:
            for stream, data in await read_events(ws, 1):
                events[stream].append(data)

    for name in names:
        if name.endswith("@bookTicker"):
            continue
        chain = events[name]
        assert len(chain) >= 2, name
        for before, event in itertools.pairwise(chain):
            assert event["pu"] == before["u"], f"{name}: pu must be the previous event's u"
            assert event["pu"] < event["U"] <= event["u"], name
            assert event["U"] != event["pu"] + 1, f"{name}: ids are shared with other symbols"

    # one sequence for every symbol: @0ms ranges never overlap across symbols
    ranges = sorted((e["U"], e["u"]) for s in SYMBOLS for e in events[s + "@depth@0ms"])
    for (_, u), (next_first, _) in itertools.pairwise(ranges):
        assert u < next_first

    for symbol in SYMBOLS:
        zero = events[symbol + "@depth@0ms"]
        by_first = {e["U"]: i for i, e in enumerate(zero)}
        by_last = {e["u"]: i for i, e in enumerate(zero)}
        # an aggregated event is exactly a run of consecutive @0ms events
        for suffix in ("@depth@100ms", "@depth", "@depth@500ms"):
            for event in events[symbol + suffix]:
                if event["U"] in by_first and event["u"] in by_last:
                    first, last = by_first[event["U"]], by_last[event["u"]]
                    assert first <= last
                    assert all(
                        zero[i]["pu"] == zero[i - 1]["u"] for i in range(first + 1, last + 1)
                    )
        # bookTicker's u is the id of the book change that moved the touch
        ids = set(by_last)
        tickers = [t for t in events[symbol + "@bookTicker"] if t["u"] > zero[0]["u"]]
        assert tickers
        assert all(t["u"] in ids for t in tickers if t["u"] <= zero[-1]["u"])
