"""Logging set-up: one line per event, levels per component, text or JSON.

Levels use the syntax of Rust's RUST_LOG: a default level and per-logger
overrides, comma separated: `info,raven.api=debug,aiohttp=warning`. A
logger name covers its children (`raven.connectors` covers
`raven.connectors.binance`). The spec comes from `RAVEN_LOG`, else from
`[logging] level`.

Every line carries a UTC timestamp, the level and the component (the
logger name). The text format is for people:

    2024-05-01T12:00:00.123Z INFO  raven.api: stream 3f2a opened by ipv4:127.0.0.1:5000

The JSON format (`RAVEN_LOG_FORMAT=json` or `[logging] format = "json"`) is
one object per line for log shippers:

    {"ts":"2024-05-01T12:00:00.123Z","level":"info","logger":"raven.api","msg":"..."}

Raven logs state changes (connects, reconnects, streams opened, errors),
never one line per market event at INFO: the hot path only logs at DEBUG,
and only for things that are not events (skipped frames).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import TextIO

import msgspec

LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 10,
}
FORMATS = ("text", "json")
_TEXT = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"
_overridden: set[str] = set()  # loggers whose level the last setup set, reset on the next


def parse_spec(spec: str) -> tuple[int, dict[str, int]]:
    """ "info,raven.api=debug" -> (INFO, {"raven.api": DEBUG}); ValueError on bad input."""
    default = logging.INFO
    overrides: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, level = part.rpartition("=")
        level_key = level.strip().lower()
        if level_key not in LEVELS:
            choices = ", ".join(LEVELS)
            raise ValueError(f"unknown log level {level!r} in {part!r}; expected one of: {choices}")
        if sep:
            if not name.strip():
                raise ValueError(f"empty logger name in {part!r}")
            overrides[name.strip()] = LEVELS[level_key]
        else:
            default = LEVELS[level_key]
    return default, overrides


def _utc_time(record: logging.LogRecord) -> str:
    secs = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{secs}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """`<UTC time> <LEVEL> <component>: <message>`, one line (tracebacks follow)."""

    def __init__(self) -> None:
        super().__init__(_TEXT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc_time(record)


class _JsonLine(msgspec.Struct, omit_defaults=True):
    ts: str
    level: str
    logger: str
    msg: str
    exc: str = ""  # the formatted traceback, when there is one


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and, when set, exc."""

    _encode = msgspec.json.Encoder().encode

    def format(self, record: logging.LogRecord) -> str:
        exc = ""
        if record.exc_info:
            exc = self.formatException(record.exc_info)
        elif record.exc_text:
            exc = record.exc_text
        line = _JsonLine(
            ts=_utc_time(record),
            level=record.levelname.lower(),
            logger=record.name,
            msg=record.getMessage(),
            exc=exc,
        )
        return self._encode(line).decode()


def setup_logging(
    spec: str | None = None,
    fmt: str | None = None,
    *,
    stream: TextIO | None = None,
    environ: dict[str, str] | None = None,
) -> None:
    """Install one handler on the root logger and set per-logger levels.

    `spec` and `fmt` are the configured values; RAVEN_LOG and
    RAVEN_LOG_FORMAT in the environment win over them. Raises ValueError
    naming the variable on a bad value.
    """
    env = os.environ if environ is None else environ
    if env.get("RAVEN_LOG"):
        spec, source = env["RAVEN_LOG"], "RAVEN_LOG"
    else:
        source = "[logging] level"
    try:
        default, overrides = parse_spec(spec or "")
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    fmt = env.get("RAVEN_LOG_FORMAT") or fmt or "text"
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: expected one of: {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(default)
    for name in _overridden - overrides.keys():
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name, level in overrides.items():
        logging.getLogger(name).setLevel(level)
    _overridden.clear()
    _overridden.update(overrides)
