"""Health checks of each component kind, driven by the real components' own state.

The connections, book sync and store writer are the real classes, not run
against a venue or a database here: their plain stats are set or driven by
hand, and the registry's clock is a fake, so each state and threshold is
checked exactly. tests/ops/test_health_run.py covers the same on a live run.
"""

from __future__ import annotations

from pathlib import Path

from grpc_health.v1 import health, health_pb2

from raven.api.service import SERVICE
from raven.config import WriterConfig, config_from_dict
from raven.connectors.binance.book_sync import BookSync
from raven.connectors.binance.connector import BinanceFuturesConnector
from raven.model import BookDelta, BookSnapshot, Trade
from raven.ops.health import (
    HealthMonitor,
    HealthRegistry,
    book_check,
    feed_check,
    flag_check,
    freshness_check,
    store_check,
)
from raven.storage.memory import MemoryStore
from raven.storage.writer import StoreWriter
from raven.types import S_NS, Side
from tests.helpers import wait_until

T0 = 1_700_000_000 * S_NS


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def test_feed_is_healthy_while_fresh_and_stale_after_the_limit() -> None:
    clock = Clock()
    newest = [0]
    connected = [True]
    registry = HealthRegistry(clock)
    registry.add(
        freshness_check(
            "feed#0", "feed", lambda: newest[0], 5.0, up=lambda: connected[0], since_ns=T0
        )
    )
    assert not registry.evaluate().healthy, "not healthy before started"
    registry.started = True
    report = registry.evaluate()
    assert report.healthy
    assert report.components[0].status == "waiting"
    assert report.components[0].age_s is None

    clock.now = T0 + 6 * S_NS  # never a message, past the limit
    report = registry.evaluate()
    assert (report.healthy, report.status) == (False, "unhealthy")
    assert report.components[0].status == "stale"
    assert "no message for 6.0 s (limit 5 s)" in report.components[0].detail

    newest[0] = clock.now - S_NS // 2
    report = registry.evaluate()
    assert report.healthy
    assert report.components[0].age_s == 0.5

    connected[0] = False  # disconnected but recent: still healthy, not ready
    report = registry.evaluate()
    assert report.healthy
    assert not report.ready
    assert report.components[0].status == "reconnecting"


async def test_monitor_reports_changes_to_the_grpc_health_servicer() -> None:
    up = [True]
    registry = HealthRegistry(Clock())
    registry.started = True
    registry.add(flag_check("grpc", "grpc", lambda: up[0], "stopped"))
    servicer = health.aio.HealthServicer()
    monitor = HealthMonitor(registry, 1.0, servicer, services=("", SERVICE))
    request = health_pb2.HealthCheckRequest(service=SERVICE)
    serving = health_pb2.HealthCheckResponse

    async def status() -> int:
        return (await servicer.Check(request, None)).status  # type: ignore[arg-type]

    await monitor.check_once()
    assert await status() == serving.SERVING
    up[0] = False
    await monitor.check_once()
    assert await status() == serving.NOT_SERVING
    await monitor.check_once()
    assert monitor.changes == 2, "only changes are reported"


def connector() -> BinanceFuturesConnector:
    """A real connector (never run): bookTicker on /public (busy), aggTrade on /market."""
    config = config_from_dict(
        {
            "exchanges": {
                "binance_futures": {"symbols": ["BTCUSDT"], "streams": ["bookTicker", "aggTrade"]}
            }
        },
        "test",
    ).exchanges.binance_futures
    return BinanceFuturesConnector(config, lambda event: None)


def test_a_busy_feed_is_stale_when_silent_a_quiet_one_only_when_down() -> None:
    clock = Clock()
    registry = HealthRegistry(clock)
    registry.start()
    busy, quiet = connector().connections
    assert (busy.label, bool(busy.watched)) == ("binance_futures/public#0", True)
    assert (quiet.label, bool(quiet.watched)) == ("binance_futures/market#0", False)
    for conn in (busy, quiet):
        registry.add(feed_check(conn, 5.0, registry.since))
        conn.stats.connected = True
    report = registry.evaluate()
    assert [(c.status, c.healthy, c.ready) for c in report.components] == [
        ("waiting", True, True),
        ("ok", True, True),
    ]
    clock.now += 6 * S_NS  # nothing for 6 s: the busy feed is stale, the quiet one is fine
    busy_status, quiet_status = registry.evaluate().components
    assert (busy_status.status, busy_status.healthy) == ("stale", False)
    assert busy_status.detail == "no message for 6.0 s (limit 5 s)"
    assert busy_status.info["busy_streams"] == 1
    assert (quiet_status.status, quiet_status.healthy) == ("ok", True)

    busy.stats.last_message_ns = quiet.stats.last_message_ns = clock.now - S_NS
    quiet.stats.connected = False
    quiet.stats.disconnected_ns = clock.now
    quiet.stats.last_error = "closed by the venue"
    busy_status, quiet_status = registry.evaluate().components
    assert (busy_status.status, busy_status.healthy, busy_status.age_s) == ("ok", True, 1.0)
    assert (quiet_status.status, quiet_status.healthy, quiet_status.ready) == (
        "reconnecting",
        True,
        False,
    )
    clock.now += 6 * S_NS  # still down 6 s later
    quiet_status = registry.evaluate().components[1]
    assert (quiet_status.status, quiet_status.healthy) == ("down", False)
    assert quiet_status.info["last_error"] == "closed by the venue"


