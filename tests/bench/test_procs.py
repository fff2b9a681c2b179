"""Child processes for the benchmarks: started ready, read, and always stopped."""

from __future__ import annotations

import os
import shutil

import pytest

from raven.bench import procs
from raven.bench.netmix import (
    MIX,
    events_per_transaction,
    histogram_window,
    market_for,
)
from raven.bench.procs import BenchError, Child, Cluster, Market


@pytest.mark.parametrize("streams", [MIX, ("aggTrade", "markPrice@1s")])  # books or none
def test_sim_and_server_start_ready_and_stop(streams: tuple[str, ...]) -> None:
    market = Market(("BTCUSDT", "ETHUSDT"), streams, rate=100.0, book_depth=100)
    with procs.sim_and_server(market) as (cluster, sim, server):
        children = list(cluster.children)
        assert [c.name for c in children] == ["sim", "server"]
        metrics = procs.scrape(server.metrics_url)
        assert metrics["raven_pipeline_events_total"] >= 0
        assert procs.scrape(sim.stats_url)["connections"] >= 1
        assert procs.rss_bytes(server.child.pid) > 1024 * 1024
        for host in (server.target, server.metrics_url, sim.ws_url):
            assert "127.0.0.1" in host
    assert all(c.proc.returncode is not None for c in children)
    assert not cluster.children
    assert not cluster.dir.exists()  # a clean run leaves no logs behind


def test_children_are_stopped_when_the_run_fails() -> None:
    started: list[Child] = []

    def run() -> None:
        with Cluster() as cluster:
            started.append(cluster.spawn("sleeper", ["-c", "import time; time.sleep(600)"]))
            raise RuntimeError("the run broke")

    with pytest.raises(RuntimeError, match="the run broke"):
        run()
    child = started[0]
    assert child.proc.returncode is not None
    assert child.log.exists()  # kept for the post-mortem
    shutil.rmtree(child.log.parent)
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)


def test_a_child_that_exits_at_start_is_reported_with_its_log() -> None:
    with Cluster() as cluster:
        child = cluster.spawn("broken", ["-c", "import sys; print('no config'); sys.exit(3)"])
        child.proc.wait(30)
        with pytest.raises(BenchError, match="exited with code 3"):
            procs.wait_for_port(child, procs.free_port())
        assert "no config" in child.tail()


def test_prometheus_text_is_read_into_numbers() -> None:
    text = (
        "# HELP raven_pipeline_events_total events\n"
        "# TYPE raven_pipeline_events_total counter\n"
        "raven_pipeline_events_total 1234.0\n"
        'raven_stream_events_dropped_total{policy="conflate"} 5\n'
        "\n"
    )
    assert procs.parse_prometheus(text) == {
        "raven_pipeline_events_total": 1234.0,
        'raven_stream_events_dropped_total{policy="conflate"}': 5.0,
    }


def test_the_write_wait_histogram_is_read_over_a_window() -> None:
    def scrape(counts: tuple[int, int, int]) -> dict[str, float]:
        text = "".join(
            f'raven_stage_latency_seconds_bucket{{stage="{stage}",le="{le}"}} {n}\n'
            for stage in ("published_to_sent", "sent_to_written")
            for le, n in zip(("0.001", "0.01", "+Inf"), counts, strict=True)
        )
        return procs.parse_prometheus(text)

    start, end = scrape((5, 6, 6)), scrape((95, 105, 106))
    window = histogram_window(start, end)
    assert window.cumulative() == [(0.001, 90), (0.01, 99), (float("inf"), 100)]
    assert window.quantile(0.5) == 0.001
    assert window.quantile(0.99) == 0.01
    assert window.quantile(1.0) == float("inf")
    assert histogram_window({}, {}).cumulative() == [(float("inf"), 0)]
    assert histogram_window({}, {}).quantile(0.99) == 0.0


def test_the_simulator_rate_follows_the_events_asked() -> None:
    per_txn = events_per_transaction(4, MIX, 200)
    assert 1.0 < per_txn < 4.0  # a diff always, plus bookTicker and aggTrade sometimes
    slow, fast = market_for(1_000, 4, 200), market_for(10_000, 4, 200)
    assert fast.rate > 9 * slow.rate
    assert slow.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")
