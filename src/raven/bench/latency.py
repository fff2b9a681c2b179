"""Scenario 2, end-to-end latency: simulator -> server -> gRPC -> client.

At 1,000 and 10,000 events/s into the server, with 1 and 10 clients
subscribed to everything (all kinds, symbols "*"), over the 20-symbol mix
of `netmix`. `raven sim` and `raven serve` run as child processes (storage
off, validation on); the clients are one load-client process (see
`loadclient`) that takes, per event, the client's `time.time_ns()` at the
frame's arrival minus the event's `receive_time_ns` (stamped by the server
when the exchange frame arrived; same machine clock). Percentiles p50, p90,
p99, p99.9 and max over every event of the window; final candle updates are
left out (they carry their last trade's time; see `loadclient`). Above
TIME_ALL_UP_TO events/s x clients, the events of one frame in k are timed
(chosen by position, so the sample is fair) to keep the client's own CPU,
which the server shares, at what 10,000 events/s to one client costs.

Drops are what the clients saw (Gap markers, sequence holes) plus what the
server replaced or dropped for them (its conflate / drop_oldest counters
over the same window). The input rate is what the server really ingested
(its /metrics), beside what the simulator was set to and really sent.

After the windows at each rate, with the feed still running and no client
left, SCRAPES scrapes of the server's /metrics are timed from request to
last byte: a scrape runs on the server's event loop, so every stream waits
for it.

Baseline, same run: the loopback round trip of a bare frame of the average
frame size through a bare grpc.aio server (`bare`), so latencies compare
across machines as multiples of it.
"""

from __future__ import annotations

import asyncio
import time

import msgspec

from raven.bench import netmix
from raven.bench.bare import ECHO_METHOD, start_bare
from raven.bench.base import Mode, Result, progress
from raven.bench.loadclient import EchoResult, LoadResult, run_echo
from raven.bench.procs import Cluster, http_get, sim_and_server
from raven.bench.report import Row

SCENARIO = "latency"
RATES = (1_000, 10_000)  # events/s into the server
CLIENTS = (1, 10)
TARGET_RATE, TARGET_CLIENTS = 10_000, 10
ECHO_CALLS = 2000
# Events/s in x clients up to which every event is timed; above, one frame in
# (that / this) per stream, so the load client's own CPU stays near what one
# client at 10,000 events/s costs (it shares the machine with the server).
TIME_ALL_UP_TO = 10_000
SCRAPES = 20  # /metrics scrapes timed per rate


class Run(msgspec.Struct):
    """One (rate, clients) measurement."""

    rate: int
    clients: int
    sim_rate: float  # simulator transactions/s it was set to
    every: int  # the events of one frame in this many were timed, per stream
    load: LoadResult
    counters: netmix.Counters

    @property
    def label(self) -> str:
        return f"{self.rate:,} ev/s, {netmix.clients_text(self.clients)}"

    @property
    def drops(self) -> int:
        c = self.counters
        return self.load.dropped + self.load.sequence_errors + c.conflated + c.dropped


class Scrapes(msgspec.Struct):
    """/metrics scrapes timed at one input rate, no client attached."""

    rate: int
    seconds: list[float]  # each scrape, request to last byte
    bytes: int  # the last scrape's size


def scenario(mode: Mode) -> Result:
    warmup, window = mode.pick(1.0, 3.0), mode.pick(3.0, 20.0)
    return run(RATES, CLIENTS, warmup, window, ECHO_CALLS)


def run(
    rates: tuple[int, ...], clients: tuple[int, ...], warmup: float, window: float,
    echo_calls: int, n_symbols: int = 20,
) -> Result:  # fmt: skip
    runs, scrapes = [], []
    for rate in rates:
        measured, scraped = measure(rate, clients, warmup, window, n_symbols)
        runs += measured
        scrapes.append(scraped)
    frame_bytes = netmix.average(sum(r.load.bytes for r in runs), sum(r.load.frames for r in runs))
    echo = echo_baseline(max(64, int(frame_bytes)), echo_calls)
    rows = [row for r in runs for row in rows_of(r, echo)]
    rows += [scrape_row(s) for s in scrapes]
    rows.append(Row(SCENARIO, "loopback gRPC round trip p50 (baseline)",
                    echo.round_trip.p50 / 1000, "ms",
                    note=f"bare grpc.aio echo of {echo.payload_bytes} B (the average frame), "
                    f"{echo.calls} calls; p99 {echo.round_trip.p99 / 1000:.3f} ms"))  # fmt: skip
    return Result(rows, notes(runs))


