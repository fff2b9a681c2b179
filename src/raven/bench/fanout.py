"""Scenario 3, fan-out: 1, 10 and 100 clients subscribed to everything.

For each client count, the highest input rate (events/s into the server,
over the 20-symbol mix of `netmix`) it sustains for the window with zero
drops, and the events delivered per second across all clients there.

The search climbs a ladder of input rates. Each step starts a fresh
`raven sim` + `raven serve` pair (the simulator's rate is fixed at start)
and runs one load window per client count still standing. A count
sustains a step when, over the window:

- nothing was lost: no Gap markers or sequence holes at the clients, and
  nothing conflated or dropped by the server for them (its counters);
- the clients kept up: the server's queues for them (queued - sent -
  conflated - dropped over the window) did not grow so fast that, kept up
  for SUSTAIN_S, they would pass the server's queue_size per stream, where
  its overflow policy starts, and held at most BACKLOG of it per stream at
  the window's end (a short quick-mode window can't see the overflow itself);
- the server ingested at least INPUT_FLOOR of the rate asked (the
  simulator, the server and the clients share the machine; a rate the
  whole loop cannot make is not sustained either).

A count that fails a step is not tried higher. The clients are one load
client process (`loadclient`): N streams over one TCP connection per 10
streams, each frame parsed by protobuf's C parser into slim classes (the
sequence number, the events' count, a Gap marker check): no model objects.
The events of one frame in TIME_EVERY are timed, for a latency per step.

Baseline, same run: a bare grpc.aio server (`bare`) flooding the same
number of streams with frames of the same shape (events per frame, bytes
per event) as Raven sent at the best step: what gRPC in Python carries on
this machine when the server does nothing else.
"""

from __future__ import annotations

import msgspec

from raven.bench import netmix
from raven.bench.bare import FLOOD_METHOD, start_bare
from raven.bench.base import Mode, Result, progress
from raven.bench.loadclient import LoadConfig, LoadResult
from raven.bench.procs import Cluster, sim_and_server
from raven.bench.report import Row

SCENARIO = "fanout"
CLIENTS = (1, 10, 100)
QUICK_LADDER = (250, 1_000, 3_000, 10_000)  # events/s into the server
FULL_LADDER = (250, 500, 1_000, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000)
TARGET_CLIENTS, TARGET_RATE, TARGET_DELIVERIES = 100, 10_000, 1_000_000
SUSTAIN_S = 30.0  # the window: a backlog must not overflow within it
QUEUE_SIZE = 10_000  # the server's default [server] queue_size, events per stream
BACKLOG = 0.1  # of QUEUE_SIZE: more left queued per stream at the end is falling behind
TIME_EVERY = 20  # one frame in this many per stream is timed (latency, for the notes)
INPUT_FLOOR = 0.85  # events ingested / events asked


class Trial(msgspec.Struct):
    rate: int  # events/s asked
    clients: int
    load: LoadResult
    counters: netmix.Counters
    failure: str = ""  # why the step was not sustained; "" when it was

    @property
    def deliveries_per_s(self) -> float:
        return netmix.average(self.load.events, self.load.window_s)


def judge(load: LoadResult, c: netmix.Counters, rate: int) -> str:
    """'' when the window was sustained, else the reasons."""
    reasons = [load.failure] if load.failure else []
    if load.errors:
        reasons.append(f"streams ended: {'; '.join(sorted(set(load.errors)))}")
    lost = load.dropped + c.conflated + c.dropped
    if lost or load.gaps or load.sequence_errors:
        reasons.append(f"{lost} events dropped or conflated ({load.gaps} Gap markers, "
                       f"{load.sequence_errors} sequence errors)")  # fmt: skip
    growth = netmix.average(c.queued - c.sent - c.conflated - c.dropped, c.window_s * load.streams)
    if growth * SUSTAIN_S > QUEUE_SIZE:
        reasons.append(f"server queues grew {growth:,.0f} events/s per stream (full at "
                       f"{QUEUE_SIZE:,} in {QUEUE_SIZE / growth:.0f} s)")  # fmt: skip
    backlog = netmix.average(c.backlog, load.streams)
    if backlog > BACKLOG * QUEUE_SIZE:
        reasons.append(f"{backlog:,.0f} events per stream still queued at the end")
    if c.ingested_per_s < INPUT_FLOOR * rate:
        reasons.append(f"server ingested {c.ingested_per_s:,.0f} events/s of {rate:,} asked")
    return "; ".join(reasons)


def scenario(mode: Mode) -> Result:
    ladder = QUICK_LADDER if mode.quick else FULL_LADDER
    warmup, window = mode.pick(1.0, 3.0), mode.pick(3.0, 30.0)
    return run(ladder, CLIENTS, warmup, window, baseline_s=mode.pick(2.0, 10.0))


def run(
    ladder: tuple[int, ...], clients: tuple[int, ...], warmup: float, window: float,
    baseline_s: float, n_symbols: int = 20,
) -> Result:  # fmt: skip
    trials = search(ladder, clients, warmup, window, n_symbols)
    rows: list[Row] = []
    for n in clients:
        rows += rows_of(n, trials[n], flood(n, trials[n], baseline_s), ladder)
    return Result(rows, notes(trials, window))


