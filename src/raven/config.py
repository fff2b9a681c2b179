"""Raven's one typed configuration object.

Loaded from a TOML file (see `config/example.toml`), then overridden by
environment variables named after the key path with double underscores:
`RAVEN__SERVER__PORT=50052`, `RAVEN__EXCHANGES__BINANCE_FUTURES__SYMBOLS='["BTCUSDT"]'`.
Values in the environment are read as TOML values when they parse as one
(numbers, booleans, arrays) and as plain strings otherwise.

Every section is a frozen struct that forbids unknown fields, so a misspelt
key is an error that names it; bad values are errors that name the key too.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

ENV_PREFIX = "RAVEN__"

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]


class ConfigError(Exception):
    """The configuration is invalid; the message names the file and the key."""


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class TlsConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    cert_file: str = ""  # PEM certificate chain; TLS is on when both files are set
    key_file: str = ""  # PEM private key

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file and self.key_file)


class ServerConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Port = 50051
    max_connections: PositiveInt = 1000
    # Bearer token clients must send ("authorization: Bearer <token>"); empty: no auth.
    auth_token: str = ""
    heartbeat_interval_s: PositiveFloat = 10.0  # server heartbeat on an idle stream
    client_timeout_s: PositiveFloat = 60.0  # drop a stream silent for this long
    queue_size: PositiveInt = 10_000  # events queued per stream before its policy applies
    max_events_per_frame: PositiveInt = 500  # cap on events packed into one frame
    # Frames written per second over all client streams, at most: with N streams
    # open, each writes at most every N / max_frames_per_s seconds, so many
    # clients get bigger frames rather than more of them (a gRPC write costs the
    # server tens of µs whatever its size). 0: no limit.
    max_frames_per_s: NonNegativeFloat = 5000.0
    default_book_depth: PositiveInt = 20
    max_book_depth: PositiveInt = 1000  # deepest book view a client may ask for
    # BOOK_MODE_SNAPSHOTS: interval when the client names none, and the allowed range.
    default_book_interval_ms: PositiveInt = 1000
    min_book_interval_ms: PositiveInt = 10
    max_book_interval_ms: PositiveInt = 60_000
    shutdown_grace_s: NonNegativeFloat = 5.0
    tls: TlsConfig = TlsConfig()


class BinanceFuturesConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    # Loopback simulator by default; config/production.toml points at Binance.
    ws_url: str = "ws://127.0.0.1:8800"
    rest_url: str = "http://127.0.0.1:8800"
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    # Stream types subscribed for every symbol, in Binance's own names.
    streams: tuple[str, ...] = (
        "aggTrade", "bookTicker", "depth@100ms", "kline_1m", "markPrice@1s", "forceOrder",
    )  # fmt: skip
    max_streams_per_connection: PositiveInt = 1024
    reconnect_initial_s: PositiveFloat = 0.5
    reconnect_max_s: PositiveFloat = 30.0
    # Reconnect a stream that should be busy but sent nothing for this long.
    silence_timeout_s: PositiveFloat = 30.0
    max_frame_bytes: PositiveInt = 4 * 1024 * 1024
    # Stream types that should never be quiet for silence_timeout_s (aggTrade, trade,
    # bookTicker, depth, depthN, kline, markPrice, forceOrder); others may be.
    busy_streams: tuple[str, ...] = ("bookTicker", "depth", "markPrice")
    # Client ping interval (s) to notice a dead TCP link on a quiet connection; 0: off.
    ping_interval_s: NonNegativeFloat = 60.0
    # Replace each connection after this long, before the venue's 24-hour close.
    max_connection_age_s: PositiveFloat = 84_600.0
    # Longest overlap of an old and a new connection before switching regardless.
    handover_timeout_s: PositiveFloat = 30.0
    # Streams that don't fit in a URL this long are subscribed by SUBSCRIBE messages,
    # at most subscribe_batch_size per message and subscribe_messages_per_s per connection.
    max_url_length: PositiveInt = 4000
    subscribe_batch_size: PositiveInt = 100
    subscribe_messages_per_s: Annotated[int, msgspec.Meta(ge=1, le=9)] = 5
    # REST request weight per UTC minute, and how much of it Raven leaves unused
    # (other users of the IP; requests in flight across a minute boundary).
    rest_weight_limit: PositiveInt = 2400
    rest_weight_reserve: Annotated[int, msgspec.Meta(ge=0)] = 240
    rest_timeout_s: PositiveFloat = 10.0
    # Circuit breaker on REST: open after this many failures in a row, probe after the timeout.
    rest_failure_threshold: PositiveInt = 5
    rest_reset_timeout_s: PositiveFloat = 10.0
    # Depth snapshot size (the venue allows 5, 10, 20, 50, 100, 500, 1000) and fetches at once.
    snapshot_limit: Literal[5, 10, 20, 50, 100, 500, 1000] = 1000
    snapshot_concurrency: PositiveInt = 2
    # Rebuild each book from a fresh snapshot this often (s), so levels beyond the
    # snapshot depth don't go stale; 0: never. Refreshes beyond half the REST weight
    # budget are skipped (counted), so resyncs never wait for them.
    book_refresh_s: NonNegativeFloat = 600.0
    # Depth events held per symbol while its snapshot is on the way (oldest dropped).
    book_buffer_limit: PositiveInt = 10_000
    # Re-read exchangeInfo (tick and step sizes) this often (s); 0: only at start.
    exchange_info_refresh_s: NonNegativeFloat = 3600.0

    def __post_init__(self) -> None:
        for url, scheme in ((self.ws_url, ("ws://", "wss://")), (self.rest_url, ("http", "https"))):
            if not url.startswith(scheme):
                raise ValueError(f"{url!r} must start with {' or '.join(scheme)}")
        if not self.symbols:
            raise ValueError("symbols must name at least one symbol")
        if self.rest_weight_reserve >= self.rest_weight_limit:
            raise ValueError("rest_weight_reserve must be below rest_weight_limit")


class ExchangesConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    binance_futures: BinanceFuturesConfig = BinanceFuturesConfig()


class MonitoringConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """[monitoring]: Prometheus /metrics and /health, /ready on their own ports."""

    enabled: bool = True  # false: no metrics or health HTTP endpoints
    host: str = "127.0.0.1"
    metrics_port: Port = 9090  # 0 picks a free port (tests)
    health_check_port: Port = 9091  # may equal metrics_port: one listener serves both
    # A feed connection with no message for this long is stale: /health says 503.
    stale_feed_s: PositiveFloat = 15.0
    # A store that cannot write for this long is down: /health says 503.
    store_down_s: PositiveFloat = 60.0
    # How often health is re-evaluated for the gRPC health service; staleness is
    # the absence of events, so only a clock can notice it.
    health_interval_s: PositiveFloat = 1.0
    # An order book not live for this long (resyncing, or syncing the first time
    # after its first snapshot request) makes /health 503; /ready waits for books.
    stale_book_s: PositiveFloat = 30.0


class EmbeddedStoreConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """[database.embedded]: the DuckDB file at [database] path."""

    retention_days: NonNegativeFloat = 30.0  # delete history older than this; 0: keep all
    retention_check_interval_s: PositiveFloat = 3600.0  # how often old rows are deleted
    memory_limit: str = "1GB"  # DuckDB's own cap on the memory it uses for queries


class InfluxDBConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """[database.influxdb]: line protocol over HTTP, 1.x or 2.x API."""

    url: str = "http://127.0.0.1:8086"
    api: Literal["v1", "v2"] = "v1"
    database: str = "raven"  # v1: created when missing
    username: str = ""  # v1, optional
    password: str = ""  # v1; better set RAVEN__DATABASE__INFLUXDB__PASSWORD
    org: str = ""  # v2; the token comes from $INFLUX_TOKEN
    bucket: str = "raven"  # v2: must exist
    timeout_s: PositiveFloat = 10.0  # per HTTP request
    float_fields: bool = (
        True  # also write prices/quantities as floats (<name>_float) for dashboards
    )
    max_body_bytes: PositiveInt = 4 * 1024 * 1024  # split larger batches into several requests

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url {self.url!r} must start with http:// or https://")


class WriterConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """[database.writer]: batching, buffering and the circuit breaker, per store."""

    batch_size: PositiveInt = 20_000  # records per write: a commit costs ~3 ms, amortized here
    flush_interval_s: PositiveFloat = 1.0  # write a partial batch after this long
    max_buffer_events: PositiveInt = 200_000  # in memory per store; older ones spill to the spool
    spool_dir: str = "data/spool"  # one <store>.spool file per store
    spool_fsync: bool = False  # fsync spool writes: survive power loss, at a latency cost
    failure_threshold: PositiveInt = 3  # failed writes in a row that open the breaker
    probe_interval_s: PositiveFloat = 5.0  # while open, one probe write this often
    retry_delay_s: NonNegativeFloat = 0.5  # pause after a failure while the breaker is closed
    write_timeout_s: PositiveFloat = 30.0  # a write taking longer counts as failed
    stop_timeout_s: NonNegativeFloat = 10.0  # at shutdown, write for this long, spool the rest

    def __post_init__(self) -> None:
        if self.max_buffer_events < self.batch_size:
            raise ValueError("max_buffer_events must be at least batch_size")


class DatabaseConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    backend: Literal["embedded", "influxdb", "both", "none"] = "embedded"
    path: str = "data/raven.duckdb"
    embedded: EmbeddedStoreConfig = EmbeddedStoreConfig()
    influxdb: InfluxDBConfig = InfluxDBConfig()
    writer: WriterConfig = WriterConfig()


class HistoryConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """[history]: GetHistoricalData limits and the book checkpoints it rebuilds from."""

    max_range_s: PositiveFloat = 7 * 86400.0  # longest start..end of one request
    max_events: PositiveInt = 1_000_000  # per call; a larger `limit` is capped (use the cursor)
    batch_size: PositiveInt = 1000  # events per HistoricalDataResponse message
    book_checkpoint_interval_s: PositiveFloat = 60.0  # full books stored this often


class SimulatorConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Port = 8800
    seed: int = 7
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    # Market events per second across all symbols.
    rate: PositiveFloat = 50.0
    # Market model: price levels per side of each book; share of events that are
    # trades; share of trades that are liquidations (forceOrder).
    book_depth: PositiveInt = 1000
    trade_share: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.3
    liquidation_share: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.02
    # Book changes kept per symbol so tests can ask for the true book at an update id.
    truth_history: PositiveInt = 100_000
    # Venue limits, configurable (and compressible for tests).
    max_streams_per_connection: PositiveInt = 1024
    max_incoming_per_s: PositiveInt = 10  # past it: close 1008 "Too many requests"
    ping_interval_s: PositiveFloat = 180.0  # server ping, payload = a ms timestamp
    pong_timeout_s: PositiveFloat = 600.0  # no pong for this long: disconnect
    max_connection_s: PositiveFloat = 86_400.0  # the 24-hour connection limit
    rest_weight_limit: PositiveInt = 2400  # request weight per UTC minute per IP
    rest_ban_s: PositiveFloat = 120.0  # first 418 ban; each later ban doubles, up to 3 days
    rest_429s_before_ban: NonNegativeInt = 2  # over-limit requests in a minute before a 418
    # Frames queued per connection; a connection that falls this far behind is closed 1008.
    queue_frames: PositiveInt = 50_000
    # Frames each connection remembers of what it was sent (for tests; 0 keeps none).
    record_frames: NonNegativeInt = 10_000
    # Replay a capture file instead of simulating (see README "Record and replay").
    replay_file: str = ""
    replay_speed: NonNegativeFloat = 1.0  # 0: as fast as the clients read
    replay_start_grace_s: NonNegativeFloat = 1.0  # after the first subscription, before playing
    # Faults applied on a schedule, in `raven sim --fault` syntax (see README).
    faults: tuple[str, ...] = ()


class ValidationConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """[validation]: the citadel's rules (raven.core.citadel)."""

    enabled: bool = True  # false: events pass unchecked (duplicates included)
    # Fraction of a tick (or step) within which an off-grid value is a rounding
    # error and is snapped to the grid; further off it is rejected.
    grid_tolerance: Annotated[float, msgspec.Meta(ge=0, lt=0.5)] = 0.001
    # Reject a trade / quote / liquidation price further than this fraction from
    # the symbol's reference price (last trade, quote mid or mark price); 0: off.
    max_price_deviation: NonNegativeFloat = 0.1
    # After this many consecutive band rejections on a symbol the next price is
    # taken as the new reference (the market really moved, or the old one was bad).
    price_band_reanchor_after: PositiveInt = 10
    max_future_s: NonNegativeFloat = 10.0  # exchange time ahead of receive time; 0: off
    # Exchange time behind receive time (not checked for REST book snapshots,
    # whose time is the book's last change); 0: off, e.g. to replay old captures.
    max_past_s: NonNegativeFloat = 300.0
    # Recent trade ids per symbol remembered to drop duplicates (~70 bytes each; the
    # connector already drops the repeats of a reconnect overlap: this is a second net).
    trade_id_window: PositiveInt = 2_000
    # Resync a book that stays crossed or locked for this many updates; 0: never.
    crossed_book_resync_after: Annotated[int, msgspec.Meta(ge=0)] = 100
    log_interval_s: NonNegativeFloat = 10.0  # at most one log line per rule and symbol per this


