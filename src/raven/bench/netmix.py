"""What the networked benchmarks share: the feed mix, its rate, load runs, window counters.

The mix is the issue's: aggTrade, bookTicker, diff depth, markPrice@1s and
kline_1m for every symbol. Diff depth is `depth@0ms` here, not the
`@100ms` of `feed.py`: the simulator, the server and the load client share
two cores, and @100ms needs about twice the simulator transactions for the
same server events/s (its diffs merge a window of transactions into one
event), which would take CPU the server needs. Its diffs are smaller (1-5
levels instead of 10-20).

The simulator's `rate` counts market transactions, not events. One
transaction makes one diff, a bookTicker when the touch moves and an
aggTrade per level it sweeps: the events per transaction are counted on
the simulator's own seeded model (`events_per_transaction`), the timed
streams add a fixed number per second, and the rate for a target
events/s follows. What the server really ingested in a window is read
from its /metrics (`raven_pipeline_events_total`), what the simulator
really sent from its /_sim/stats, and both are reported.
"""

from __future__ import annotations

import re
import subprocess

import msgspec

from raven.bench.feed import symbols
from raven.bench.loadclient import LoadConfig, LoadResult
from raven.bench.procs import BenchError, Child, Cluster, Market, Server, Sim
from raven.core.latency import Histogram
from raven.sim.market import MarketModel

MIX = ("aggTrade", "bookTicker", "depth@0ms", "markPrice@1s", "kline_1m")
SEED = 42
TIMED_PER_S = {"markPrice@1s": 1.0, "kline_1m": 4.0, "depth@100ms": 10.0}  # per symbol
CALIBRATION_STEPS = 5000


def events_per_transaction(n_symbols: int, streams: tuple[str, ...], book_depth: int) -> float:
    """Events the server gets per simulator transaction, on the seeded model."""
    model = MarketModel(symbols(n_symbols), SEED, depth=book_depth, history=100)
    total = 0
    for i in range(CALIBRATION_STEPS):
        step = model.advance(1_790_000_000_000 + i)
        total += "depth@0ms" in streams
        total += step.touch_changed and "bookTicker" in streams
        if "aggTrade" in streams:
            total += sum(1 for p in step.prints if not p.insurance)
    return total / CALIBRATION_STEPS


def market_for(
    events_per_s: float, n_symbols: int = 20, book_depth: int = 1000, streams: tuple[str, ...] = MIX
) -> Market:
    """The simulator settings that should make the server ingest `events_per_s`."""
    timed = n_symbols * sum(TIMED_PER_S.get(s, 0.0) for s in streams)
    per_txn = events_per_transaction(n_symbols, streams, book_depth)
    rate = max(1.0, (events_per_s - timed) / per_txn)
    return Market(symbols(n_symbols), streams, round(rate, 1), SEED, book_depth)


class Counters(msgspec.Struct):
    """Server and simulator counters over one load window, per second where a rate."""

    window_s: float
    ingested_per_s: float  # events the server's pipeline took in
    offered_per_s: float  # frames the simulator sent (one event each in this mix)
    transactions_per_s: float  # simulator market transactions
    published_per_s: float  # events the server's bus fanned out (derived ones included)
    queued: int  # events queued to client streams
    sent: int  # events written to client streams
    conflated: int  # events replaced by newer ones (policy CONFLATE) for a slow stream
    dropped: int  # events dropped (policy DROP_OLDEST) for a slow stream
    backlog: int  # events queued for the client streams at the window's end
    server_cpu: float  # the server process's CPU time / window (1.0 = one core, saturated)
    sim_cpu: float  # the simulator's, the same way (0.0 when it was not watched)
    load_cpu: float  # the load client's own
    writes: int = 0  # gRPC writes of frames the server completed in the window
    write_p50: float = 0.0  # seconds a write waited for its completion: bucket bounds
    write_p99: float = 0.0


WRITE_BUCKET = "raven_stage_latency_seconds_bucket"
WRITE_STAGE = 'stage="sent_to_written"'
_LE = re.compile(r'le="([^"]+)"')


def histogram_window(start: dict[str, float], end: dict[str, float]) -> Histogram:
    """The server's write-wait histogram over a window, from two scrapes of its
    cumulative buckets (empty when the server doesn't export it)."""
    cumulative = []
    for key, value in end.items():
        if key.startswith(WRITE_BUCKET + "{") and WRITE_STAGE in key:
            found = _LE.search(key)
            if found:
                cumulative.append((float(found.group(1)), int(value - start.get(key, 0.0))))
    cumulative.sort()
    hist = Histogram(tuple(bound for bound, _ in cumulative[:-1]))  # the last is +Inf
    below = 0
    for i, (_, running) in enumerate(cumulative):
        hist.buckets[i], below = running - below, running
    return hist