def delta(first: int, last: int, prev: int) -> BookDelta:
    return BookDelta("binance_futures", "BTCUSDT", (("100.0", "1"),), (), first, last, prev, 1, 1)


def test_a_book_syncing_at_start_is_healthy_and_not_ready_stale_too_long_is_unhealthy() -> None:
    clock = Clock()
    asked: list[str] = []
    books = BookSync("binance_futures", ["BTCUSDT"], lambda e: None, asked.append, clock=clock)
    registry = HealthRegistry(clock)
    registry.start()
    newest = [0]
    stats = books.stats["BTCUSDT"]
    registry.add(book_check("book:binance_futures:BTCUSDT", stats, 10.0, lambda: newest[0]))

    def status() -> tuple[str, bool, bool]:
        c = registry.evaluate().components[0]
        return c.status, c.healthy, c.ready

    assert status() == ("waiting", True, False), "no depth event yet: waiting, not ready"
    clock.now += 3600 * S_NS
    assert status() == ("waiting", True, False), "a quiet start is never unhealthy"
    books.on_delta(delta(10, 12, 9))  # the first event asks for a snapshot
    assert asked == ["BTCUSDT"]
    assert status() == ("syncing", True, False)
    clock.now += 11 * S_NS
    assert status() == ("stale", False, False), "a sync that can't finish is unhealthy"
    books.on_snapshot(BookSnapshot("binance_futures", "BTCUSDT", (), (), 11, 1, 1))
    newest[0] = clock.now - S_NS // 10
    c = registry.evaluate().components[0]
    assert (c.status, c.healthy, c.ready, c.age_s) == ("ok", True, True, 0.1)
    assert c.info == {"state": "live", "resyncs": 0, "update_id": 12, "buffered": 0}

    books.on_delta(delta(20, 21, 19))  # pu 19 != 12: a gap, the book resyncs
    assert status() == ("resyncing", True, False)
    clock.now += 10 * S_NS
    assert status() == ("resyncing", True, False)
    clock.now += 1 * S_NS
    c = registry.evaluate().components[0]
    assert (c.status, c.healthy) == ("stale", False)
    assert c.detail == "not live for 11.0 s (limit 10 s)"
    books.on_snapshot(BookSnapshot("binance_futures", "BTCUSDT", (), (), 20, 1, 1))
    assert status() == ("ok", True, True)
    assert registry.evaluate().components[0].info["resyncs"] == 1


def test_an_unlisted_symbols_book_does_not_hold_readiness() -> None:
    books = BookSync("binance_futures", ["NOPEUSDT"], lambda e: None, lambda s: None)
    registry = HealthRegistry(Clock())
    registry.start()
    registry.add(book_check("book:x", books.stats["NOPEUSDT"], 1.0, lambda: 0, lambda: False))
    c = registry.evaluate().components[0]
    assert (c.status, c.healthy, c.ready) == ("unlisted", True, True)


async def test_a_store_down_past_the_limit_is_unhealthy_and_healthy_again_once_written(
    tmp_path: Path,
) -> None:
    clock = Clock()
    store = MemoryStore("memory")
    config = WriterConfig(
        batch_size=10, flush_interval_s=0.01, max_buffer_events=10, failure_threshold=2,
        probe_interval_s=0.05, retry_delay_s=0.01, stop_timeout_s=1.0,
    )  # fmt: skip
    writer = StoreWriter(store, config, tmp_path, wall_ns=clock)
    registry = HealthRegistry(clock)
    registry.start()
    registry.add(store_check(writer, 60.0))
    await writer.start()
    try:
        assert registry.evaluate().components[0].status == "ok"
        store.down = True
        for n in range(25):  # past the memory bound: some go to the spool
            event = Trade("x", "BTCUSDT", "1", "1", Side.BUY, n, clock.now, clock.now + n)
            writer.offer((clock.now + n, event))
        await wait_until(lambda: not writer.up, what="the breaker to open")
        c = registry.evaluate().components[0]
        assert (c.name, c.status, c.healthy) == ("store:memory", "failing", True)
        assert c.info["breaker"] in ("open", "half_open")
        assert c.info["pending_events"] == 25
        assert c.info["last_error"] == "memory is down"

        clock.now += 61 * S_NS  # down for 61 s: events wait, the store is unhealthy
        c = registry.evaluate().components[0]
        assert (c.status, c.healthy) == ("down", False)
        assert c.detail.startswith("down for 61.0 s (limit 60 s), breaker ")
        assert c.info["write_lag_s"] == 61.0
        assert writer.stats().spool_events > 0

        store.down = False  # back: the probe writes, then everything pending
        await wait_until(lambda: writer.pending == 0, what="everything written")
        c = registry.evaluate().components[0]
        assert (c.status, c.healthy, c.info["breaker"]) == ("ok", True, "closed")
        assert writer.write_seconds.count >= writer.failures + writer.batches
    finally:
        await writer.stop()
