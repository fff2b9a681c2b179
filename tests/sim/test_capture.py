"""Record and replay: a recorded feed comes back byte for byte; the shared 2021
capture converts, replays and syncs books exactly as the real venue's did."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from raven.connectors.binance import wire
from raven.connectors.binance.streams import Route
from raven.sim.capture import Capture, convert_text_capture, read_capture, seconds_to_ns
from raven.sim.names import route_of
from raven.sim.record import Recorder
from raven.sim.server import Simulator
from tests.sim.conftest import StartSim
from tests.sim.helpers import BookSync, find_capture, next_frame, snapshot

CAPTURE_DIR = find_capture()
NAMES = [
    "btcusdt@depth@100ms", "btcusdt@bookTicker", "ethusdt@depth@0ms",
    "btcusdt@aggTrade", "ethusdt@kline_1m", "!markPrice@arr@1s",
]  # fmt: skip


def by_route(capture: Capture) -> dict[Route, list[bytes]]:
    frames: dict[Route, list[bytes]] = {route: [] for route in Route}
    for frame in capture.frames:
        route = route_of(frame.stream)
        if route is not None:
            frames[route].append(frame.frame)
    return frames


async def replay_all(sim: Simulator, http: aiohttp.ClientSession, capture: Capture,
                     ) -> dict[Route, list[bytes]]:  # fmt: skip
    """Connect one combined connection per route, start the replay, read every frame."""
    expected = by_route(capture)
    got: dict[Route, list[bytes]] = {route: [] for route in Route}
    names = {r: [n for n in capture.streams if route_of(n) is r] for r in Route}
    async with (
        http.ws_connect(f"{sim.ws_url}/public/stream?streams={'/'.join(names[Route.PUBLIC])}",
                        max_msg_size=0) as public,
        http.ws_connect(f"{sim.ws_url}/market/stream?streams={'/'.join(names[Route.MARKET])}",
                        max_msg_size=0) as market,
    ):  # fmt: skip
        sim.feed_enabled.set()
        for route, ws in ((Route.PUBLIC, public), (Route.MARKET, market)):
            while len(got[route]) < len(expected[route]):
                got[route].append((await next_frame(ws)).data.encode())
    return got


async def test_record_then_replay_returns_the_same_frames(
    start_sim: StartSim, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    live = await start_sim(rate=300.0)
    out = tmp_path / "feed.capture"
    recorder = Recorder(live.ws_url, live.rest_url, NAMES, out)
    stats = await asyncio.wait_for(recorder.run(duration=None, max_frames=400), 30)
    assert stats.frames >= 400
    assert stats.snapshots == 2  # BTCUSDT and ETHUSDT have diff-depth streams
    capture = read_capture(out)
    assert len(capture.frames) == stats.frames
    assert set(capture.streams) <= set(NAMES)
    assert {c[1].split("/")[3] for c in capture.connections} == {"public", "market"}
    assert all(f.ns > 0 for f in capture.frames)

    replay = await start_sim(capture=capture, paused=True, replay_speed=0.0,
                             replay_start_grace_s=0.0)  # fmt: skip
    assert await replay_all(replay, http, capture) == by_route(capture)
    assert replay.stats.replayed == len(capture.frames)
    recorded = {r.param("symbol"): r.body for r in capture.rest if r.endpoint.endswith("depth")}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        url = f"{replay.rest_url}/fapi/v1/depth?symbol={symbol}&limit=1000"
        async with http.get(url) as r:
            assert await r.read() == recorded[symbol]
    info = next(r.body for r in capture.rest if r.endpoint.endswith("exchangeInfo"))
    async with http.get(f"{replay.rest_url}/fapi/v1/exchangeInfo") as r:
        assert await r.read() == info


async def test_replay_keeps_the_recorded_pace(
    start_sim: StartSim, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    out = tmp_path / "paced.capture"
    base = 1_700_000_000_000_000_000
    frames = [b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":%d}}' % i
              for i in range(5)]  # fmt: skip
    out.write_bytes(b"#raven-capture 1\n" + b"".join(
        b"W %d %s\n" % (base + i * 100_000_000, f) for i, f in enumerate(frames)))  # fmt: skip
    sim = await start_sim(capture=read_capture(out), paused=True, replay_speed=2.0,
                          replay_start_grace_s=0.0)  # fmt: skip
    loop = asyncio.get_running_loop()
    async with http.ws_connect(f"{sim.ws_url}/public/stream?streams=btcusdt@bookTicker") as ws:
        started = loop.time()
        sim.feed_enabled.set()
        got = [await next_frame(ws) for _ in frames]
    assert [m.data.encode() for m in got] == frames
    # 400 ms of capture at twice the speed: the last frame cannot come before 200 ms
    assert loop.time() - started >= 0.4 / 2.0


@pytest.mark.skipif(not CAPTURE_DIR.exists(), reason=f"shared capture not found at {CAPTURE_DIR}")
async def test_the_shared_2021_capture_converts_replays_and_syncs(
    start_sim: StartSim, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    out = tmp_path / "binance-2021.capture"
    lines = (CAPTURE_DIR / "ws.txt").read_bytes().splitlines()
    assert convert_text_capture(CAPTURE_DIR, out) == len(lines) + 4  # + 4 REST snapshots
    capture = read_capture(out)
    assert [f.frame for f in capture.frames] == [line.partition(b": ")[2] for line in lines[1:]]
    assert capture.frames[0].ns == seconds_to_ns(lines[1].partition(b": ")[0].decode())
    sim = await start_sim(capture=capture, paused=True, replay_speed=0.0,
                          replay_start_grace_s=0.0)  # fmt: skip
    got = await replay_all(sim, http, capture)
    assert got == by_route(capture)  # the venue's own bytes, in the venue's order

    # the replayed snapshots bridge the replayed depth streams, at both inclusive edges
    syncs = {}
    for symbol in ("SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"):
        syncs[symbol] = BookSync(symbol)
        syncs[symbol].load(await snapshot(http, sim.rest_url, symbol))
    for frame in got[Route.PUBLIC]:
        message = wire.combined_decoder.decode(frame)
        if message.stream.endswith("@depth@100ms"):
            assert isinstance(message.data, wire.DepthUpdate)
            syncs[message.data.s].apply(message.data)
    for symbol, sync in syncs.items():
        assert sync.bridge is not None, symbol
        edge = sync.bridge.U if symbol == "SUSHIUSDT" else sync.bridge.u
        assert edge == sync.snapshot_id, symbol
    async with http.get(f"{sim.rest_url}/fapi/v1/exchangeInfo") as r:
        info = await r.json()
    ticks = {s["symbol"]: s["filters"][0]["tickSize"] for s in info["symbols"]}
    assert set(ticks) == set(syncs)
    for symbol, sync in syncs.items():
        tick = float(ticks[symbol])
        prices = [float(p) for p, _ in sync.book.top(0)[0]]
        assert all(round(p / tick, 4).is_integer() for p in prices), symbol


async def run_cli(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "raven", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


async def test_command_line_record_and_replay(
    start_sim: StartSim, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    live = await start_sim()
    out = tmp_path / "cli.capture"
    recorder = await run_cli(
        "record", "--url", live.ws_url, "--rest-url", live.rest_url, "--symbols", "BTCUSDT",
        "--streams", "depth@100ms,aggTrade", "--max-frames", "50", "--duration", "20",
        "--out", str(out),
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(recorder.communicate(), 60)
    assert recorder.returncode == 0, stderr.decode()
    assert stdout.decode().startswith("recorded ")
    capture = read_capture(out)
    assert len(capture.frames) >= 50

    sim = await run_cli("sim", "--replay", str(out), "--speed", "max", "--port", "0",
                        env={"RAVEN__SIMULATOR__REPLAY_START_GRACE_S": "0"})  # fmt: skip
    try:
        assert sim.stdout is not None
        line = (await asyncio.wait_for(sim.stdout.readline(), 30)).decode()
        ws_url = line.split()[2]
        url = f"{ws_url}/public/stream?streams=btcusdt@depth@100ms"
        expected = [f.frame for f in capture.frames if f.stream == "btcusdt@depth@100ms"]
        async with http.ws_connect(url) as ws:
            got = [(await next_frame(ws)).data.encode() for _ in expected]
        assert got == expected
    finally:
        sim.send_signal(signal.SIGINT)
        await asyncio.wait_for(sim.wait(), 30)
    assert sim.returncode == 0


async def test_command_line_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.capture"
    bad.write_text("not a capture\n")
    proc = await run_cli("sim", "--replay", str(bad), "--port", "0")
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert stderr.decode().strip().startswith("raven sim: error:")
    assert "not a Raven capture" in stderr.decode()
    proc = await run_cli("sim", "--fault", "gap:sym=X", "--port", "0")
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "fault 'gap:sym=X'" in stderr.decode()
