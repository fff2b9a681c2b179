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
    default_book_depth: PositiveInt = 20
    shutdown_grace_s: NonNegativeFloat = 5.0
    tls: TlsConfig = TlsConfig()


class BinanceFuturesConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    # Loopback simulator by default; config/production.toml points at Binance.
    ws_url: str = "ws://127.0.0.1:8800"
    rest_url: str = "http://127.0.0.1:8800"
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    # Stream types subscribed for every symbol, in Binance's own names.
    streams: tuple[str, ...] = ("aggTrade", "bookTicker")
    max_streams_per_connection: PositiveInt = 1024
    reconnect_initial_s: PositiveFloat = 0.5
    reconnect_max_s: PositiveFloat = 30.0
    # Reconnect a stream that should be busy but sent nothing for this long.
    silence_timeout_s: PositiveFloat = 30.0
    max_frame_bytes: PositiveInt = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        for url, scheme in ((self.ws_url, ("ws://", "wss://")), (self.rest_url, ("http", "https"))):
            if not url.startswith(scheme):
                raise ValueError(f"{url!r} must start with {' or '.join(scheme)}")
        if not self.symbols:
            raise ValueError("symbols must name at least one symbol")


class ExchangesConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    binance_futures: BinanceFuturesConfig = BinanceFuturesConfig()


class MonitoringConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    metrics_port: Port = 9090
    health_check_port: Port = 9091


class DatabaseConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    backend: Literal["embedded", "influxdb", "both", "none"] = "embedded"
    path: str = "data/raven.duckdb"


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
    """[validation]: the citadel's rules (filled in by the validation layer)."""

    enabled: bool = True


class CandlesConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """[candles]: candles Raven builds from trades."""

    intervals: tuple[str, ...] = ("1s", "1m", "5m", "1h")


class LoggingConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """[logging]: RAVEN_LOG, when set, wins over `level`."""

    level: str = "info"


class TracingConfig(_Section, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """[tracing]: optional OpenTelemetry tracing, off by default."""

    enabled: bool = False


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
