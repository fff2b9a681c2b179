"""A load client for the networked benchmarks: many streams, counted cheaply.

    python -m raven.bench.loadclient --target 127.0.0.1:50051 --streams 100 \
        --warmup 1 --duration 30 [--latency] [--probe URL ...]

One process multiplexes N `StreamMarketData` calls over a few grpc.aio
channels (each its own TCP connection), every stream subscribed to all
kinds of every symbol ("*") with the server's default overflow policies.
Frames arrive as raw bytes (identity deserializer) and are parsed by
protobuf's C parser into *slim* message classes, declared below with only
the fields the count needs: `first_sequence`, `sent_time_ns`, and per event
`receive_time_ns` and the Gap marker. No model objects are built: a frame
costs one C-level parse and a few attribute reads, and with `--latency`
each timed event one more read and a histogram add (about 1-2 µs on the
2-core development machine).

Per stream it checks the sequence numbers (each frame's first_sequence is
the previous one's plus its event count) and counts Gap markers (the server
puts them first in a frame) and the events they say were dropped. With
`--latency` every event received in the window adds `now - receive_time_ns`
(the server's receive stamp; same machine clock) to a 1 µs histogram, and
every frame adds `now - sent_time_ns` (transport only). `--latency-every K`
times the events of every K-th frame of each stream only: a sample chosen by
position, not by latency, that keeps the client's own CPU (which the server
shares on a small machine) low at high rates. Final candle updates
are left out of the latency (counted apart): they carry their last trade's
receive time and go out when the next bar's first trade arrives.

After the streams are subscribed and `--warmup` has passed, the window
opens: `--probe` URLs (the server's /metrics, the simulator's stats) are
read at its start and end so their counters cover the same window. The
result is one JSON object (`LoadResult`) on stdout. `--echo N` measures N
sequential unary round trips instead (the latency baseline; see `bare`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from array import array
from collections.abc import Sequence
from typing import Any

import grpc
import msgspec
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from raven.bench.procs import scrape
from raven.grpc_poller import drain_wakeups
from raven.types import Kind
from raven.v1 import market_data_pb2 as pb

STREAM_METHOD = "/raven.v1.MarketDataService/StreamMarketData"
HEARTBEAT_S = 10.0  # well inside the server's client_timeout_s (60 s)
LATENCY_CAP_US = 100_000  # 1 µs buckets up to 100 ms; slower events are kept exactly
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.use_local_subchannel_pool", 1),  # a TCP connection per channel, not one shared
    ("grpc.max_receive_message_length", -1),
)


# Slim message -> [(field of the real message, type of the slim one for a message field)]
SLIM_FIELDS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "Gap": ("Gap", [("dropped", "")]),
    "Candle": ("Candle", [("closed", "")]),
    "Event": ("MarketEvent", [("receive_time_ns", ""), ("candle", ".slim.Candle"),
                              ("gap", ".slim.Gap")]),
    "Frame": ("StreamResponse", [("first_sequence", ""), ("events", ".slim.Event"),
                                 ("sent_time_ns", ""), ("ack", "bytes")]),
}  # fmt: skip


def _slim_classes() -> tuple[Any, Any]:
    """StreamResponse and MarketEvent with only the fields the count reads.

    The C parser skips the other fields without making Python objects, so a
    frame costs one parse however many events it holds. Each slim field is a
    copy of the real one from the generated descriptors (number, wire type),
    so a change in proto/ (say int64 -> sfixed64) carries over; the `ack` is
    kept as bytes, only to see that it came."""
    real = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(real)
    messages = {m.name: m for m in real.message_type}
    file = descriptor_pb2.FileDescriptorProto(name="raven_bench_slim.proto", package="slim")
    file.syntax = "proto3"
    for slim_name, (real_name, fields) in SLIM_FIELDS.items():
        slim = file.message_type.add(name=slim_name)
        for name, slim_type in fields:
            field = slim.field.add()
            field.CopyFrom(next(f for f in messages[real_name].field if f.name == name))
            field.ClearField("oneof_index")  # the slim messages have no oneofs
            if slim_type == "bytes":
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
                field.ClearField("type_name")
            elif slim_type:
                field.type_name = slim_type
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    frame_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("slim.Frame"))
    event_class = message_factory.GetMessageClass(pool.FindMessageTypeByName("slim.Event"))
    return frame_class, event_class


SlimFrame, SlimEvent = _slim_classes()


class LatencySummary(msgspec.Struct):
    """Percentiles in microseconds (0 when nothing was measured)."""

    count: int = 0
    p50: float = 0.0
    p90: float = 0.0
    p99: float = 0.0
    p999: float = 0.0
    max: float = 0.0
    mean: float = 0.0


class LatencyHistogram:
    """1 µs buckets up to LATENCY_CAP_US, exact values above; cheap to add to."""

    def __init__(self) -> None:
        self.counts = array("q", bytes(8 * LATENCY_CAP_US))
        self.over = array("q")  # microseconds, for values at or above the cap
        self.count = 0
        self.total = 0
        self.max = 0

    def add(self, micros: int) -> None:
        if micros < 0:
            micros = 0  # clock granularity: never seen on one machine, but never index below 0
        if micros < LATENCY_CAP_US:
            self.counts[micros] += 1
        else:
            self.over.append(micros)
        self.count += 1
        self.total += micros
        if micros > self.max:
            self.max = micros

    def quantile(self, q: float) -> float:
        if not self.count:
            return 0.0
        rank = max(1, int(q * self.count + 0.999999))  # the smallest value with >= q below
        running = 0
        for micros, n in enumerate(self.counts):
            running += n
            if running >= rank:
                return float(micros)
        over = sorted(self.over)
        return float(over[min(len(over) - 1, rank - running - 1)])

    def summary(self) -> LatencySummary:
        if not self.count:
            return LatencySummary()
        q = self.quantile
        return LatencySummary(self.count, q(0.5), q(0.9), q(0.99), q(0.999), float(self.max),
                              self.total / self.count)  # fmt: skip


class StreamStats(msgspec.Struct):
    """One stream's counts within the window (sequence checks run throughout)."""

    frames: int = 0
    events: int = 0
    bytes: int = 0
    gaps: int = 0  # Gap markers received
    dropped: int = 0  # events the Gap markers say were dropped
    sequence_errors: int = 0  # frames whose first_sequence did not follow the previous frame
    closed_candles: int = 0  # final candle updates, left out of the latency (see Reader)
    subscribed: bool = False  # the subscription's ack arrived
    error: str = ""  # how the stream ended, if it ended before the window closed
    next_sequence: int = 1


