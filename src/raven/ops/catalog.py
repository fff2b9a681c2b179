"""Every metric family Raven exports: name, type, help text and label names, in one place.

Conventions (Prometheus): a `raven_` prefix; counters end in `_total`;
base units in the name (`_seconds`, `_bytes`); timestamps are
`_timestamp_seconds` gauges (Unix time) so alerts compute ages with
`time() - x`. Labels have bounded cardinality: `exchange`, `connection`
(fixed by the config), `kind` (the 7 data kinds), `symbol` only where the
symbol set is configured (books, the latest state), `policy`, `reason`,
`rule` (`raven.core.rules.RULES`), `stage`, `store`, `breaker`, `component`.
Never a stream id, peer address or price.

A family with no samples in a scrape is not exported (e.g. the store
families with `[database] backend = "none"`). The sources that fill these
are in `sources.py`, `feed_sources.py` and `store_sources.py`; README
"Metrics" lists them all.
"""

from __future__ import annotations

from raven.ops.metrics import COUNTER, GAUGE, HISTOGRAM, Family

_CONN = ("exchange", "connection")
_BOOK = ("exchange", "symbol")
_EX = ("exchange",)
_STORE = ("store",)


def _c(name: str, help: str, labels: tuple[str, ...] = ()) -> Family:
    return Family(name, COUNTER, help, labels)


def _g(name: str, help: str, labels: tuple[str, ...] = ()) -> Family:
    return Family(name, GAUGE, help, labels)


def _h(name: str, help: str, labels: tuple[str, ...] = ()) -> Family:
    return Family(name, HISTOGRAM, help, labels)


PROCESS = (
    _g("raven_build_info", "Raven's version; the value is always 1.", ("version",)),
    _h(
        "raven_gc_pause_seconds",
        "Python garbage collections, by generation: each one stalls the event loop.",
        ("generation",),
    ),
    _g(
        "raven_gc_frozen_objects",
        "Objects moved out of the collector's reach at start-up (gc.freeze).",
    ),
    _h(
        "raven_event_loop_lag_seconds",
        "How late the event loop ran a wake-up due every 0.1 s: sampled stalls of the loop.",
    ),
)

CONNECTOR = (
    _g("raven_connector_connected", "1 while the WebSocket connection is open.", _CONN),
    _g(
        "raven_connector_last_message_timestamp_seconds",
        "Unix time of the newest frame received on the connection (0: none yet).",
        _CONN,
    ),
    _c("raven_connector_connect_attempts_total", "WebSocket connection attempts.", _CONN),
    _c("raven_connector_connects_total", "WebSocket connections established.", _CONN),
    _c(
        "raven_connector_connect_failures_total",
        "Connection attempts that failed to open or subscribe.",
        _CONN,
    ),
    _c(
        "raven_connector_reconnects_total",
        "Open connections lost and reconnected, by cause (lost: closed by the venue or "
        "broken; silent: closed by Raven because a busy stream sent nothing).",
        (*_CONN, "cause"),
    ),
    _c(
        "raven_connector_rollovers_total",
        "Connections replaced before the venue's 24-hour limit.",
        _CONN,
    ),
    _c(
        "raven_connector_forced_handovers_total",
        "Rollovers that switched without seeing the old connection catch up.",
        _CONN,
    ),
    _c(
        "raven_connector_subscribe_errors_total",
        "Error replies of the venue to subscription requests.",
        _CONN,
    ),
    _c("raven_connector_frames_total", "Frames received.", _CONN),
    _c("raven_connector_events_total", "Normalized events decoded from frames.", _CONN),
    _c("raven_connector_replies_total", "Replies to subscription requests.", _CONN),
    _c(
        "raven_connector_frames_skipped_total",
        "Frames counted and skipped (decode failures), by reason: malformed, unknown_event, "
        "unknown_stream, oversized, error_reply.",
        (*_CONN, "reason"),
    ),
    _c(
        "raven_connector_duplicates_total",
        "Events dropped as repeats (the overlap of an old and a new socket).",
        _CONN,
    ),
    _c(
        "raven_received_events_total",
        "Normalized events the pipeline received from an exchange, before validation.",
        ("exchange", "kind"),
    ),
)

