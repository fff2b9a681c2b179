"""Metric sources and health checks of the Binance USD-M connector.

Everything is read at scrape (or health) time from the connector's plain
counters: `connections[i].stats` / `.decoder.stats` / `.dedup`, the book
sync's `books.stats[symbol]`, the REST limiter's `limiter.stats` and the
snapshot fetcher's `snapshots.stats`. The connector's REST circuit breaker is
exported by `sources.breaker_source` like the stores'.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from raven.connectors.binance.book_sync import BookState, BookStats
from raven.connectors.binance.connection import Connection
from raven.connectors.binance.connector import BinanceFuturesConnector
from raven.connectors.binance.limits import WeightLimiter
from raven.connectors.binance.snapshots import SnapshotStats
from raven.core.state import MarketState
from raven.ops.health import HealthCheck, HealthRegistry, book_check, feed_check
from raven.ops.metrics import MetricSource, Scrape


def connector_source(connector: BinanceFuturesConnector) -> MetricSource:
    exchange = connector.name

    def source(scrape: Scrape) -> None:
        for conn in connector.connections:
            _connection(scrape, exchange, conn)
        for symbol, stats in connector.books.stats.items():
            _book(scrape, exchange, symbol, stats)
        _rest(scrape, exchange, connector.limiter, connector.snapshots.stats)

    return source


def _connection(scrape: Scrape, exchange: str, conn: Connection) -> None:
    labels = (exchange, conn.label)
    stats = conn.stats
    scrape.gauge("raven_connector_connected", int(stats.connected), *labels)
    scrape.gauge(
        "raven_connector_last_message_timestamp_seconds", stats.last_message_ns / 1e9, *labels
    )
    scrape.counter("raven_connector_connect_attempts_total", stats.attempts, *labels)
    scrape.counter("raven_connector_connects_total", stats.connects, *labels)
    scrape.counter("raven_connector_connect_failures_total", stats.failures, *labels)
    silent = stats.silence_reconnects
    scrape.counter("raven_connector_reconnects_total", stats.disconnects - silent, *labels, "lost")
    scrape.counter("raven_connector_reconnects_total", silent, *labels, "silent")
    scrape.counter("raven_connector_rollovers_total", stats.rollovers, *labels)
    scrape.counter("raven_connector_forced_handovers_total", stats.forced_handovers, *labels)
    scrape.counter("raven_connector_subscribe_errors_total", stats.subscribe_errors, *labels)
    decoded = conn.decoder.stats
    scrape.counter("raven_connector_frames_total", decoded.frames, *labels)
    scrape.counter("raven_connector_events_total", decoded.events, *labels)
    scrape.counter("raven_connector_replies_total", decoded.replies, *labels)
    for reason, count in decoded.skipped.items():
        scrape.counter("raven_connector_frames_skipped_total", count, *labels, reason)
    scrape.counter("raven_connector_duplicates_total", conn.dedup.duplicates, *labels)


def _book(scrape: Scrape, exchange: str, symbol: str, stats: BookStats) -> None:
    labels = (exchange, symbol)
    scrape.gauge("raven_book_live", int(stats.state is BookState.LIVE), *labels)
    scrape.gauge("raven_book_stale", int(stats.state is BookState.STALE), *labels)
    scrape.counter("raven_book_resyncs_total", stats.resyncs, *labels)
    scrape.counter("raven_book_gaps_total", stats.gaps, *labels)
    scrape.counter("raven_book_syncs_total", stats.snapshots, *labels)
    scrape.counter("raven_book_refreshes_total", stats.refreshes, *labels)
    scrape.counter("raven_book_refresh_failures_total", stats.refresh_failures, *labels)
    scrape.counter("raven_book_dropped_updates_total", stats.dropped, *labels)
    scrape.gauge("raven_book_buffered_updates", stats.buffered, *labels)


def _rest(scrape: Scrape, exchange: str, limiter: WeightLimiter, snapshots: SnapshotStats) -> None:
    weights = limiter.stats
    now = time.time()  # the limiter's clock: the venue's minutes are UTC minutes
    scrape.counter("raven_rest_requests_total", weights.requests, exchange)
    scrape.counter("raven_rest_weight_sent_total", weights.weight_sent, exchange)
    scrape.gauge("raven_rest_weight_used", limiter.used_now(now), exchange)
    scrape.gauge("raven_rest_weight_limit", weights.limit, exchange)
    scrape.gauge("raven_rest_weight_budget", weights.budget, exchange)
    scrape.counter("raven_rest_waits_total", weights.waits, exchange)
    scrape.counter("raven_rest_rate_limited_total", weights.rate_limited, exchange)
    scrape.counter("raven_rest_bans_total", weights.bans, exchange)
    held = max(weights.banned_until, weights.backoff_until) > now
    scrape.gauge("raven_rest_held", int(held), exchange)
    scrape.counter("raven_book_snapshots_fetched_total", snapshots.fetched, exchange)
    scrape.counter("raven_book_snapshot_failures_total", snapshots.failures, exchange)
    scrape.gauge("raven_book_snapshots_pending", snapshots.queued, exchange)
    scrape.counter("raven_book_refreshes_skipped_total", snapshots.refreshes_skipped, exchange)


def connector_checks(
    connector: BinanceFuturesConnector,
    state: MarketState,
    health: HealthRegistry,
    stale_feed_s: float,
    stale_book_s: float,
) -> list[HealthCheck]:
    """A check per connection (`feed_check`) and per synced book (`book_check`)."""
    checks = [feed_check(conn, stale_feed_s, health.since) for conn in connector.connections]
    exchange = connector.name
    for symbol, stats in connector.books.stats.items():
        checks.append(
            book_check(
                f"book:{exchange}:{symbol}",
                stats,
                stale_book_s,
                _book_time(state, exchange, symbol),
                _listed(connector, symbol),
            )
        )
    return checks


def _book_time(state: MarketState, exchange: str, symbol: str) -> Callable[[], int]:
    """Exchange time of the newest update applied to the symbol's canonical book."""

    def newest() -> int:
        rec = state.get(exchange, symbol)
        return rec.book.exchange_time if rec is not None else 0

    return newest


def _listed(connector: BinanceFuturesConnector, symbol: str) -> Callable[[], bool]:
    """False once exchangeInfo came and did not list `symbol`."""
    return lambda: not connector.instruments or symbol in connector.instruments