class LoadResult(msgspec.Struct):
    streams: int
    window_s: float
    frames: int
    events: int
    bytes: int
    gaps: int
    dropped: int
    sequence_errors: int
    closed_candles: int  # not in `latency` (see Reader._count)
    per_stream_events: list[int]
    errors: list[str]
    cpu_s: float  # this process's CPU time in the window (saturated near window_s)
    latency: LatencySummary  # event: server receive -> client receive
    transport: LatencySummary  # frame: server sent_time_ns -> client receive
    probes_start: dict[str, dict[str, float]]
    probes_end: dict[str, dict[str, float]]
    failure: str = ""  # the run was not what was asked (e.g. streams never subscribed)
    machine_busy: float = 0.0  # share of all the machine's cores busy in the window (Linux)
    watched_cpu_s: list[float] = []  # CPU time in the window of each `LoadConfig.watch` pid


class Window:
    """Whether counting is on, and since when (ns)."""

    def __init__(self) -> None:
        self.on = False
        self.start_ns = 0


class Reader:
    """Reads one stream's frames and counts them."""

    def __init__(
        self, call: Any, window: Window, latency: LatencyHistogram | None,
        transport: LatencyHistogram | None, every: int = 1,
    ) -> None:  # fmt: skip
        self.call = call
        self.window = window
        self.latency = latency
        self.transport = transport
        self.every = max(1, every)  # time the events of one frame in `every`
        self.counted = 0  # frames counted in the window
        self.stats = StreamStats()
        self.acked = asyncio.Event()

    async def run(self) -> None:
        try:
            await self._read()
        except grpc.aio.AioRpcError as exc:
            if not self.call.cancelled():
                self.stats.error = f"{exc.code().name}: {exc.details()}"

    async def _read(self) -> None:
        read, parse, stats = self.call.read, SlimFrame.FromString, self.stats
        window, clock = self.window, time.time_ns
        while True:
            raw = await read()
            if raw is grpc.aio.EOF:
                stats.error = stats.error or "the server ended the stream"
                return
            now = clock()
            frame = parse(raw)
            events = frame.events
            n = len(events)
            if not n:
                if frame.ack:
                    stats.subscribed = True
                    self.acked.set()
                continue
            if frame.first_sequence != stats.next_sequence:
                stats.sequence_errors += window.on
            stats.next_sequence = frame.first_sequence + n
            if window.on:
                self._count(raw, frame, events, n, now)

    def _count(self, raw: bytes, frame: Any, events: Any, n: int, now: int) -> None:
        stats = self.stats
        stats.frames += 1
        stats.events += n
        stats.bytes += len(raw)
        first = events[0]
        gap = first.HasField("gap")  # the server puts a Gap marker first in its frame
        if gap:
            stats.gaps += 1
            stats.dropped += first.gap.dropped
        if self.transport is not None:
            self.transport.add((now - frame.sent_time_ns) // 1000)
        self.counted += 1
        if self.latency is not None and self.counted % self.every == 0:
            self._time(self.latency, events[1:] if gap else events, now)

    def _time(self, latency: LatencyHistogram, events: Any, now: int) -> None:
        add, since, stats = latency.add, self.window.start_ns, self.stats
        for event in events:
            received = event.receive_time_ns
            if received < since:
                continue  # the state sent on subscribe
            if event.HasField("candle") and event.candle.closed:
                # Stamped with its last trade's receive time, sent when the next
                # bar's first trade comes: that wait is the market's, not Raven's.
                stats.closed_candles += 1
                continue
            add((now - received) // 1000)


def subscribe_all() -> bytes:
    kinds: list[Any] = [int(k) for k in Kind]
    sub = pb.Subscription(symbols=["*"], kinds=kinds)
    return pb.StreamRequest(subscribe=sub).SerializeToString()


async def _heartbeats(calls: Sequence[Any]) -> None:
    """Keep every stream alive past the server's client timeout."""
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        beat = pb.StreamRequest(heartbeat=pb.Heartbeat(time_ns=time.time_ns()))
        data = beat.SerializeToString()
        for call in calls:
            if not call.done():
                with contextlib.suppress(grpc.aio.AioRpcError, grpc.aio.UsageError):
                    await call.write(data)


class LoadConfig(msgspec.Struct, frozen=True):
    target: str
    streams: int = 1
    channels: int = 0  # TCP connections; 0: one per 10 streams
    warmup_s: float = 1.0
    duration_s: float = 5.0
    latency: bool = False
    probes: tuple[str, ...] = ()
    method: str = STREAM_METHOD
    ack_timeout_s: float = 30.0
    latency_every: int = 1  # time the events of one frame in this many, per stream
    watch: tuple[int, ...] = ()  # other processes whose CPU time the window reports

    @property
    def channel_count(self) -> int:
        return self.channels or max(1, (self.streams + 9) // 10)


async def run_load(config: LoadConfig) -> LoadResult:
    """Open the streams, wait for their acks and the warm-up, count for the window."""
    channels = [grpc.aio.insecure_channel(config.target, CHANNEL_OPTIONS)
                for _ in range(config.channel_count)]  # fmt: skip
    drain_wakeups(asyncio.get_running_loop())  # as Raven's client does (raven.grpc_poller)
    window = Window()
    latency = LatencyHistogram() if config.latency else None
    transport = LatencyHistogram() if config.latency else None
    readers: list[Reader] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        request = subscribe_all()
        for i in range(config.streams):
            method: Any = channels[i % len(channels)].stream_stream(config.method)
            call = method()
            # A server that refuses the call may answer before the write: the reader
            # gets that status and the result says so (no crash here).
            with contextlib.suppress(grpc.aio.AioRpcError):
                await call.write(request)
            reader = Reader(call, window, latency, transport, config.latency_every)
            readers.append(reader)
            tasks.append(asyncio.create_task(reader.run(), name=f"read {i}"))
        tasks.append(asyncio.create_task(_heartbeats([r.call for r in readers]), name="beats"))
        # A server too busy to ack them all in time is a result, not an error:
        # the window runs with what there is, and says so.
        failure = await _wait_acked(readers, config.ack_timeout_s)
        await asyncio.sleep(config.warmup_s)
        result = await _measure(config, window, readers, latency, transport)
        result.failure = failure
        return result
    finally:
        for reader in readers:
            reader.call.cancel()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for channel in channels:
            await channel.close()


async def _wait_acked(readers: Sequence[Reader], timeout: float) -> str:
    """'' once every stream's subscription is acked; what is missing after `timeout`."""
    waits = [asyncio.ensure_future(r.acked.wait()) for r in readers]
    try:
        await asyncio.wait_for(asyncio.gather(*waits), timeout)
    except TimeoutError:
        missing = sum(not r.acked.is_set() for r in readers)
        errors = sorted({r.stats.error for r in readers if r.stats.error})
        return f"{missing} of {len(readers)} streams not subscribed after {timeout:g} s" + (
            f": {'; '.join(errors)}" if errors else ""
        )
    finally:
        for w in waits:
            w.cancel()
    return ""


async def _probe(urls: Sequence[str]) -> dict[str, dict[str, float]]:
    return {url: await asyncio.to_thread(scrape, url) for url in urls}


async def _measure(
    config: LoadConfig, window: Window, readers: Sequence[Reader],
    latency: LatencyHistogram | None, transport: LatencyHistogram | None,
) -> LoadResult:  # fmt: skip
    start_probes = await _probe(config.probes)
    busy0 = cpu_ticks()
    watched0 = [process_cpu_s(pid) for pid in config.watch]
    cpu0, t0 = time.process_time(), time.monotonic()
    window.start_ns = time.time_ns()
    window.on = True
    await asyncio.sleep(config.duration_s)
    window.on = False
    elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
    busy = busy_share(busy0, cpu_ticks())
    watched = [process_cpu_s(pid) - c for pid, c in zip(config.watch, watched0, strict=True)]
    end_probes = await _probe(config.probes)
    stats = [r.stats for r in readers]
    return LoadResult(
        streams=len(readers), window_s=elapsed,
        frames=sum(s.frames for s in stats), events=sum(s.events for s in stats),
        bytes=sum(s.bytes for s in stats), gaps=sum(s.gaps for s in stats),
        dropped=sum(s.dropped for s in stats),
        sequence_errors=sum(s.sequence_errors for s in stats),
        closed_candles=sum(s.closed_candles for s in stats),
        per_stream_events=[s.events for s in stats],
        errors=[s.error for s in stats if s.error], cpu_s=cpu,
        latency=latency.summary() if latency else LatencySummary(),
        transport=transport.summary() if transport else LatencySummary(),
        probes_start=start_probes, probes_end=end_probes, machine_busy=busy,
        watched_cpu_s=watched,
    )  # fmt: skip


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far, from /proc; 0.0 where unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name (field 2) may hold spaces: count fields after its ')'.
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat; (0, 0) elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (not guest)
    return total - idle, total


def busy_share(start: tuple[int, int], end: tuple[int, int]) -> float:
    total = end[1] - start[1]
    return (end[0] - start[0]) / total if total > 0 else 0.0


# --- the unary round-trip baseline ------------------------------------------------


class EchoResult(msgspec.Struct):
    calls: int
    payload_bytes: int
    round_trip: LatencySummary


async def run_echo(target: str, method: str, calls: int, payload_bytes: int) -> EchoResult:
    """`calls` sequential unary calls of `payload_bytes` each; round-trip times."""
    hist = LatencyHistogram()
    payload = bytes(payload_bytes)
    async with grpc.aio.insecure_channel(target, CHANNEL_OPTIONS) as channel:
        echo: Any = channel.unary_unary(method)  # raw bytes both ways
        drain_wakeups(asyncio.get_running_loop())
        for _ in range(min(50, calls)):  # warm the connection up
            await echo(payload)
        for _ in range(calls):
            start = time.perf_counter_ns()
            await echo(payload)
            hist.add((time.perf_counter_ns() - start) // 1000)
    return EchoResult(calls, payload_bytes, hist.summary())


# --- command line -------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m raven.bench.loadclient",
        description="Raven benchmark load client (JSON on stdout)",
    )
    parser.add_argument("--target", required=True, help="server host:port (loopback)")
    parser.add_argument("--streams", type=int, default=1, help="streams to open (default 1)")
    parser.add_argument("--channels", type=int, default=0,
                        help="TCP connections to spread them on (default: one per 10)")  # fmt: skip
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before counting")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds counted")
    parser.add_argument("--latency", action="store_true", help="measure per-event latency")
    parser.add_argument("--latency-every", type=int, default=1, metavar="K",
                        help="time one frame in K per stream (default 1: all)")  # fmt: skip
    parser.add_argument("--probe", action="append", default=[], metavar="URL",
                        help="URL read at the window's start and end (repeatable)")  # fmt: skip
    parser.add_argument("--watch-pid", type=int, action="append", default=[], metavar="PID",
                        help="report its CPU time in the window (repeatable)")  # fmt: skip
    parser.add_argument("--method", default=STREAM_METHOD, help="gRPC method path to stream from")
    parser.add_argument("--echo", type=int, default=0, metavar="N",
                        help="instead: N unary round trips to --method")  # fmt: skip
    parser.add_argument("--echo-bytes", type=int, default=100, help="payload of each round trip")
    args = parser.parse_args(argv)
    if args.streams < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--streams must be >= 1, --duration > 0, --warmup >= 0")
    return args


async def _main(args: argparse.Namespace) -> bytes:
    if args.echo:
        return msgspec.json.encode(await run_echo(args.target, args.method, args.echo,
                                                  args.echo_bytes))  # fmt: skip
    config = LoadConfig(
        args.target, args.streams, args.channels, args.warmup, args.duration, args.latency,
        tuple(args.probe), args.method, latency_every=args.latency_every,
        watch=tuple(args.watch_pid),
    )  # fmt: skip
    return msgspec.json.encode(await run_load(config))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        out = asyncio.run(_main(args))
    except (RuntimeError, OSError, grpc.aio.AioRpcError) as exc:
        print(f"loadclient: {exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(out + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