def measure(
    rate: int, clients: tuple[int, ...], warmup: float, window: float, n_symbols: int
) -> tuple[list[Run], Scrapes]:
    """One simulator + server at `rate`: one load window per client count, then
    the /metrics scrapes."""
    market = netmix.market_for(rate, n_symbols)
    out = []
    with sim_and_server(market) as (cluster, sim, server):
        for n in clients:
            every = max(1, rate * n // TIME_ALL_UP_TO)
            config = netmix.load_config(server, sim, n, warmup, window, every)
            load = netmix.run_load(cluster, config)
            counters = netmix.counters(load, server, sim)
            out.append(Run(rate, n, market.rate, every, load, counters))
            progress.step(step_line(out[-1]))
        return out, time_scrapes(server.metrics_url, rate, SCRAPES)


def step_line(run: Run) -> str:
    lat, ingested = run.load.latency, run.counters.ingested_per_s
    return (f"{run.label}: p50 {lat.p50 / 1000:.2f} ms, p99 {lat.p99 / 1000:.2f} ms, "
            f"{run.drops:,} drops, {ingested:,.0f} events/s ingested")  # fmt: skip


def time_scrapes(url: str, rate: int, count: int) -> Scrapes:
    seconds, body = [], b""
    for _ in range(count):
        start = time.perf_counter()
        body = http_get(url)
        seconds.append(time.perf_counter() - start)
        time.sleep(0.05)  # not back to back: the feed gets the loop in between
    return Scrapes(rate, seconds, len(body))


def scrape_row(s: Scrapes) -> Row:
    ordered = sorted(s.seconds)
    return Row(SCENARIO, f"/metrics scrape p50, {s.rate:,} ev/s in", ordered[len(ordered) // 2]
               * 1000, "ms", note=f"max {ordered[-1] * 1000:.1f} ms over {len(ordered)} scrapes "
               f"of {s.bytes:,} B, request to last byte; no client attached; the server's "
               "event loop (every stream) waits for most of it")  # fmt: skip


def echo_baseline(payload_bytes: int, calls: int) -> EchoResult:
    """Round trips of a frame-sized payload to a bare server (as `loadclient --echo`)."""
    with Cluster() as cluster:
        bare = start_bare(cluster)
        return asyncio.run(run_echo(bare.target, ECHO_METHOD, calls, payload_bytes))


def rows_of(run: Run, echo: EchoResult) -> list[Row]:
    rows = percentile_rows(run, echo)
    lat, c, load = run.load.latency, run.counters, run.load
    target = run.rate == TARGET_RATE and run.clients == TARGET_CLIENTS
    per_client = netmix.average(load.events, load.window_s * run.clients)
    rows += [
        Row(SCENARIO, f"events received per client, {run.label}", per_client, "events/s",
            note=f"{load.events:,} events in {load.frames:,} frames "
            f"({netmix.average(load.events, load.frames):.1f}/frame) over {load.window_s:.1f} s; "
            f"{lat.count:,} timed" + (f" (the events of 1 frame in {run.every})"
                                      if run.every > 1 else "")
            + f", {load.closed_candles:,} final candles not timed"),
        Row(SCENARIO, f"drops, {run.label}", float(run.drops), "events",
            target="0" if target else "",
            note=f"Gap markers {load.gaps} ({load.dropped} events), sequence errors "
            f"{load.sequence_errors}, server conflated {c.conflated}, dropped {c.dropped}"),
        Row(SCENARIO, f"server CPU per delivery, {run.label}",
            netmix.cpu_per_delivery_us(load, c), "µs",
            note=f"server CPU {c.server_cpu * c.window_s:.2f} s over {c.window_s:.1f} s / "
            f"{load.events:,} events received by the clients"),
        Row(SCENARIO, f"input rate achieved, {run.label}", c.ingested_per_s, "events/s",
            note=f"asked {run.rate:,}; sim set to {run.sim_rate:,.0f} transactions/s, made "
            f"{c.transactions_per_s:,.0f}/s and sent {c.offered_per_s:,.0f} events/s; "
            + netmix.cpu_shares(c, load.machine_busy)),
    ]  # fmt: skip
    return rows


def percentile_rows(run: Run, echo: EchoResult) -> list[Row]:
    lat, transport, c = run.load.latency, run.load.transport, run.counters
    target = run.rate == TARGET_RATE and run.clients == TARGET_CLIENTS
    baseline, label = echo.round_trip.p50 / 1000, "bare gRPC round trip p50"
    rows = []
    for name, value in (("p50", lat.p50), ("p90", lat.p90), ("p99", lat.p99),
                        ("p99.9", lat.p999), ("max", lat.max)):  # fmt: skip
        note = ""
        if name in ("p50", "p99"):
            part = transport.p50 if name == "p50" else transport.p99
            note = f"transport alone (frame sent_time -> client) {name} {part / 1000:.3f} ms"
            wait = c.write_p50 if name == "p50" else c.write_p99
            if c.writes:
                note += (f"; the server's gRPC write of a frame waited {name} <= "
                         f"{wait * 1000:g} ms for its completion "
                         f"({c.writes:,} writes)")  # fmt: skip
        goal = "<= 2 ms" if target and name == "p99" else ""
        metric = f"latency {name}, {run.label}"
        rows.append(Row(SCENARIO, metric, value / 1000, "ms", baseline, label, goal, note))
    return rows


def notes(runs: list[Run]) -> list[str]:
    out = [
        "Latency: server receive_time_ns -> client time.time_ns() at the frame's arrival, per "
        "event; one load-client process holds all the streams (C-level slim protobuf parse, "
        "no model objects), so with 10 clients its own queueing is part of the figure.",
    ]
    for r in runs:
        if r.load.failure:
            out.append(f"{r.label}: {r.load.failure}")
        if r.load.errors:
            out.append(f"{r.label}: streams ended early: {'; '.join(sorted(set(r.load.errors)))}")
        cpu = netmix.average(r.load.cpu_s, r.load.window_s)
        if cpu > 0.9:
            out.append(f"{r.label}: the load client used {cpu:.0%} of a core (saturated)")
    return out
