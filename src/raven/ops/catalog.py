"""Every metric family Raven exports, and the names reserved for layers still to come.

Conventions (Prometheus): a `raven_` prefix; counters end in `_total`;
base units in the name (`_seconds`, `_bytes`); timestamps are
`_timestamp_seconds` gauges (Unix time) so alerts compute ages with
`time() - x`. Labels have bounded cardinality: `exchange`, `connection`
(fixed by the config), `kind` (the 7 data kinds), `symbol` only where the
symbol set is configured, `policy`, `reason`, `rule`, `stage`, `store`,
`breaker`, `component`. Never a stream id, peer address or price.

A family with no samples in a scrape is not exported, so reserved families
cost nothing until their layer adds a source (see README "Metrics").
"""

from __future__ import annotations

from raven.ops.metrics import COUNTER, GAUGE, HISTOGRAM, Family

_CONN = ("exchange", "connection")

EXPORTED: tuple[Family, ...] = (
    Family("raven_build_info", GAUGE, "Raven's version; the value is always 1.", ("version",)),
    # --- connectors: one series per WebSocket connection ----------------------
    Family("raven_connector_connects_total", COUNTER, "WebSocket connections established.", _CONN),
    Family(
        "raven_connector_reconnects_total",
        COUNTER,
        "WebSocket connections established after the first one.",
        _CONN,
    ),
    Family(
        "raven_connector_connect_failures_total",
        COUNTER,
        "WebSocket connection attempts or sessions that failed with an error.",
        _CONN,
    ),
    Family("raven_connector_connected", GAUGE, "1 while the connection is open.", _CONN),
    Family(
        "raven_connector_last_message_timestamp_seconds",
        GAUGE,
        "Unix time of the newest frame received on the connection (0: none yet).",
        _CONN,
    ),
    Family("raven_connector_frames_total", COUNTER, "Frames received.", _CONN),
    Family("raven_connector_events_total", COUNTER, "Normalized events decoded.", _CONN),
    Family("raven_connector_replies_total", COUNTER, "Replies to subscription requests.", _CONN),
    Family(
        "raven_connector_frames_skipped_total",
        COUNTER,
        "Frames counted and skipped, by reason (malformed, unknown_event, ...).",
        (*_CONN, "reason"),
    ),
    # --- pipeline, state and fan-out -----------------------------------------
    Family("raven_pipeline_events_total", COUNTER, "Events ingested by the pipeline."),
    Family("raven_bus_published_total", COUNTER, "Events published to the fan-out bus."),
    Family("raven_bus_subscribers", GAUGE, "Subscriber queues routed by the bus."),
    Family(
        "raven_last_event_timestamp_seconds",
        GAUGE,
        "Receive time (Unix) of the newest event held in the latest state, per symbol and kind.",
        ("exchange", "symbol", "kind"),
    ),
    # --- client streams ------------------------------------------------------
    Family("raven_streams_open", GAUGE, "Open StreamMarketData calls (connected clients)."),
    Family("raven_stream_events_queued_total", COUNTER, "Events queued for client streams."),
    Family("raven_stream_events_sent_total", COUNTER, "Events handed to client streams' writers."),
    Family(
        "raven_stream_events_dropped_total",
        COUNTER,
        "Events not sent because a client's queue was full, by overflow policy "
        "(conflate: replaced by a newer one; drop_oldest: dropped, the client got a Gap).",
        ("policy",),
    ),
    Family("raven_stream_queue_depth", GAUGE, "Events queued over all open client streams."),
    Family("raven_stream_queue_depth_max", GAUGE, "Events queued in the fullest client stream."),
    Family(
        "raven_stream_slow_consumers",
        GAUGE,
        "Open streams failed by their DISCONNECT policy, about to be closed.",
    ),
    # --- health --------------------------------------------------------------
    Family(
        "raven_component_healthy",
        GAUGE,
        "1 when the component passes its health check (the /health endpoint's view).",
        ("component", "kind"),
    ),
    # --- circuit breakers (stores, exchange REST) ----------------------------
    Family(
        "raven_circuit_breaker_state",
        GAUGE,
        "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
        ("breaker",),
    ),
    Family(
        "raven_circuit_breaker_failures_total",
        COUNTER,
        "Failed calls reported to the breaker.",
        ("breaker",),
    ),
    Family(
        "raven_circuit_breaker_rejections_total",
        COUNTER,
        "Calls the breaker refused while open.",
        ("breaker",),
    ),
)

# Declared now so the names are settled; their layers add the sources.
RESERVED: tuple[Family, ...] = (
    Family(
        "raven_received_events_total",
        COUNTER,
        "Normalized events received from the exchange, by kind.",
        ("exchange", "kind"),
    ),
    Family(
        "raven_validation_rejections_total",
        COUNTER,
        "Events the validation layer rejected, by rule.",
        ("exchange", "rule"),
    ),
    Family(
        "raven_validation_sanitized_total",
        COUNTER,
        "Events whose price or quantity was rounded to the tick or step size.",
        ("exchange", "kind"),
    ),
    Family(
        "raven_book_resyncs_total",
        COUNTER,
        "Order book rebuilds from a fresh snapshot.",
        ("exchange", "symbol"),
    ),
    Family(
        "raven_book_stale",
        GAUGE,
        "1 while the symbol's order book is stale (resync in progress).",
        ("exchange", "symbol"),
    ),
    Family(
        "raven_book_last_update_timestamp_seconds",
        GAUGE,
        "Unix time of the newest update applied to the order book.",
        ("exchange", "symbol"),
    ),
    Family(
        "raven_rest_weight_used",
        GAUGE,
        "Exchange REST request weight used in the current window.",
        ("exchange",),
    ),
    Family("raven_rest_weight_limit", GAUGE, "Exchange REST request weight limit.", ("exchange",)),
    Family(
        "raven_rest_requests_total",
        COUNTER,
        "Exchange REST requests, by outcome (ok, error, rate_limited).",
        ("exchange", "outcome"),
    ),
    Family(
        "raven_store_events_written_total",
        COUNTER,
        "Events written to the store.",
        ("store",),
    ),
    Family(
        "raven_store_write_failures_total",
        COUNTER,
        "Failed batch writes (the events are kept and retried).",
        ("store",),
    ),
    Family(
        "raven_store_write_lag_seconds",
        GAUGE,
        "Age of the oldest event not yet written (0 when caught up).",
        ("store",),
    ),
    Family(
        "raven_store_buffered_events", GAUGE, "Events buffered in memory for the store.", ("store",)
    ),
    Family(
        "raven_store_spooled_events", GAUGE, "Events spooled to disk for the store.", ("store",)
    ),
    Family("raven_store_spool_bytes", GAUGE, "Size of the store's disk spool.", ("store",)),
    Family(
        "raven_store_batch_write_seconds",
        HISTOGRAM,
        "Duration of one batch write to the store.",
        ("store",),
    ),
    Family(
        "raven_stage_latency_seconds",
        HISTOGRAM,
        "Latency per hop: exchange_to_receive, receive_to_published, published_to_sent.",
        ("stage",),
    ),
    Family(
        "raven_stream_disconnects_total",
        COUNTER,
        "Client streams the server closed, by reason (slow_consumer, timeout, bad_request).",
        ("reason",),
    ),
    Family(
        "raven_candles_closed_total",
        COUNTER,
        "Candles closed by the candle builder.",
        ("exchange", "interval"),
    ),
)

ALL: tuple[Family, ...] = EXPORTED + RESERVED