def search(
    ladder: tuple[int, ...], clients: tuple[int, ...], warmup: float, window: float,
    n_symbols: int,
) -> dict[int, list[Trial]]:  # fmt: skip
    """Climb the ladder; a client count leaves at its first failed step."""
    trials: dict[int, list[Trial]] = {n: [] for n in clients}
    standing = list(clients)
    for step, rate in enumerate(ladder, 1):
        if not standing:
            break
        market = netmix.market_for(rate, n_symbols)
        with sim_and_server(market) as (cluster, sim, server):
            for n in list(standing):
                config = netmix.load_config(server, sim, n, warmup, window, TIME_EVERY)
                load = netmix.run_load(cluster, config)
                counters = netmix.counters(load, server, sim)
                trial = Trial(rate, n, load, counters, judge(load, counters, rate))
                trials[n].append(trial)
                progress.step(f"step {step}/{len(ladder)}, {rate:,} events/s asked, "
                              f"{netmix.clients_text(n)}: {verdict(trial)}")  # fmt: skip
                if trial.failure:
                    standing.remove(n)
    return trials


def verdict(trial: Trial) -> str:
    if trial.failure:
        return f"not sustained ({trial.failure[:160]})"
    return f"sustained, {trial.deliveries_per_s:,.0f} deliveries/s"


def best(trials: list[Trial]) -> Trial | None:
    passed = [t for t in trials if not t.failure]
    return passed[-1] if passed else None


def shaped(trials: list[Trial]) -> Trial:
    """The trial whose frames the baseline copies: the best, else the busiest."""
    return best(trials) or max(trials, key=lambda t: t.load.frames)


def flood(n: int, trials: list[Trial], seconds: float) -> LoadResult:
    """The bare server flooding `n` streams with frames shaped like Raven's."""
    load = shaped(trials).load
    per_frame = max(1, round(netmix.average(load.events, load.frames)))
    event_bytes = max(16, round(netmix.average(load.bytes, load.events)))
    with Cluster() as cluster:
        bare = start_bare(cluster, per_frame, event_bytes)
        config = LoadConfig(bare.target, n, 0, 0.5, seconds, method=FLOOD_METHOD)
        return netmix.run_load(cluster, config)


def rows_of(n: int, trials: list[Trial], bare: LoadResult, ladder: tuple[int, ...]) -> list[Row]:
    top = best(trials)
    failed = next((t for t in trials if t.failure), None)
    who = netmix.clients_text(n)
    target = n == TARGET_CLIENTS
    bare_rate = netmix.average(bare.events, bare.window_s)
    shape = shaped(trials)
    load = shape.load
    shape_note = (f"{netmix.average(load.events, load.frames):.1f} events/frame, "
                  f"{netmix.average(load.bytes, load.events):.0f} B/event, "
                  f"load client CPU {netmix.average(load.cpu_s, load.window_s):.0%}")  # fmt: skip
    if failed is None:
        limit = f"sustained every step up to {ladder[-1]:,} events/s asked"
    else:
        limit = f"at {failed.rate:,} asked: {failed.failure}"
    sustained = top.counters.ingested_per_s if top else 0.0
    return [
        Row(SCENARIO, f"highest sustained input rate, {who}", sustained, "events/s",
            target=f">= {TARGET_RATE:,} events/s" if target else "",
            note=(f"step {top.rate:,} asked; " if top else "no step sustained; ") + limit),
        Row(SCENARIO, f"deliveries across clients, {who}", shape.deliveries_per_s,
            "events/s", baseline=bare_rate,
            baseline_label=f"bare gRPC flood, {n} streams, same frames",
            target=f">= {TARGET_DELIVERIES:,}/s" if target else "",
            note=("at the highest sustained step; " if top else
                  f"NOT sustained, at {shape.rate:,} asked; ") + shape_note),
        Row(SCENARIO, f"server CPU per delivery, {who}",
            netmix.cpu_per_delivery_us(load, shape.counters), "µs",
            note=(f"at {shape.rate:,} events/s asked; " if top else
                  f"NOT sustained, at {shape.rate:,} asked; ")
            + "server process CPU over the window / events the clients received"),
    ]  # fmt: skip


def notes(trials: dict[int, list[Trial]], window: float) -> list[str]:
    out = [
        f"Windows of {window:g} s. Load clients: one process, N grpc.aio streams (one TCP "
        "connection per 10), each subscribed to every kind of every symbol; each frame is "
        "parsed by protobuf's C parser into slim classes (sequence, event count, Gap check), "
        f"no Python objects per event; the events of 1 frame in {TIME_EVERY} are timed "
        "(server receive -> client) for the latency in the steps below.",
    ]
    for n, steps in trials.items():
        text = ", ".join(
            f"{t.rate:,}: {'ok' if not t.failure else 'FAIL'} ({t.deliveries_per_s:,.0f} "
            f"deliveries/s, in {t.counters.ingested_per_s:,.0f}/s, latency p99 "
            f"{t.load.latency.p99 / 1000:,.1f} ms, "
            f"{netmix.cpu_per_delivery_us(t.load, t.counters):.2f} µs/delivery, "
            f"{netmix.cpu_shares(t.counters, t.load.machine_busy)})"
            for t in steps
        )
        out.append(f"{n} clients, steps asked (events/s): {text}")
    return out