_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def interval_seconds(name: str) -> int:
    """ "1s" -> 1, "5m" -> 300, "1d" -> 86400; ValueError for anything else."""
    match = re.fullmatch(r"([1-9][0-9]*)([smhd])", name)
    if match is None:
        raise ValueError(f"bad interval {name!r}: expected a number and s, m, h or d, e.g. 1m")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


class CandlesConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """[candles]: candles Raven builds from trades."""

    # Bars are aligned to the Unix epoch, so each interval must divide a day.
    intervals: tuple[str, ...] = ("1s", "1m", "5m", "1h")

    def __post_init__(self) -> None:
        for name in self.intervals:
            seconds = interval_seconds(name)
            if 86400 % seconds:
                raise ValueError(f"interval {name!r} must divide a day evenly (1s up to 1d)")
        if len(set(self.intervals)) != len(self.intervals):
            raise ValueError("intervals must not repeat")


class LoggingConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """[logging]: RAVEN_LOG and RAVEN_LOG_FORMAT, when set, win over these."""

    # Default level and per-logger levels, RUST_LOG syntax: "info,raven.api=debug".
    level: str = "info"
    # "text": one human-readable line per event; "json": one JSON object per line.
    format: Literal["text", "json"] = "text"

    def __post_init__(self) -> None:
        from raven.logs import parse_spec  # logs imports nothing from here

        parse_spec(self.level)


class TracingConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """[tracing]: optional OpenTelemetry tracing, off by default.

    Needs the `tracing` extra (`pip install raven-md[tracing]`); the `otlp`
    exporter also needs `opentelemetry-exporter-otlp-proto-grpc`.
    """

    enabled: bool = False
    # otlp: OTLP/gRPC to `endpoint`; console: spans on stdout; memory: kept in
    # memory (tests and debugging).
    exporter: Literal["otlp", "console", "memory"] = "otlp"
    endpoint: str = "http://127.0.0.1:4317"
    service_name: str = "raven"
    # Share of traces kept for operation spans (reconnects, gRPC calls, writes).
    sample_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    # Share of market events traced hop by hop (connector -> pipeline -> bus).
    event_sample_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.001


class RavenConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    server: ServerConfig = ServerConfig()
    exchanges: ExchangesConfig = ExchangesConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    database: DatabaseConfig = DatabaseConfig()
    validation: ValidationConfig = ValidationConfig()
    candles: CandlesConfig = CandlesConfig()
    logging: LoggingConfig = LoggingConfig()
    tracing: TracingConfig = TracingConfig()
    simulator: SimulatorConfig = SimulatorConfig()
    history: HistoryConfig = HistoryConfig()


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> RavenConfig:
    """Read `path` (or only defaults when None), apply the environment, validate."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    env_keys = _apply_environment(raw, os.environ if environ is None else environ)
    if env_keys:
        source += " + environment (" + ", ".join(env_keys) + ")"
    return config_from_dict(raw, source)


def config_from_dict(raw: Mapping[str, Any], source: str = "config") -> RavenConfig:
    try:
        return msgspec.convert(raw, RavenConfig, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_readable(str(exc))}") from None


def _apply_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> list[str]:
    used = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(keys):
            raise ConfigError(f"environment variable {name}: empty key segment")
        node = raw
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"environment variable {name}: {key!r} is not a section")
            node = child
        node[keys[-1]] = _parse_env_value(environ[name])
        used.append(name)
    return used


def _parse_env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _readable(message: str) -> str:
    """msgspec says "... - at `$.server.port`"; we say "server.port: ..."."""
    head, sep, where = message.rpartition(" - at `$.")
    key = where.rstrip("`") if sep else ""
    if not sep:
        head = message
    unknown = re.fullmatch(r"Object contains unknown field `(.+)`", head)
    if unknown:
        return f"unknown key {'.'.join(filter(None, (key, unknown.group(1))))!r}"
    return f"{key}: {head}" if key else head
