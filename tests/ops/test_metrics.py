"""The metrics registry, its sources, and /metrics scraped during a real run."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.parser import text_string_to_metric_families

from raven.app import RavenApp
from raven.breaker import CircuitBreaker
from raven.client import AsyncRavenClient
from raven.core.latency import Histogram
from raven.core.state import MarketState
from raven.ops import catalog
from raven.ops.metrics import COUNTER, GAUGE, HISTOGRAM, Family, MetricsRegistry, Scrape
from raven.ops.sources import breaker_source, histogram_source, state_source
from raven.sim.server import Simulator
from raven.types import Kind
from tests.helpers import wait_until
from tests.ops.promtool import promtool_check
from tests.ops.scrape import has, parse, scrape, total


def test_sources_write_declared_families_with_their_help_and_labels() -> None:
    registry = MetricsRegistry(
        [
            Family("raven_things_total", COUNTER, "Things seen.", ("exchange",)),
            Family("raven_depth", GAUGE, "Queue depth."),
            Family("raven_wait_seconds", HISTOGRAM, "Waits.", ("stage",)),
        ],
        process=False,
    )
    hist = Histogram()
    for seconds in (0.00002, 0.003, 0.003, 20.0):
        hist.observe(seconds)

    def source(scrape: Scrape) -> None:
        scrape.counter("raven_things_total", 7, "binance_futures")
        scrape.gauge("raven_depth", 3)

    registry.add(source)
    registry.add(histogram_source("raven_wait_seconds", hist, "publish"))
    text = registry.exposition()
    lines = text.decode().splitlines()
    assert "# HELP raven_things_total Things seen." in lines
    assert "# TYPE raven_things_total counter" in lines
    assert 'raven_things_total{exchange="binance_futures"} 7.0' in lines
    assert "raven_depth 3.0" in lines
    assert 'raven_wait_seconds_bucket{le="1e-05",stage="publish"} 0.0' in lines
    assert 'raven_wait_seconds_bucket{le="2.5e-05",stage="publish"} 1.0' in lines
    assert 'raven_wait_seconds_bucket{le="0.005",stage="publish"} 3.0' in lines
    assert 'raven_wait_seconds_bucket{le="10.0",stage="publish"} 3.0' in lines
    assert 'raven_wait_seconds_bucket{le="+Inf",stage="publish"} 4.0' in lines
    assert 'raven_wait_seconds_count{stage="publish"} 4.0' in lines
    promtool_check(text)


def test_reads_happen_at_scrape_time() -> None:
    registry = MetricsRegistry([Family("raven_n_total", COUNTER, "N.")], process=False)
    counter = [0]
    registry.add(lambda s: s.counter("raven_n_total", counter[0]))
    assert parse(registry.exposition())[("raven_n_total", ())] == 0
    counter[0] = 41
    counter[0] += 1
    assert parse(registry.exposition())[("raven_n_total", ())] == 42


def test_undeclared_or_mislabelled_metrics_are_errors_counted_per_source() -> None:
    registry = MetricsRegistry([Family("raven_ok_total", COUNTER, "Ok.", ("x",))], process=False)
    registry.add(lambda s: s.counter("raven_nope_total", 1), name="undeclared")
    registry.add(lambda s: s.counter("raven_ok_total", 1), name="no_labels")
    registry.add(lambda s: s.gauge("raven_ok_total", 1, "a"), name="wrong_type")
    registry.add(lambda s: s.counter("raven_ok_total", 5, "a"), name="good")
    samples = parse(registry.exposition())
    assert samples[("raven_ok_total", (("x", "a"),))] == 5
    for name in ("undeclared", "no_labels", "wrong_type"):
        assert samples[("raven_metrics_source_errors_total", (("source", name),))] == 1
    samples = parse(registry.exposition())
    assert samples[("raven_metrics_source_errors_total", (("source", "undeclared"),))] == 2


@pytest.mark.parametrize(
    ("family", "problem"),
    [
        (("raven_x", COUNTER), "counters, and only counters, end in _total"),
        (("raven_x_total", GAUGE), "counters, and only counters, end in _total"),
        (("x_total", COUNTER), "start with raven_"),
        (("raven_x", "summary"), "unknown metric type"),
    ],
)
def test_family_names_follow_the_conventions(family: tuple[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Family(family[0], family[1], "help")


def test_catalog_names_are_unique_and_pass_promtool_when_every_family_has_a_sample() -> None:
    names = [f.name for f in catalog.ALL]
    assert len(names) == len(set(names))
    registry = MetricsRegistry(catalog.ALL, process=False)
    hist = Histogram()
    hist.observe(0.001)

    def every_family(scrape: Scrape) -> None:
        for family in catalog.ALL:
            labels = [f"{label}-value" for label in family.labels]
            if family.type == COUNTER:
                scrape.counter(family.name, 1, *labels)
            elif family.type == GAUGE:
                scrape.gauge(family.name, 1, *labels)
            else:
                scrape.histogram(family.name, hist, *labels)

    registry.add(every_family)
    text = registry.exposition()
    assert len(list(text_string_to_metric_families(text.decode()))) == len(catalog.ALL)
    promtool_check(text)


def test_breaker_source_reports_state_and_totals() -> None:
    now = [0.0]
    breaker = CircuitBreaker("store:influxdb", failure_threshold=2, clock=lambda: now[0])
    registry = MetricsRegistry(catalog.ALL, process=False)
    registry.add(breaker_source(breaker))
    labels = (("breaker", "store:influxdb"),)
    assert parse(registry.exposition())[("raven_circuit_breaker_state", labels)] == 0
    breaker.record_failure("down")
    breaker.record_failure("down")
    assert not breaker.allow()
    samples = parse(registry.exposition())
    assert samples[("raven_circuit_breaker_state", labels)] == 2
    assert samples[("raven_circuit_breaker_failures_total", labels)] == 2
    assert samples[("raven_circuit_breaker_rejections_total", labels)] == 1


async def test_metrics_move_as_events_flow_and_stream_totals_are_exact(
    sim: Simulator, app: RavenApp, client: AsyncRavenClient
) -> None:
    before = parse(await scrape(app))
    assert total(before, "raven_connector_connected") == len(app.connectors[0].connections)  # type: ignore[attr-defined]
    # Only the connections' FEED_CONNECTED status events so far.
    assert total(before, "raven_pipeline_events_total") == total(
        before, "raven_connector_connected"
    )
    assert total(before, "raven_received_events_total", kind="status") == total(
        before, "raven_connector_connected"
    )
    assert total(before, "raven_streams_open") == 0
    async with client.stream(["BTCUSDT", "ETHUSDT"], [Kind.TRADE, Kind.QUOTE]) as stream:
        received = 0

        async def read() -> None:
            nonlocal received
            async for _ in stream:
                received += 1

        reader = asyncio.create_task(read())
        await wait_until(lambda: bool(stream.acks), what="the subscription's ack")
        sim.feed_enabled.set()
        await wait_until(lambda: received >= 100, timeout=30, what="100 events")
        sim.feed_enabled.clear()
        during = await scrape(app)
        reader.cancel()
    after = parse(during)
    for name in (
        "raven_connector_frames_total",
        "raven_connector_events_total",
        "raven_pipeline_events_total",
    ):
        assert total(after, name) >= total(before, name) + 100, name
    # every accepted event is published, plus the candle updates built from trades
    published = total(after, "raven_bus_published_total")
    assert published >= total(after, "raven_pipeline_events_accepted_total")
    received_total = total(after, "raven_received_events_total")
    assert received_total == total(after, "raven_pipeline_events_total")
    assert total(after, "raven_stream_events_sent_total") >= received
    assert total(after, "raven_streams_open") == 1
    assert total(after, "raven_connector_frames_skipped_total") == 0
    for symbol in ("BTCUSDT", "ETHUSDT"):
        for kind in ("trade", "quote"):
            stamp = total(after, "raven_last_event_timestamp_seconds", symbol=symbol, kind=kind)
            assert stamp > 0, (symbol, kind)
    assert not has(after, "raven_store_up"), "no store configured: no store metrics"
    promtool_check(during)

    # Closed streams keep their counts (the registry's totals): nothing goes back,
    # and a stream that opened and closed between two scrapes is counted too.
    await wait_until(lambda: not app.registry.streams, what="the stream to close")
    sent = app.registry.stats().sent
    async with client.stream(["BTCUSDT"], [Kind.TRADE]) as short:

        async def first() -> None:
            async for _ in short:  # reading takes in the ack
                return

        reader = asyncio.create_task(first())
        await wait_until(lambda: bool(short.acks), what="the second stream's ack")
        reader.cancel()
    await wait_until(lambda: not app.registry.streams, what="the second stream to close")
    later = parse(await scrape(app))
    assert total(later, "raven_streams_open") == 0
    assert total(later, "raven_streams_opened_total") == 2
    assert total(later, "raven_stream_events_sent_total") == app.registry.stats().sent >= sent
    assert total(later, "raven_stream_events_sent_total") >= total(
        after, "raven_stream_events_sent_total"
    )


def test_the_readme_lists_exactly_the_families_raven_exports() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Metrics\n") : readme.index("## Health\n")]
    listed = set(re.findall(r"^\| .*?\|", section, re.MULTILINE))
    named = {name for cell in listed for name in re.findall(r"`(raven_[a-z_]+)`", cell)}
    declared = set(MetricsRegistry(catalog.ALL, process=False).families)
    assert named == declared


def _reference_text(samples: list[tuple[Family, tuple[str, ...], float | Histogram]]) -> bytes:
    """The same samples rendered by prometheus_client's own families and generate_latest."""
    families: dict[str, Metric] = {}
    for family, labels, value in samples:
        metric = families.get(family.name)
        if metric is None:
            kinds = {COUNTER: CounterMetricFamily, GAUGE: GaugeMetricFamily}
            kind = kinds.get(family.type, HistogramMetricFamily)
            metric = families[family.name] = kind(family.name, family.help, labels=family.labels)
        if isinstance(value, Histogram):
            assert isinstance(metric, HistogramMetricFamily)
            buckets = [("+Inf" if b == float("inf") else repr(b), n) for b, n in value.cumulative()]
            metric.add_metric(list(labels), buckets, value.sum)
        else:
            assert isinstance(metric, CounterMetricFamily | GaugeMetricFamily)
            metric.add_metric(list(labels), value)

    class Reference:
        def collect(self) -> list[Metric]:
            return list(families.values())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Reference())
    return generate_latest(registry)


