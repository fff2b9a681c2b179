"""Logging set-up: one line per event, levels per component from RAVEN_LOG.

RAVEN_LOG uses the syntax of Rust's RUST_LOG: a default level and
per-logger overrides, comma separated: `info,raven.api=debug,aiohttp=warning`.
"""

from __future__ import annotations

import logging
import os
import sys

LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 10,
}


def parse_spec(spec: str) -> tuple[int, dict[str, int]]:
    """ "info,raven.api=debug" -> (INFO, {"raven.api": DEBUG}); ValueError on bad input."""
    default = logging.INFO
    overrides: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, level = part.rpartition("=")
        level_key = level.strip().lower()
        if level_key not in LEVELS:
            raise ValueError(f"RAVEN_LOG: unknown level {level!r} in {part!r}")
        if sep:
            overrides[name.strip()] = LEVELS[level_key]
        else:
            default = LEVELS[level_key]
    return default, overrides


def setup_logging(spec: str | None = None) -> None:
    default, overrides = parse_spec(spec if spec is not None else os.environ.get("RAVEN_LOG", ""))
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s.%(msecs)03d %(levelname)-5s %(name)s: %(message)s",
                          "%Y-%m-%dT%H:%M:%S")
    )  # fmt: skip
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(default)
    for name, level in overrides.items():
        logging.getLogger(name).setLevel(level)