REST = (
    _c("raven_rest_requests_total", "Exchange REST requests sent.", _EX),
    _c("raven_rest_weight_sent_total", "Request weight of the REST requests sent.", _EX),
    _g(
        "raven_rest_weight_used",
        "Request weight used in the venue's current minute (the venue's count or Raven's).",
        _EX,
    ),
    _g("raven_rest_weight_limit", "The venue's request weight limit per minute.", _EX),
    _g(
        "raven_rest_weight_budget",
        "The weight Raven allows itself per minute: the limit minus the reserve.",
        _EX,
    ),
    _c("raven_rest_waits_total", "REST requests told to wait for request weight.", _EX),
    _c("raven_rest_rate_limited_total", "HTTP 429 answers (rate limited).", _EX),
    _c("raven_rest_bans_total", "HTTP 418 answers (the IP is banned).", _EX),
    _g("raven_rest_held", "1 while a 429 back-off or a 418 ban holds every REST request.", _EX),
    _c("raven_book_snapshots_fetched_total", "Order book snapshots fetched over REST.", _EX),
    _c(
        "raven_book_snapshot_failures_total",
        "Failed order book snapshot requests (each is retried).",
        _EX,
    ),
    _g("raven_book_snapshots_pending", "Order book snapshots waiting or in flight.", _EX),
    _c(
        "raven_book_refreshes_skipped_total",
        "Periodic book refreshes skipped to keep REST weight for resyncs.",
        _EX,
    ),
)

BOOKS = (
    _g("raven_book_live", "1 while the order book is live (in sequence since a snapshot).", _BOOK),
    _g(
        "raven_book_stale",
        "1 while the order book is stale: it was live and is resyncing "
        "(0 while syncing the first time).",
        _BOOK,
    ),
    _c("raven_book_resyncs_total", "Times the order book went from live to stale.", _BOOK),
    _c("raven_book_gaps_total", "Sequence breaks found in the diff depth stream.", _BOOK),
    _c("raven_book_syncs_total", "Snapshots that made the order book live.", _BOOK),
    _c("raven_book_refreshes_total", "Periodic refresh snapshots applied.", _BOOK),
    _c(
        "raven_book_refresh_failures_total",
        "Periodic refresh snapshots that could not be lined up.",
        _BOOK,
    ),
    _c(
        "raven_book_dropped_updates_total",
        "Diff depth events dropped: behind the book, or over the sync buffer.",
        _BOOK,
    ),
    _g("raven_book_buffered_updates", "Diff depth events waiting for a snapshot.", _BOOK),
    _g(
        "raven_book_last_update_timestamp_seconds",
        "Exchange time (Unix) of the newest update applied to the order book.",
        _BOOK,
    ),
    _g(
        "raven_book_levels",
        "Price levels held in the canonical order book, per side. Diff depth can add "
        "levels beyond the snapshot's depth; the periodic refresh trims them.",
        (*_BOOK, "side"),
    ),
    _c("raven_book_snapshots_applied_total", "Snapshots loaded into the canonical books."),
    _c("raven_book_deltas_applied_total", "Book deltas applied to the canonical books."),
    _c("raven_book_stale_drops_total", "Book deltas dropped because their book was stale."),
    _c(
        "raven_book_resync_requests_total",
        "Resyncs the pipeline asked of a connector (a rejected update, a crossed book).",
    ),
)

VALIDATION = (
    _c("raven_validation_checked_total", "Events checked by the validation rules."),
    _c(
        "raven_validation_rejections_total",
        "Events the validation layer rejected, by rule.",
        ("exchange", "rule"),
    ),
    _c(
        "raven_validation_sanitized_total",
        "Prices or quantities snapped to the tick or step grid, by rule.",
        ("exchange", "rule"),
    ),
    _c(
        "raven_validation_flagged_total",
        "Problems counted but not rejected (a crossed or locked L2 book), by rule.",
        ("exchange", "rule"),
    ),
)

PIPELINE = (
    _c("raven_pipeline_events_total", "Events ingested by the pipeline (all exchanges)."),
    _c("raven_pipeline_events_accepted_total", "Events that passed validation and were applied."),
    _c("raven_pipeline_events_rejected_total", "Events rejected by validation."),
    _c("raven_candles_closed_total", "Candles closed by Raven's candle builder."),
    _h(
        "raven_stage_latency_seconds",
        "Latency per hop: exchange_to_receive (exchange time to Raven's receive time), "
        "receive_to_published (to the bus), published_to_sent (to a client stream's writer), "
        "sent_to_written (per frame: the writer's gRPC write until the transport completed it).",
        ("stage",),
    ),
    _c("raven_bus_published_total", "Events published to the fan-out bus, by kind.", ("kind",)),
    _g("raven_bus_subscribers", "Subscriber queues routed by the bus."),
    _g("raven_book_views", "Book views alive, by mode (deltas, snapshots).", ("mode",)),
    _g(
        "raven_last_event_timestamp_seconds",
        "Receive time (Unix) of the newest event held in the latest state, per symbol and kind.",
        ("exchange", "symbol", "kind"),
    ),
)

