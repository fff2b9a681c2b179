"""Prometheus metrics read at scrape time from plain counters: a registry of sources.

Components never call prometheus_client. They keep ints, `stats` structs
and `raven.core.latency.Histogram`s; a *source* is a small function that,
when Prometheus scrapes, reads them and writes samples into the `Scrape`:

    def bus_source(scrape: Scrape) -> None:
        scrape.counter("raven_bus_published_total", bus.published)

    metrics.add(bus_source, name="bus")

Every family a source writes must be declared first (see `catalog.py`), with
its type, help text and label names, so names, units and label sets are
reviewed in one place and label cardinality stays bounded by design.
Label values are passed positionally, in the declared order.

A source that raises is logged and counted in
`raven_metrics_source_errors_total{source}`; the other sources still export.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from raven.core.latency import Histogram

log = logging.getLogger("raven.ops.metrics")

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: its name, type, help text and label names."""

    name: str
    type: str  # COUNTER, GAUGE or HISTOGRAM
    help: str
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in (COUNTER, GAUGE, HISTOGRAM):
            raise ValueError(f"{self.name}: unknown metric type {self.type!r}")
        if not self.name.startswith("raven_"):
            raise ValueError(f"{self.name}: Raven's metric names start with raven_")
        if (self.type == COUNTER) != self.name.endswith("_total"):
            raise ValueError(f"{self.name}: counters, and only counters, end in _total")


class Scrape:
    """The samples of one scrape; sources write into it."""

    def __init__(self, families: dict[str, Family]) -> None:
        self._families = families
        self._metrics: dict[str, tuple[Family, Metric]] = {}

    def counter(self, name: str, value: float, *labels: str) -> None:
        metric = self._family(name, COUNTER, labels)
        assert isinstance(metric, CounterMetricFamily)
        metric.add_metric(list(labels), value)

    def gauge(self, name: str, value: float, *labels: str) -> None:
        metric = self._family(name, GAUGE, labels)
        assert isinstance(metric, GaugeMetricFamily)
        metric.add_metric(list(labels), value)

    def histogram(self, name: str, hist: Histogram, *labels: str) -> None:
        """Export a `raven.core.latency.Histogram` (seconds) as cumulative buckets."""
        metric = self._family(name, HISTOGRAM, labels)
        assert isinstance(metric, HistogramMetricFamily)
        buckets = [(_le(bound), count) for bound, count in hist.cumulative()]
        metric.add_metric(list(labels), buckets, hist.sum)

    def _family(self, name: str, kind: str, labels: tuple[str, ...]) -> Metric:
        entry = self._metrics.get(name)
        if entry is None:
            family = self._families.get(name)
            if family is None:
                raise KeyError(f"metric {name!r} is not declared; add it to raven.ops.catalog")
            if family.type != kind:
                raise TypeError(f"{name} is a {family.type}, not a {kind}")
            entry = self._metrics[name] = (family, _new_metric(family))
        family, metric = entry
        if len(labels) != len(family.labels):
            raise ValueError(f"{name}: expected labels {family.labels}, got values {labels}")
        return metric

    def metrics(self) -> Iterator[Metric]:
        return (metric for _, metric in self._metrics.values())


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it: "+Inf", "0.005", "1.0"."""
    return "+Inf" if bound == float("inf") else repr(float(bound))


def _new_metric(family: Family) -> Metric:
    labels = list(family.labels)
    if family.type == COUNTER:
        return CounterMetricFamily(family.name, family.help, labels=labels)
    if family.type == GAUGE:
        return GaugeMetricFamily(family.name, family.help, labels=labels)
    return HistogramMetricFamily(family.name, family.help, labels=labels)


MetricSource = Callable[[Scrape], None]


class MetricsRegistry:
    """The declared families and the sources that fill them; a Prometheus collector."""

    def __init__(self, families: Iterable[Family] = (), *, process: bool = True) -> None:
        self._families: dict[str, Family] = {}
        self._sources: list[tuple[str, MetricSource]] = []
        self._errors: dict[str, int] = {}
        self.declare(
            Family(
                "raven_metrics_source_errors_total",
                COUNTER,
                "Scrapes in which a metric source raised (its samples are missing).",
                ("source",),
            ),
            *families,
        )
        # Our own CollectorRegistry, not the global one: two apps in one
        # process (tests) never clash, and only what we add is exported.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        if process:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

    def declare(self, *families: Family) -> None:
        for family in families:
            known = self._families.get(family.name)
            if known is not None and known != family:
                raise ValueError(f"metric {family.name!r} is already declared differently")
            self._families[family.name] = family

    @property
    def families(self) -> dict[str, Family]:
        return dict(self._families)

    def add(self, source: MetricSource, name: str = "") -> None:
        """Read `source` at every scrape; `name` labels its errors."""
        self._sources.append((name or getattr(source, "__name__", "source"), source))

    def remove(self, source: MetricSource) -> None:
        self._sources = [(n, s) for n, s in self._sources if s is not source]

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's Collector protocol: called once per scrape."""
        scrape = Scrape(self._families)
        for name, source in self._sources:
            try:
                source(scrape)
            except Exception:
                # One broken source must not take the other metrics down with it;
                # it is logged and counted, not hidden.
                self._errors[name] = self._errors.get(name, 0) + 1
                log.exception("metric source %s failed", name)
        for name, count in self._errors.items():
            scrape.counter("raven_metrics_source_errors_total", count, name)
        return scrape.metrics()

    def exposition(self) -> bytes:
        """The Prometheus text format of everything registered, as of now."""
        return generate_latest(self.registry)
