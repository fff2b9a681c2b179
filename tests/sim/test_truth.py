"""A client that follows the reference's order-book procedure over real sockets
holds the simulator's true book at every update id, on every diff speed."""

from __future__ import annotations

import aiohttp
import pytest

from raven.connectors.binance import wire
from raven.sim.server import Simulator
from tests.sim.conftest import StartSim
from tests.sim.helpers import BookSync, read_events, snapshot

SYMBOLS = ("BTCUSDT", "ETHUSDT")


async def sync_and_follow(
    sim: Simulator, http: aiohttp.ClientSession, suffix: str, events_wanted: int
) -> dict[str, BookSync]:
    """Buffer, snapshot, bridge, then apply: compare with the truth after every event."""
    names = [f"{s.lower()}@{suffix}" for s in SYMBOLS]
    syncs = {s: BookSync(s) for s in SYMBOLS}
    applied = dict.fromkeys(SYMBOLS, 0)
    truth = sim.truth
    async with http.ws_connect(f"{sim.ws_url}/public/stream?streams={'/'.join(names)}") as ws:
        # buffer until each symbol's stream has spoken: its snapshot's lastUpdateId (the id
        # of the symbol's last change) is then an id this client will see
        buffered = await read_events(ws, 1)
        while {d["s"] for _, d in buffered} != set(SYMBOLS):
            buffered += await read_events(ws, 1)
        for symbol, sync in syncs.items():
            snap = await snapshot(http, sim.rest_url, symbol)
            # the snapshot IS the true book at its lastUpdateId
            assert (tuple(snap.bids), tuple(snap.asks)) == truth.book_at(symbol, snap.lastUpdateId)
            sync.load(snap)
        while min(applied.values()) < events_wanted:
            buffered += await read_events(ws, 1)
            for _, data in buffered:
                event = wire.payload_decoder.decode(wire.encoder.encode(data))
                assert isinstance(event, wire.DepthUpdate)
                if syncs[event.s].apply(event):
                    applied[event.s] += 1
                    book = syncs[event.s].book
                    assert book.top(0) == truth.book_at(event.s, event.u), f"{event.s} at {event.u}"
            buffered = []
    return syncs


@pytest.mark.parametrize(
    ("suffix", "events"),
    [("depth@0ms", 200), ("depth@100ms", 8), ("depth", 5), ("depth@500ms", 3)],
)
async def test_diff_stream_from_a_snapshot_reproduces_the_truth(
    start_sim: StartSim, http: aiohttp.ClientSession, suffix: str, events: int
) -> None:
    sim = await start_sim()
    syncs = await sync_and_follow(sim, http, suffix, events)
    for sync in syncs.values():
        assert sync.bridge is not None
        assert sync.bridge.U <= sync.snapshot_id <= sync.bridge.u


async def test_bridge_hits_both_inclusive_edges(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    """@0ms: the bridge ends at the snapshot (u == lastUpdateId); an aggregated stream can
    bridge with its first id (U == lastUpdateId) when the window began with that change."""
    sim = await start_sim(paused=True)
    feed = sim.feed
    assert feed is not None
    names = "btcusdt@depth@0ms/btcusdt@depth@100ms"
    async with http.ws_connect(f"{sim.ws_url}/public/stream?streams={names}") as ws:
        while True:  # a one-id change of BTCUSDT opens a new 100 ms window...
            step = feed.step()
            if step.state.inst.symbol == "BTCUSDT":
                if step.txn.first_id == step.txn.last_id:
                    break
                feed.tick(100, step.txn.time_ms)  # send that window: start a fresh one
        snap = await snapshot(http, sim.rest_url, "BTCUSDT")  # ...the snapshot is taken there
        sim.feed_enabled.set()  # ...more changes join the window, then it is sent
        zero_sync, window_sync = BookSync("BTCUSDT"), BookSync("BTCUSDT")
        zero_sync.load(snap)
        window_sync.load(snap)
        while window_sync.bridge is None or zero_sync.bridge is None:
            for stream, data in await read_events(ws, 1):
                event = wire.payload_decoder.decode(wire.encoder.encode(data))
                assert isinstance(event, wire.DepthUpdate)
                (zero_sync if stream.endswith("@0ms") else window_sync).apply(event)
    assert zero_sync.bridge is not None
    assert window_sync.bridge is not None
    assert zero_sync.bridge.u == snap.lastUpdateId
    assert window_sync.bridge.U == snap.lastUpdateId < window_sync.bridge.u
    assert window_sync.book.top(0) == sim.truth.book_at("BTCUSDT", window_sync.last_u)


async def test_partial_depth_and_book_ticker_match_the_truth(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim()
    names = "ethusdt@depth10@100ms/ethusdt@bookTicker"
    async with http.ws_connect(f"{sim.ws_url}/public/stream?streams={names}") as ws:
        events = await read_events(ws, 60)
    partials = [d for s, d in events if "depth10" in s]
    tickers = [d for s, d in events if s.endswith("bookTicker")]
    assert partials
    assert tickers
    for data in partials:
        bids, asks = sim.truth.book_at("ETHUSDT", data["u"])
        assert (data["b"], data["a"]) == (
            [list(x) for x in bids[:10]],
            [list(x) for x in asks[:10]],
        )
    for data in tickers:
        bids, asks = sim.truth.book_at("ETHUSDT", data["u"])
        assert (data["b"], data["B"], data["a"], data["A"]) == (*bids[0], *asks[0])
