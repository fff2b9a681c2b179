"""Log set-up: RAVEN_LOG levels per component, text and JSON lines, quiet hot path."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from raven.app import RavenApp
from raven.client import AsyncRavenClient
from raven.config import ConfigError, config_from_dict
from raven.logs import parse_spec, setup_logging
from raven.sim.server import Simulator
from raven.types import Kind
from tests.helpers import wait_until


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        setup_logging("info", environ={})  # resets per-logger levels it set
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", (logging.INFO, {})),
        ("debug", (logging.DEBUG, {})),
        ("info,raven.api=debug", (logging.INFO, {"raven.api": logging.DEBUG})),
        (
            " warn , raven.connectors=TRACE,aiohttp=error ",
            (logging.WARNING, {"raven.connectors": logging.DEBUG, "aiohttp": logging.ERROR}),
        ),
        ("raven=off", (logging.INFO, {"raven": logging.CRITICAL + 10})),
    ],
)
def test_spec_parsing(spec: str, expected: tuple[int, dict[str, int]]) -> None:
    assert parse_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "problem"),
    [("verbose", "unknown log level 'verbose'"), ("info,=debug", "empty logger name")],
)
def test_bad_specs_say_what_is_wrong(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_spec(spec)


def test_environment_wins_and_names_itself_on_error(restore_logging: None) -> None:
    with pytest.raises(ValueError, match=r"^RAVEN_LOG: unknown log level 'loud'"):
        setup_logging("info", environ={"RAVEN_LOG": "loud"})
    with pytest.raises(ValueError, match=r"^\[logging\] level: unknown log level"):
        setup_logging("loud", environ={})
    with pytest.raises(ValueError, match="log format 'xml'"):
        setup_logging("info", environ={"RAVEN_LOG_FORMAT": "xml"})


def test_config_rejects_a_bad_level_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"logging: unknown log level 'chatty'"):
        config_from_dict({"logging": {"level": "chatty"}})
    with pytest.raises(ConfigError, match=r"logging\.format"):
        config_from_dict({"logging": {"format": "xml"}})


def test_text_lines_have_utc_time_level_and_component(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging("warn,raven.api=debug", stream=out, environ={})
    logging.getLogger("raven.api.service").debug("stream %s opened", "abc")
    logging.getLogger("raven.core").info("not shown: below warn")
    logging.getLogger("raven.core").warning("shown")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.fullmatch(stamp + r" DEBUG raven\.api\.service: stream abc opened", lines[0])
    assert re.fullmatch(stamp + r" WARNING raven\.core: shown", lines[1])


def test_json_lines_for_log_shippers(restore_logging: None) -> None:
    out = io.StringIO()
    setup_logging("info", "text", stream=out, environ={"RAVEN_LOG_FORMAT": "json"})
    log = logging.getLogger("raven.connectors.binance")
    log.info('connected "%s"\nsecond line', "public#0")
    try:
        raise OSError("refused")
    except OSError:
        log.exception("connection failed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first.keys() == {"ts", "level", "logger", "msg"}
    assert first["level"] == "info"
    assert first["logger"] == "raven.connectors.binance"
    assert first["msg"] == 'connected "public#0"\nsecond line'
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert second["level"] == "error"
    assert "OSError: refused" in second["exc"]


def test_a_new_setup_resets_levels_the_last_one_set(restore_logging: None) -> None:
    setup_logging("info,raven.x=debug", environ={})
    assert logging.getLogger("raven.x").level == logging.DEBUG
    setup_logging("info", environ={})
    assert logging.getLogger("raven.x").level == logging.NOTSET


async def test_no_log_line_per_market_event_at_info(
    sim: Simulator, app: RavenApp, client: AsyncRavenClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with client.stream(["BTCUSDT", "ETHUSDT"], [Kind.TRADE, Kind.QUOTE]) as stream:
        received = 0

        async def read() -> None:
            nonlocal received
            async for _ in stream:
                received += 1

        reader = asyncio.create_task(read())
        await wait_until(lambda: bool(stream.acks), what="the subscription")
        caplog.clear()
        sim.feed_enabled.set()
        await wait_until(lambda: received >= 300, timeout=30, what="300 events")
        sim.feed_enabled.clear()
        reader.cancel()
    assert [r.getMessage() for r in caplog.records] == [], "nothing logged while events flowed"
