"""Scenario 4, memory: the server's resident memory under a steady feed.

50 symbols with full books (1,000 levels a side; the server loads 1,000-
level snapshots), every stream of the `netmix` mix, 10 clients subscribed
to everything, for 5 minutes (quick mode: 45 s). The server is `raven serve`
in a child process; its resident memory is read from /proc/<pid>/status
(VmRSS; Linux only) once with the books loaded and no client, then every
few seconds while the clients stream. Reported: the last sample, the peak,
and the growth per minute as the least-squares slope over the second half
of the samples (the first half holds the start-up: queues, caches and the
allocator settling). With each sample the server's client queue depth
(`raven_stream_queue_depth` from /metrics) is read too, and its peak is
reported: memory freed after a backlog stays resident, so growth that
follows a backlog is the CPU's doing, not a leak.

Baseline, same run: the resident memory of a Python process that imports
what `raven serve` imports and holds no data, so the figure splits into
the fixed cost of the interpreter and libraries and what Raven keeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from raven.bench import netmix
from raven.bench.base import Mode, Result, progress
from raven.bench.loadclient import LoadConfig
from raven.bench.procs import BenchError, Cluster, rss_bytes, scrape, sim_and_server
from raven.bench.report import Row

SCENARIO = "memory"
SYMBOLS, CLIENTS, BOOK_DEPTH = 50, 10, 1000
RATE = 2_000  # events/s into the server: a steady feed the 10 clients keep up with
MB = 1024 * 1024
PROGRESS_S = 30.0  # a progress line this often while sampling
IMPORTS = "import raven.cli, raven.app"  # what `raven serve` loads before any data
PRINT_RSS = (
    "import re, pathlib; status = pathlib.Path('/proc/self/status').read_text(); "
    "print('rss', int(re.search(r'VmRSS:\\s+(\\d+)', status).group(1)) * 1024)"
)


def scenario(mode: Mode) -> Result:
    return run(mode.pick(45.0, 300.0), mode.pick(1.0, 5.0), RATE, SYMBOLS, CLIENTS)


def run(seconds: float, every: float, rate: int, n_symbols: int, clients: int) -> Result:
    base = import_baseline()
    market = netmix.market_for(rate, n_symbols, BOOK_DEPTH)
    with sim_and_server(market) as (cluster, sim, server):
        pid = server.child.pid
        loaded = rss_bytes(pid)
        config = LoadConfig(server.target, clients, 0, 0.0, seconds,
                            probes=(server.metrics_url, sim.stats_url))  # fmt: skip
        child = netmix.start_load(cluster, config)
        depths: list[int] = []
        shown = [0.0]  # when the last progress line was printed

        def also(t: float, rss: int) -> None:
            depths.append(queue_depth(server.metrics_url))
            if t - shown[0] >= PROGRESS_S or t >= seconds:
                shown[0] = t
                progress.step(f"{t:.0f} of {seconds:.0f} s: server {rss / MB:.1f} MB resident, "
                              f"{depths[-1]:,} events queued for its clients")  # fmt: skip

        samples = sample(pid, child.proc.poll, seconds, every, also)
        load = netmix.finish_load(cluster, child, seconds + 120.0)
        counters = netmix.counters(load, server, sim)
    return Result(rows_of(base, loaded, samples, load.events / load.window_s, counters, clients),
                  [f"Resident memory is VmRSS from /proc (Linux only); {len(samples)} samples, "
                   f"every {every:g} s; {n_symbols} symbols, {clients} clients, "
                   f"{market.rate:,.0f} simulator transactions/s asked; client queue depth "
                   f"at the samples: peak {max(depths, default=0):,} events, "
                   f"{counters.backlog:,} at the end."])  # fmt: skip


def queue_depth(metrics_url: str) -> int:
    """Events queued for the server's client streams now (-1 when /metrics fails)."""
    try:
        return int(scrape(metrics_url).get("raven_stream_queue_depth", 0.0))
    except OSError:
        return -1


def import_baseline() -> int:
    """Resident bytes of a fresh interpreter after the server's imports."""
    with Cluster() as cluster:
        child = cluster.spawn("imports", ["-c", f"{IMPORTS}; {PRINT_RSS}"])
        child.proc.wait(120)
        for line in child.log.read_text().splitlines():
            if line.startswith("rss "):
                return int(line.split()[1])
    raise BenchError(f"the import probe printed no RSS: {child.tail(5)}")


def sample(
    pid: int,
    exited: Callable[[], int | None],
    seconds: float,
    every: float,
    also: Callable[[float, int], None] = lambda t, rss: None,
) -> list[tuple[float, int]]:
    """(seconds since start, RSS bytes) every `every` s for `seconds`, or until `exited()`
    gives an exit code (the load client ended early); `also(t, rss)` runs with each sample."""
    out: list[tuple[float, int]] = []
    start = time.monotonic()
    while True:
        now = time.monotonic() - start
        out.append((now, rss_bytes(pid)))
        also(*out[-1])
        if now >= seconds or exited() is not None:
            return out
        # Memory has no event to wait for: sampling is by the clock.
        time.sleep(min(every, max(0.0, seconds - now)))


def slope_per_minute(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of bytes over seconds, as bytes per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if not var:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 60.0


def rows_of(
    base: int, loaded: int, samples: list[tuple[float, int]], deliveries: float,
    counters: netmix.Counters, clients: int,
) -> list[Row]:  # fmt: skip
    last_t, last = samples[-1]
    second_half = samples[len(samples) // 2 :]
    growth = slope_per_minute(second_half) / MB
    first = slope_per_minute(samples[: len(samples) // 2 + 1]) / MB
    peak = max(v for _, v in samples)
    label = "Python + the server's imports, no data"
    return [
        Row(SCENARIO, f"server RSS after {last_t / 60:.1f} min", last / MB, "MB",
            baseline=base / MB, baseline_label=label, target="<= 100 MB",
            note=f"peak {peak / MB:.1f} MB; {clients} clients received "
            f"{deliveries:,.0f} events/s; server ingested {counters.ingested_per_s:,.0f}/s"),
        Row(SCENARIO, "server RSS growth per minute (second half)", growth, "MB/min",
            target="flat", note=f"least squares over {len(second_half)} samples from "
            f"{second_half[0][0]:.0f} s; first half {first:+.2f} MB/min"),
        Row(SCENARIO, "server RSS with books loaded, no clients", loaded / MB, "MB",
            baseline=base / MB, baseline_label=label),
    ]  # fmt: skip
