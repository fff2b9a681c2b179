"""Metric sources of the core and the API: they read plain counters at scrape time.

Each factory takes a component and returns a `MetricSource`; `raven.ops.wiring`
adds them to the registry. The connector's sources are in `feed_sources.py`,
the stores' in `store_sources.py`. Nothing here runs per event: a scrape reads
ints, small dicts and histograms the components keep anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from raven import __version__
from raven.api.streams import StreamRegistry
from raven.breaker import CircuitBreaker
from raven.core import rules
from raven.core.citadel import Citadel
from raven.core.latency import Histogram
from raven.core.pipeline import Pipeline
from raven.core.state import MarketState
from raven.core.views import BookViews
from raven.ops.gcwatch import GcWatch, frozen_count
from raven.ops.health import HealthRegistry
from raven.ops.looplag import LoopLag
from raven.ops.metrics import MetricSource, Scrape
from raven.types import Kind

Exchanges = Callable[[], Iterable[str]]  # the configured exchanges, read at scrape time

KIND_NAMES = {kind: kind.name.lower() for kind in Kind}
# Rules that reject, that only snap a number to the grid, and that only flag.
REJECTING = tuple(r for r in rules.RULES if r != rules.CROSSED_BOOK)
SANITIZING = (rules.PRICE_TICK, rules.QUANTITY_STEP)
FLAGGING = (rules.CROSSED_BOOK,)


def gc_source(watch: GcWatch) -> MetricSource:
    def source(scrape: Scrape) -> None:
        for generation, pauses in watch.pauses.items():
            scrape.histogram("raven_gc_pause_seconds", pauses, str(generation))
        scrape.gauge("raven_gc_frozen_objects", frozen_count())

    return source


def loop_lag_source(lag: LoopLag) -> MetricSource:
    def source(scrape: Scrape) -> None:
        scrape.histogram("raven_event_loop_lag_seconds", lag.lag)

    return source


def build_info_source(scrape: Scrape) -> None:
    scrape.gauge("raven_build_info", 1, __version__)


def received_source(state: MarketState, pipeline: Pipeline, exchanges: Exchanges) -> MetricSource:
    """Events received per exchange and kind: the records' per-type counts (book
    snapshots and deltas are both `book`), plus the feed-wide statuses."""

    def source(scrape: Scrape) -> None:
        totals: dict[tuple[str, str], int] = {}
        for exchange in exchanges():
            for name in KIND_NAMES.values():
                totals[exchange, name] = 0
        for rec in state:
            for event_type, count in rec.received.items():
                key = (rec.exchange, KIND_NAMES[event_type.kind])
                totals[key] = totals.get(key, 0) + count
        for exchange, count in pipeline.feed_statuses.items():
            key = (exchange, "status")
            totals[key] = totals.get(key, 0) + count
        for (exchange, kind), count in totals.items():
            scrape.counter("raven_received_events_total", count, exchange, kind)

    return source


def pipeline_source(pipeline: Pipeline, views: BookViews) -> MetricSource:
    def source(scrape: Scrape) -> None:
        stats = pipeline.stats
        scrape.counter("raven_pipeline_events_total", stats.ingested)
        scrape.counter("raven_pipeline_events_accepted_total", stats.accepted)
        scrape.counter("raven_pipeline_events_rejected_total", stats.rejected)
        scrape.counter("raven_candles_closed_total", stats.candles_closed)
        bus = pipeline.bus
        for kind, name in KIND_NAMES.items():
            scrape.counter("raven_bus_published_total", bus.published_by_kind[kind], name)
        scrape.gauge("raven_bus_subscribers", bus.subscriber_count)
        books = pipeline.books.stats
        scrape.counter("raven_book_snapshots_applied_total", books.snapshots)
        scrape.counter("raven_book_deltas_applied_total", books.deltas)
        scrape.counter("raven_book_stale_drops_total", books.stale_drops)
        scrape.counter("raven_book_resync_requests_total", books.resyncs_requested)
        deltas, snapshots = views.counts
        scrape.gauge("raven_book_views", deltas, "deltas")
        scrape.gauge("raven_book_views", snapshots, "snapshots")

    return source


def stage_source(pipeline: Pipeline, registry: StreamRegistry) -> MetricSource:
    """The hop latencies, one `raven_stage_latency_seconds` series each."""
    stages = (
        ("exchange_to_receive", pipeline.latency_exchange_to_receive),
        ("receive_to_published", pipeline.latency_receive_to_publish),
        ("published_to_sent", registry.latency_publish_to_send),
        ("sent_to_written", registry.latency_write),
    )

    def source(scrape: Scrape) -> None:
        for stage, hist in stages:
            scrape.histogram("raven_stage_latency_seconds", hist, stage)

    return source


def validation_source(citadel: Citadel, exchanges: Exchanges) -> MetricSource:
    """Counts per (exchange, rule), summed over symbols; every rule of every
    configured exchange is exported, 0 until it fires, so rates work at once."""
    families = (
        ("raven_validation_rejections_total", citadel.rejected, REJECTING),
        ("raven_validation_sanitized_total", citadel.normalized, SANITIZING),
        ("raven_validation_flagged_total", citadel.flagged, FLAGGING),
    )

    def source(scrape: Scrape) -> None:
        scrape.counter("raven_validation_checked_total", citadel.checked)
        known = list(exchanges())
        for name, counts, rule_names in families:
            totals = {(exchange, rule): 0 for exchange in known for rule in rule_names}
            for (rule, exchange, _symbol), count in list(counts.items()):
                totals[exchange, rule] = totals.get((exchange, rule), 0) + count
            for (exchange, rule), count in totals.items():
                scrape.counter(name, count, exchange, rule)

    return source


def state_source(state: MarketState) -> MetricSource:
    """Newest receive time per (exchange, symbol, kind) in the latest state, the
    exchange time of each book's newest update, and each book's levels per side.

    The state only holds configured symbols, so the symbol label is bounded.
    """

    def source(scrape: Scrape) -> None:
        name = "raven_last_event_timestamp_seconds"
        for rec in state:
            held = (
                ("trade", rec.trade),
                ("quote", rec.quote),
                ("funding", rec.funding),
                ("liquidation", rec.liquidation),
            )
            for kind, entry in held:
                if entry is not None:
                    scrape.gauge(name, entry[0].receive_time / 1e9, rec.exchange, rec.symbol, kind)
            if rec.klines:
                newest = max(c.receive_time for c, _ in rec.klines.values())
                scrape.gauge(name, newest / 1e9, rec.exchange, rec.symbol, "candle")
            book = rec.book
            if book.exchange_time:
                scrape.gauge(
                    "raven_book_last_update_timestamp_seconds",
                    book.exchange_time / 1e9,
                    rec.exchange,
                    rec.symbol,
                )
            if book.update_id:
                scrape.gauge("raven_book_levels", len(book.bids), rec.exchange, rec.symbol, "bid")
                scrape.gauge("raven_book_levels", len(book.asks), rec.exchange, rec.symbol, "ask")

    return source


class StreamsLike(Protocol):
    """What the streams source reads from the service (`MarketDataService`)."""

    @property
    def ended(self) -> dict[str, int]: ...
    @property
    def refused(self) -> dict[str, int]: ...


def streams_source(registry: StreamRegistry, service: StreamsLike) -> MetricSource:
    """Client streams: exact totals over every stream ever opened (the registry
    keeps the counts of closed ones), and the queues of the open ones now."""

    def source(scrape: Scrape) -> None:
        total = registry.stats()
        depth = depth_max = slow = 0
        for stream in registry.streams.values():
            sub = stream.sub
            queued = sub.depth
            depth += queued
            depth_max = max(depth_max, queued)
            slow += bool(sub.failure)
        scrape.gauge("raven_streams_open", len(registry.streams))
        scrape.counter("raven_streams_opened_total", registry.opened)
        scrape.counter("raven_stream_events_queued_total", total.queued)
        scrape.counter("raven_stream_events_sent_total", total.sent)
        scrape.counter("raven_stream_events_dropped_total", total.conflated, "conflate")
        scrape.counter("raven_stream_events_dropped_total", total.dropped, "drop_oldest")
        scrape.gauge("raven_stream_queue_depth", depth)
        scrape.gauge("raven_stream_queue_depth_max", depth_max)
        scrape.gauge("raven_stream_slow_consumers", slow)
        for reason, count in service.ended.items():
            scrape.counter("raven_stream_disconnects_total", count, reason)
        for reason, count in service.refused.items():
            scrape.counter("raven_streams_refused_total", count, reason)

    return source


class AuthLike(Protocol):
    @property
    def rejected(self) -> int: ...


class HistoryLike(Protocol):
    @property
    def requests(self) -> int: ...
    @property
    def rejected(self) -> int: ...
    @property
    def events_sent(self) -> int: ...


def auth_source(auth: AuthLike) -> MetricSource:
    def source(scrape: Scrape) -> None:
        scrape.counter("raven_grpc_auth_rejections_total", auth.rejected)

    return source


def history_source(history: HistoryLike) -> MetricSource:
    def source(scrape: Scrape) -> None:
        scrape.counter("raven_history_requests_total", history.requests)
        scrape.counter("raven_history_requests_rejected_total", history.rejected)
        scrape.counter("raven_history_events_sent_total", history.events_sent)

    return source


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
            scrape.gauge("raven_component_ready", int(c.ready), c.name, c.kind)

    return source


class TracingLike(Protocol):
    @property
    def sampled_events(self) -> int: ...


def tracing_source(tracing: TracingLike) -> MetricSource:
    def source(scrape: Scrape) -> None:
        scrape.counter("raven_tracing_sampled_events_total", tracing.sampled_events)

    return source
