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

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from raven.core.latency import Histogram

log = logging.getLogger("raven.ops.metrics")

COUNTER = "counter"
GAUGE = "gauge"
HISTOGRAM = "histogram"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_INF = float("inf")
LABEL_CACHE = 8192  # label sets whose text is kept between scrapes


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
    """The samples of one scrape; sources write into it, `render` writes the text.

    Lines are formatted as they come in, in the text format prometheus_client's
    `generate_latest` writes (labels sorted by name, values as its
    `floatToGoString`), about 8x faster: a scrape holds the event loop."""

    def __init__(self, families: dict[str, Family]) -> None:
        self._families = families
        self._lines: dict[str, list[str]] = {}  # family name -> its header and samples

    def counter(self, name: str, value: float, *labels: str) -> None:
        family, lines = self._family(name, COUNTER, labels)
        lines.append(f"{name}{_label_text(family.labels, labels)} {_value(value)}\n")

    def gauge(self, name: str, value: float, *labels: str) -> None:
        family, lines = self._family(name, GAUGE, labels)
        lines.append(f"{name}{_label_text(family.labels, labels)} {_value(value)}\n")

    def histogram(self, name: str, hist: Histogram, *labels: str) -> None:
        """Export a `raven.core.latency.Histogram` (seconds) as cumulative buckets."""
        family, lines = self._family(name, HISTOGRAM, labels)
        before, after = _around_le(family.labels, labels)
        count = 0
        for bound, count in hist.cumulative():
            value = _value(count)
            lines.append(f'{name}_bucket{{{before}le="{_le(bound)}"{after}}} {value}\n')
        rest = _label_text(family.labels, labels)
        lines.append(f"{name}_count{rest} {_value(count)}\n")
        lines.append(f"{name}_sum{rest} {_value(hist.sum)}\n")

    def _family(self, name: str, kind: str, labels: tuple[str, ...]) -> tuple[Family, list[str]]:
        family = self._families.get(name)
        if family is None:
            raise KeyError(f"metric {name!r} is not declared; add it to raven.ops.catalog")
        if family.type != kind:
            raise TypeError(f"{name} is a {family.type}, not a {kind}")
        if len(labels) != len(family.labels):
            raise ValueError(f"{name}: expected labels {family.labels}, got values {labels}")
        lines = self._lines.get(name)
        if lines is None:
            text = family.help.replace("\\", r"\\").replace("\n", r"\n")
            lines = self._lines[name] = [f"# HELP {name} {text}\n# TYPE {name} {kind}\n"]
        return family, lines

    def render(self) -> str:
        """Every family written to, in the order first written."""
        return "".join(line for lines in self._lines.values() for line in lines)


def _pairs(names: tuple[str, ...], values: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, 'name="value"') per label, sorted by name, the value escaped."""
    return sorted((k, f'{k}="{_escape(v)}"') for k, v in zip(names, values, strict=True))


# Label sets repeat at every scrape (their number is bounded by design), so their
# text is made once; the caches only bound a process that keeps renaming things.
@functools.lru_cache(maxsize=LABEL_CACHE)
def _label_text(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    """'{a="x",b="y"}' (sorted by name), or '' with no labels."""
    if not names:
        return ""
    return "{" + ",".join(pair for _, pair in _pairs(names, values)) + "}"


@functools.lru_cache(maxsize=LABEL_CACHE)
def _around_le(names: tuple[str, ...], values: tuple[str, ...]) -> tuple[str, str]:
    """The label text before and after a bucket's `le` label, which sorts among them."""
    pairs = _pairs(names, values)
    before = "".join(f"{pair}," for key, pair in pairs if key < "le")
    return before, "".join(f",{pair}" for key, pair in pairs if key > "le")


def _escape(value: str) -> str:
    """A label value as the text format wants it: backslash, newline and quote escaped."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def _value(value: float) -> str:
    """A sample value in Go's float format, as prometheus_client's `floatToGoString`."""
    d = float(value)
    if d != d:
        return "NaN"
    if d in (_INF, -_INF):
        return "+Inf" if d > 0 else "-Inf"
    text = repr(d)
    dot = text.find(".")
    if d > 0 and dot > 6:  # exponents from 1e6 on, as prometheus_client (repr: 1e16)
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it: "+Inf", "0.005", "1.0"."""
    return "+Inf" if bound == _INF else repr(float(bound))


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
        # prometheus_client renders only the process, platform and Python GC
        # collectors, in a registry of our own (not the global one: two apps in one
        # process, as in tests, never clash). Raven's families render themselves.
        self.registry = CollectorRegistry(auto_describe=False)
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

    def scrape(self) -> Scrape:
        """Every source read into one `Scrape`, as of now."""
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
        return scrape

    def exposition(self) -> bytes:
        """The Prometheus text format of everything registered, as of now."""
        return self.scrape().render().encode() + generate_latest(self.registry)