STREAMS = (
    _g("raven_streams_open", "Open StreamMarketData calls (connected clients)."),
    _c("raven_streams_opened_total", "StreamMarketData calls accepted."),
    _c(
        "raven_streams_refused_total",
        "StreamMarketData calls refused, by reason (connection_limit, shutting_down).",
        ("reason",),
    ),
    _c(
        "raven_stream_disconnects_total",
        "Client streams the server ended, by reason (slow_consumer, timeout, bad_request).",
        ("reason",),
    ),
    _c("raven_stream_events_queued_total", "Events queued for client streams."),
    _c("raven_stream_events_sent_total", "Events handed to client streams' writers."),
    _c(
        "raven_stream_events_dropped_total",
        "Events not sent because a client's queue was full, by overflow policy "
        "(conflate: replaced by a newer one; drop_oldest: dropped, the client got a Gap).",
        ("policy",),
    ),
    _g("raven_stream_queue_depth", "Events queued over all open client streams."),
    _g("raven_stream_queue_depth_max", "Events queued in the fullest client stream."),
    _g(
        "raven_stream_slow_consumers",
        "Open streams failed by their DISCONNECT policy, about to be closed.",
    ),
    _c("raven_grpc_auth_rejections_total", "gRPC calls refused for a missing or wrong token."),
    _c("raven_history_requests_total", "GetHistoricalData calls."),
    _c("raven_history_requests_rejected_total", "GetHistoricalData calls refused as invalid."),
    _c("raven_history_events_sent_total", "Events sent by GetHistoricalData."),
)

STORES = (
    _g("raven_store_up", "1 while the store takes writes (its circuit breaker is closed).", _STORE),
    _c("raven_store_events_recorded_total", "Events handed to the store's writer.", _STORE),
    _c("raven_store_events_written_total", "Events the store confirmed written.", _STORE),
    _c("raven_store_batches_written_total", "Batches the store confirmed written.", _STORE),
    _c(
        "raven_store_write_failures_total",
        "Failed batch writes (the events are kept and retried).",
        _STORE,
    ),
    _c("raven_store_write_retries_total", "Writes that repeated a batch that had failed.", _STORE),
    _c(
        "raven_store_events_rejected_total",
        "Events the store refused as invalid (kept in the rejected spool, not retried).",
        _STORE,
    ),
    _c("raven_store_events_spilled_total", "Events moved from memory to the disk spool.", _STORE),
    _g(
        "raven_store_write_lag_seconds",
        "Age of the oldest event not yet written (0 when caught up).",
        _STORE,
    ),
    _g("raven_store_buffered_events", "Events waiting in memory for the store.", _STORE),
    _g("raven_store_spooled_events", "Events waiting in the store's disk spool.", _STORE),
    _g("raven_store_spool_bytes", "Size of the store's disk spool.", _STORE),
    _h("raven_store_batch_write_seconds", "Duration of one batch write call.", _STORE),
    _c("raven_store_book_checkpoints_total", "Live books recorded as periodic checkpoints."),
    _c(
        "raven_store_retention_deleted_total",
        "Rows deleted by the embedded store's retention.",
        _STORE,
    ),
)

HEALTH = (
    _g(
        "raven_component_healthy",
        "1 when the component passes its health check (the /health endpoint's view).",
        ("component", "kind"),
    ),
    _g(
        "raven_component_ready",
        "1 when the component counts as ready (the /ready endpoint's view).",
        ("component", "kind"),
    ),
    _g(
        "raven_circuit_breaker_state",
        "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
        ("breaker",),
    ),
    _c(
        "raven_circuit_breaker_failures_total",
        "Failed calls reported to the breaker.",
        ("breaker",),
    ),
    _c(
        "raven_circuit_breaker_rejections_total",
        "Calls the breaker refused while open.",
        ("breaker",),
    ),
    _c("raven_tracing_sampled_events_total", "Market events traced hop by hop (tracing on)."),
)

ALL: tuple[Family, ...] = (
    PROCESS + CONNECTOR + REST + BOOKS + VALIDATION + PIPELINE + STREAMS + STORES + HEALTH
)
