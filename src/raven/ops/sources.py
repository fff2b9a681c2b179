"""Metric sources for today's components: they read plain counters at scrape time.

Each factory takes a component (typed by a small Protocol of what it
reads) and returns a `MetricSource`. Adding a component is a factory like
these plus one `metrics.add(...)` line in `raven.ops.wiring`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from raven import __version__
from raven.breaker import CircuitBreaker
from raven.connectors.binance.decode import DecodeStats
from raven.core.bus import Subscriber, SubscriberStats
from raven.core.latency import Histogram
from raven.core.state import MarketState
from raven.ops.health import HealthRegistry
from raven.ops.metrics import MetricSource, Scrape


class DecoderLike(Protocol):
    @property
    def stats(self) -> DecodeStats: ...


class ConnectionLike(Protocol):
    """What the metrics and health layers read from one feed connection."""

    @property
    def label(self) -> str: ...
    @property
    def connects(self) -> int: ...
    @property
    def failures(self) -> int: ...
    @property
    def connected(self) -> bool: ...
    @property
    def last_message_ns(self) -> int: ...
    @property
    def decoder(self) -> DecoderLike: ...


def build_info_source(scrape: Scrape) -> None:
    scrape.gauge("raven_build_info", 1, __version__)


def connections_source(exchange: str, connections: Iterable[ConnectionLike]) -> MetricSource:
    conns = tuple(connections)

    def source(scrape: Scrape) -> None:
        for c in conns:
            labels = (exchange, c.label)
            scrape.counter("raven_connector_connects_total", c.connects, *labels)
            scrape.counter("raven_connector_reconnects_total", max(0, c.connects - 1), *labels)
            scrape.counter("raven_connector_connect_failures_total", c.failures, *labels)
            scrape.gauge("raven_connector_connected", int(c.connected), *labels)
            scrape.gauge(
                "raven_connector_last_message_timestamp_seconds", c.last_message_ns / 1e9, *labels
            )
            stats = c.decoder.stats
            scrape.counter("raven_connector_frames_total", stats.frames, *labels)
            scrape.counter("raven_connector_events_total", stats.events, *labels)
            scrape.counter("raven_connector_replies_total", stats.replies, *labels)
            for reason, count in stats.skipped.items():
                scrape.counter("raven_connector_frames_skipped_total", count, *labels, reason)

    return source


class PipelineLike(Protocol):
    @property
    def ingested(self) -> int: ...


class BusLike(Protocol):
    @property
    def published(self) -> int: ...
    @property
    def subscriber_count(self) -> int: ...


def pipeline_source(pipeline: PipelineLike, bus: BusLike) -> MetricSource:
    def source(scrape: Scrape) -> None:
        scrape.counter("raven_pipeline_events_total", pipeline.ingested)
        scrape.counter("raven_bus_published_total", bus.published)
        scrape.gauge("raven_bus_subscribers", bus.subscriber_count)

    return source


def state_source(state: MarketState) -> MetricSource:
    """Newest receive time per (exchange, symbol, kind) in the latest state.

    The state only holds configured symbols, so the symbol label is bounded.
    """

    def source(scrape: Scrape) -> None:
        name = "raven_last_event_timestamp_seconds"
        for rec in state:
            held = (("trade", rec.trade), ("quote", rec.quote), ("funding", rec.funding))
            for kind, entry in held:
                if entry is not None:
                    scrape.gauge(name, entry[0].receive_time / 1e9, rec.exchange, rec.symbol, kind)
            if rec.klines:
                newest = max(c.receive_time for c, _ in rec.klines.values())
                scrape.gauge(name, newest / 1e9, rec.exchange, rec.symbol, "candle")

    return source


class StreamLike(Protocol):
    @property
    def sub(self) -> Subscriber: ...


class StreamsSource:
    """Client stream counters summed over open streams plus those already closed.

    Subscribers keep their counters in a `SubscriberStats` struct updated in
    place, so holding on to the struct keeps a closed stream's final numbers.
    A stream is seen at the scrapes while it is open; one that opens and
    closes between two scrapes is not counted (the API layer can make that
    exact by keeping totals of closed streams: see README "Metrics").
    """

    def __init__(self, streams: Mapping[str, StreamLike]) -> None:
        self.streams = streams
        self._seen: dict[str, SubscriberStats] = {}
        self._closed = SubscriberStats()

    def __call__(self, scrape: Scrape) -> None:
        open_streams = self.streams
        for sid in [s for s in self._seen if s not in open_streams]:
            _add_stats(self._closed, self._seen.pop(sid))
        total = SubscriberStats()
        _add_stats(total, self._closed)
        depth = depth_max = slow = 0
        for sid, stream in list(open_streams.items()):
            sub = stream.sub
            self._seen[sid] = sub.stats
            _add_stats(total, sub.stats)
            queued = len(sub.queue)
            depth += queued
            depth_max = max(depth_max, queued)
            slow += bool(sub.failure)
        scrape.gauge("raven_streams_open", len(open_streams))
        scrape.counter("raven_stream_events_queued_total", total.queued)
        scrape.counter("raven_stream_events_sent_total", total.sent)
        scrape.counter("raven_stream_events_dropped_total", total.conflated, "conflate")
        scrape.counter("raven_stream_events_dropped_total", total.dropped, "drop_oldest")
        scrape.gauge("raven_stream_queue_depth", depth)
        scrape.gauge("raven_stream_queue_depth_max", depth_max)
        scrape.gauge("raven_stream_slow_consumers", slow)


def _add_stats(into: SubscriberStats, more: SubscriberStats) -> None:
    into.queued += more.queued
    into.sent += more.sent
    into.conflated += more.conflated
    into.dropped += more.dropped


def breaker_source(breaker: CircuitBreaker) -> MetricSource:
    """For a store's or a REST client's circuit breaker."""

    def source(scrape: Scrape) -> None:
        scrape.gauge("raven_circuit_breaker_state", int(breaker.state), breaker.name)
        scrape.counter("raven_circuit_breaker_failures_total", breaker.failures, breaker.name)
        scrape.counter("raven_circuit_breaker_rejections_total", breaker.rejections, breaker.name)

    return source


def histogram_source(name: str, hist: Histogram, *labels: str) -> MetricSource:
    """One `raven.core.latency.Histogram` as one labelled series of family `name`."""

    def source(scrape: Scrape) -> None:
        scrape.histogram(name, hist, *labels)

    return source


def health_source(health: HealthRegistry) -> MetricSource:
    def source(scrape: Scrape) -> None:
        for c in health.evaluate().components:
            scrape.gauge("raven_component_healthy", int(c.healthy), c.name, c.kind)

    return source