def test_exposition_is_byte_for_byte_what_prometheus_client_writes() -> None:
    """Raven renders its families itself (a scrape holds the event loop); the text must
    be exactly prometheus_client's, for every family, odd label value and number."""
    values = [0, 7, 0.25, -3.5, 999_999, 1_000_000, 1_234_567.5, 2**53, 1e-7, float("inf"),
              float("-inf"), float("nan")]  # fmt: skip
    labels = ["binance_futures", 'a "quoted" one', "back\\slash", "new\nline", "µs"]
    hist = Histogram()
    for seconds in (0.00002, 0.003, 0.003, 20.0, 1e9):
        hist.observe(seconds)
    samples: list[tuple[Family, tuple[str, ...], float | Histogram]] = []
    for i, family in enumerate(catalog.ALL):
        for j in range(2):
            names = tuple(labels[(i + j + k) % len(labels)] for k in range(len(family.labels)))
            value = values[(i + j) % len(values)]
            samples.append((family, names, hist if family.type == HISTOGRAM else value))
    registry = MetricsRegistry(catalog.ALL, process=False)

    def source(scrape: Scrape) -> None:
        for family, names, value in samples:
            if isinstance(value, Histogram):
                scrape.histogram(family.name, value, *names)
            elif family.type == COUNTER:
                scrape.counter(family.name, value, *names)
            else:
                scrape.gauge(family.name, value, *names)

    registry.add(source)
    assert registry.exposition() == _reference_text(samples)


def test_book_levels_are_exported_per_side_once_a_book_is_loaded() -> None:
    state = MarketState(())
    loaded = state.record("binance_futures", "BTCUSDT")
    loaded.book.load([("100.0", "1"), ("99.5", "2")], [("100.5", "3")], update_id=7)
    state.record("binance_futures", "ETHUSDT")  # no snapshot yet: no levels to report
    registry = MetricsRegistry(catalog.ALL, process=False)
    registry.add(state_source(state))
    samples = parse(registry.exposition())
    btc = {"exchange": "binance_futures", "symbol": "BTCUSDT"}
    assert total(samples, "raven_book_levels", side="bid", **btc) == 2
    assert total(samples, "raven_book_levels", side="ask", **btc) == 1
    assert not has(samples, "raven_book_levels", symbol="ETHUSDT")
    loaded.book.apply([("99.5", "0")], [("101.0", "1"), ("102.0", "1")], update_id=8)
    samples = parse(registry.exposition())
    assert total(samples, "raven_book_levels", side="bid", **btc) == 1
    assert total(samples, "raven_book_levels", side="ask", **btc) == 3
