"""What storing costs a live server: `raven serve` with the default embedded
store against the same server with storage off, each fed the same seeded
simulator feed, side by side in one run.

The other networked scenarios run with storage off (they measure the live
path); this one keeps the default configuration honest: a writer that
commits far more often than its flush interval (once a bug that made the
server spend a core on ~100 tiny DuckDB commits a second at 1,000 events/s)
shows here as CPU and as writes per second.
"""

from __future__ import annotations

import tempfile
import time

import msgspec

from raven.bench import netmix
from raven.bench.procs import Cluster, scrape, start_server, start_sim

RATE = 1000  # events/s: a feed slow enough that the flush interval, not the batch size, writes
WARMUP_S = 3.0
STORE = '{store="embedded"}'


class ServerCost(msgspec.Struct):
    backend: str
    cpu: float  # process CPU / window (1.0 = one core)
    ingested_per_s: float
    writes_per_s: float  # store write calls
    written_per_s: float  # events written


def measure_one(backend: str, window_s: float, rate: int, n_symbols: int) -> ServerCost:
    market = netmix.market_for(rate, n_symbols)
    with tempfile.TemporaryDirectory(prefix="raven-bench-") as tmp, Cluster() as cluster:
        sim = start_sim(cluster, market)
        env = {
            "RAVEN__DATABASE__BACKEND": backend,
            "RAVEN__DATABASE__PATH": f"{tmp}/raven.duckdb",
            "RAVEN__DATABASE__WRITER__SPOOL_DIR": f"{tmp}/spool",
        }
        server = start_server(cluster, sim, market, env)
        time.sleep(WARMUP_S)  # the window is a span of time, not a wait for a condition
        t0, start = time.monotonic(), scrape(server.metrics_url)
        time.sleep(window_s)
        end, t1 = scrape(server.metrics_url), time.monotonic()

    def per_s(name: str) -> float:
        return (end.get(name, 0.0) - start.get(name, 0.0)) / (t1 - t0)

    return ServerCost(
        backend,
        per_s("process_cpu_seconds_total"),
        per_s("raven_pipeline_events_total"),
        per_s(f"raven_store_batches_written_total{STORE}"),
        per_s(f"raven_store_events_written_total{STORE}"),
    )


def measure(window_s: float, rate: int = RATE, n_symbols: int = 20) -> tuple[ServerCost, ...]:
    """(storage off, embedded store), one after the other on the same feed."""
    return tuple(measure_one(b, window_s, rate, n_symbols) for b in ("none", "embedded"))
