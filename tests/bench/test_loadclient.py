"""The load client: slim frame parsing, its histogram, and counting a real server's streams."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import msgspec

from raven import codec
from raven.app import RavenApp
from raven.bench import loadclient
from raven.bench.bare import ECHO_METHOD, FLOOD_METHOD, start_bare
from raven.bench.loadclient import LatencyHistogram, LoadConfig, LoadResult, SlimFrame, run_load
from raven.bench.procs import Cluster
from raven.model import Candle, Event, Quote, Trade
from raven.sim.server import Simulator
from raven.types import Side

EX = "binance_futures"


def test_slim_frame_counts_events_reads_times_and_sees_gaps() -> None:
    now = time.time_ns()
    bar = ("1", "2", "0.5", "1.5", "3", "4")  # open, high, low, close, volume, quote volume
    events: list[Event] = [
        Trade(EX, "BTCUSDT", "100.5", "0.1", Side.BUY, 7, now, now + 1),
        Quote(EX, "BTCUSDT", "100.4", "1", "100.6", "2", 9, now, now + 2),
        Candle(EX, "BTCUSDT", "1s", now, now + 10**9, *bar, 5, True, True, now, now + 3),
    ]
    chunks = [codec.gap_chunk(4, "queue full", now), *(codec.encode(e) for e in events)]
    frame = SlimFrame.FromString(codec.frame(12, chunks, now + 5))
    assert frame.first_sequence == 12
    assert frame.sent_time_ns == now + 5
    assert len(frame.events) == 4
    assert frame.events[0].HasField("gap")
    assert frame.events[0].gap.dropped == 4
    assert [e.receive_time_ns for e in frame.events[1:]] == [now + 1, now + 2, now + 3]
    assert [e.HasField("candle") and e.candle.closed for e in frame.events[1:]] == [
        False, False, True,
    ]  # fmt: skip


def test_process_cpu_time_of_a_live_and_a_missing_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # busy until killed
    try:
        before = loadclient.process_cpu_s(child.pid)
        deadline = time.monotonic() + 60
        while loadclient.process_cpu_s(child.pid) <= before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert loadclient.process_cpu_s(child.pid) > before  # it ran and /proc said so
    finally:
        child.kill()
        child.wait()
    assert loadclient.process_cpu_s(child.pid) == 0.0  # reaped: no such process


def test_histogram_quantiles_and_values_past_the_cap() -> None:
    hist = LatencyHistogram()
    for micros in range(1, 101):
        hist.add(micros)
    hist.add(loadclient.LATENCY_CAP_US + 5)
    hist.add(-3)  # clamped to 0, never an index below the array
    summary = hist.summary()
    assert summary.count == 102
    assert summary.p50 == 50
    assert summary.max == loadclient.LATENCY_CAP_US + 5
    assert hist.quantile(1.0) == loadclient.LATENCY_CAP_US + 5
    assert LatencyHistogram().summary().count == 0


async def test_counts_every_stream_of_a_real_server(sim: Simulator, app: RavenApp) -> None:
    sim.feed_enabled.set()
    config = LoadConfig(f"127.0.0.1:{app.grpc.port}", streams=2, warmup_s=0.3, duration_s=1.5,
                        latency=True)  # fmt: skip
    result = await run_load(config)
    assert result.streams == 2
    assert result.errors == []
    assert result.sequence_errors == 0
    assert all(n > 0 for n in result.per_stream_events)
    assert result.events == sum(result.per_stream_events)
    assert result.frames > 0
    assert result.bytes > result.frames
    assert result.latency.count > 0
    assert 0.0 <= result.machine_busy <= 1.0
    values = msgspec.to_builtins(result.latency).values()
    assert all(math.isfinite(v) and v >= 0 for v in values)
    # The window's events are all counted: the server sent each stream at least these.
    sent = app.registry.stats().sent
    assert sent >= result.events


def test_command_line_counts_a_bare_flood_and_times_round_trips() -> None:
    with Cluster() as cluster:
        bare = start_bare(cluster, events_per_frame=3, event_bytes=80)
        flood = _run(["--target", bare.target, "--streams", "3", "--warmup", "0.2",
                      "--duration", "1", "--method", FLOOD_METHOD])  # fmt: skip
        result = msgspec.json.decode(flood, type=LoadResult)
        assert result.streams == 3
        assert all(n > 0 for n in result.per_stream_events)
        assert result.events == 3 * result.frames
        assert result.sequence_errors == 0
        assert result.gaps == 0
        echo = _run(["--target", bare.target, "--echo", "20", "--echo-bytes", "300",
                     "--method", ECHO_METHOD])  # fmt: skip
        rtt = msgspec.json.decode(echo, type=loadclient.EchoResult).round_trip
        assert rtt.count == 20
        assert 0 < rtt.p50 <= rtt.max


def _run(args: list[str]) -> bytes:
    done = subprocess.run([sys.executable, "-m", "raven.bench.loadclient", *args],
                          capture_output=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


async def test_streams_never_subscribed_are_a_result_not_a_crash() -> None:
    with Cluster() as cluster:
        bare = start_bare(cluster)  # serves no StreamMarketData: every stream fails
        config = LoadConfig(bare.target, streams=2, warmup_s=0.0, duration_s=0.2,
                            ack_timeout_s=2.0)  # fmt: skip
        result = await run_load(config)
    assert result.failure.startswith("2 of 2 streams not subscribed after 2 s")
    assert "UNIMPLEMENTED" in result.failure
    assert len(result.errors) == 2
    assert result.events == 0