def counters(result: LoadResult, server: Server, sim: Sim) -> Counters:
    """The window's deltas of the probes the load client read (server first, then sim)."""

    def delta(url: str, name: str) -> float:
        return result.probes_end[url].get(name, 0.0) - result.probes_start[url].get(name, 0.0)

    m, s, w = server.metrics_url, sim.stats_url, max(result.window_s, 1e-9)
    writes = histogram_window(result.probes_start[m], result.probes_end[m])
    return Counters(
        window_s=w,
        ingested_per_s=delta(m, "raven_pipeline_events_total") / w,
        offered_per_s=delta(s, "frames") / w,
        transactions_per_s=delta(s, "steps") / w,
        published_per_s=delta(m, "raven_bus_published_total") / w,
        queued=int(delta(m, "raven_stream_events_queued_total")),
        sent=int(delta(m, "raven_stream_events_sent_total")),
        conflated=int(delta(m, 'raven_stream_events_dropped_total{policy="conflate"}')),
        dropped=int(delta(m, 'raven_stream_events_dropped_total{policy="drop_oldest"}')),
        backlog=int(result.probes_end[m].get("raven_stream_queue_depth", 0.0)),
        server_cpu=delta(m, "process_cpu_seconds_total") / w,
        sim_cpu=sum(result.watched_cpu_s[:1]) / w,  # `load_config` watches the simulator
        load_cpu=result.cpu_s / w,
        writes=writes.count,
        write_p50=writes.quantile(0.5),
        write_p99=writes.quantile(0.99),
    )


def load_config(
    server: Server, sim: Sim, streams: int, warmup_s: float, window_s: float, every: int
) -> LoadConfig:
    """A timed window over `streams` streams of everything, with the server's and
    the simulator's counters (and the simulator's CPU time) read at both ends."""
    return LoadConfig(server.target, streams, 0, warmup_s, window_s, latency=True,
                      probes=(server.metrics_url, sim.stats_url), latency_every=every,
                      watch=(sim.child.pid,))  # fmt: skip


def cpu_shares(c: Counters, busy: float) -> str:
    """Who used the cores in the window, as a note."""
    return (f"server CPU {c.server_cpu:.0%} of a core, simulator {c.sim_cpu:.0%}, "
            f"load client {c.load_cpu:.0%}; all cores {busy:.0%} busy")  # fmt: skip


def load_args(config: LoadConfig) -> list[str]:
    args = ["-m", "raven.bench.loadclient", "--target", config.target,
            "--streams", str(config.streams), "--channels", str(config.channels),
            "--warmup", repr(config.warmup_s),
            "--duration", repr(config.duration_s), "--method", config.method]  # fmt: skip
    if config.latency:
        args += ["--latency", "--latency-every", str(config.latency_every)]
    for pid in config.watch:
        args += ["--watch-pid", str(pid)]
    for url in config.probes:
        args += ["--probe", url]
    return args


def start_load(cluster: Cluster, config: LoadConfig) -> Child:
    """The load client as a child process (its JSON result goes to its log)."""
    return cluster.spawn("load", load_args(config))


def finish_load(cluster: Cluster, child: Child, timeout: float) -> LoadResult:
    """Wait for the load client (killed after `timeout`) and read its result."""
    try:
        child.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        cluster.stop(child)
        raise BenchError(f"load client not done after {timeout:g} s; see {child.log}") from None
    cluster.stop(child)
    lines = [ln for ln in child.log.read_text(errors="replace").splitlines() if ln.startswith("{")]
    if child.proc.returncode != 0 or not lines:
        raise BenchError(f"load client failed (exit {child.proc.returncode}): {child.tail(5)}")
    return msgspec.json.decode(lines[-1], type=LoadResult)


def run_load(cluster: Cluster, config: LoadConfig) -> LoadResult:
    child = start_load(cluster, config)
    return finish_load(cluster, child, config.warmup_s + config.duration_s + 120.0)


def clients_text(n: int) -> str:
    """'1 client', '10 clients'."""
    return f"{n} client{'s' if n != 1 else ''}"


def average(total: float, count: float) -> float:
    return total / count if count else 0.0


def cpu_per_delivery_us(load: LoadResult, c: Counters) -> float:
    """Server CPU µs (utime + stime of its process, from /proc via its
    process_cpu_seconds_total) per event the clients received, over the window.
    Unlike rates, this holds up when other processes share the cores."""
    return average(c.server_cpu * c.window_s * 1e6, load.events)
