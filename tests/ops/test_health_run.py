"""/health, /ready and the gRPC health service on a live run against the simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from raven.api.service import SERVICE
from raven.app import RavenApp
from raven.connectors.binance.book_sync import BookState
from raven.sim.server import Simulator
from tests.conftest import server_config
from tests.helpers import free_port, wait_until
from tests.ops.scrape import (
    component,
    full_config,
    get_json,
    health_url,
    parse,
    scrape,
    total,
    wait_for_status,
)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class GrpcHealth:
    """The server's gRPC health service, as an orchestrator would ask it."""

    def __init__(self, app: RavenApp) -> None:
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc.port}")
        self.stub: Any = health_pb2_grpc.HealthStub(self.channel)

    async def status(self) -> int:
        reply = await self.stub.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        return int(reply.status)

    async def wait_for(self, status: int, what: str) -> None:
        deadline = time.monotonic() + 20
        while await self.status() != status:  # the monitor's next evaluation
            assert time.monotonic() < deadline, f"gRPC health never said {what}"
            await asyncio.sleep(0.02)


@pytest.fixture
async def watched_app(sim: Simulator) -> AsyncIterator[RavenApp]:
    """A server (trades and quotes, no books) whose busy feeds are stale after 1 s."""
    config = server_config(sim, monitoring={"stale_feed_s": 1.0, "health_interval_s": 0.05})
    server = RavenApp(config)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def busy_feeds_stale(body: Any) -> bool:
    return all(
        c["status"] == "stale"
        for c in body["components"]
        if c["kind"] == "feed" and c["info"]["busy_streams"]
    )


async def test_health_turns_503_when_the_feed_stalls_and_200_when_it_recovers(
    sim: Simulator, watched_app: RavenApp
) -> None:
    app = watched_app
    url = health_url(app)
    grpc_health = GrpcHealth(app)
    try:
        sim.feed_enabled.set()
        connections = app.connectors[0].connections  # type: ignore[attr-defined]
        await wait_until(
            lambda: all(c.last_message_ns for c in connections), what="a message on each feed"
        )
        body = await wait_for_status(url, 200, "healthy with the feed on")
        assert body["status"] == "ok"
        assert {c["kind"] for c in body["components"]} == {"feed", "grpc"}
        assert all(c["age_s"] is not None for c in body["components"] if c["kind"] == "feed")
        code, ready = await get_json(health_url(app, "/ready"))
        assert (code, ready["ready"]) == (200, True)

        changes = app.ops.monitor.changes
        sim.feed_enabled.clear()  # the simulator stalls: connections stay open, nothing arrives
        body = await wait_for_status(url, 503, "the busy feed stale", busy_feeds_stale)
        assert body["status"] == "unhealthy"
        busy = component(body, "binance_futures/public#0")  # bookTicker: should be busy
        assert (busy["status"], busy["healthy"]) == ("stale", False)
        assert busy["age_s"] > 1.0
        quiet = component(body, "binance_futures/market#0")  # aggTrade only: may be quiet
        assert (quiet["status"], quiet["healthy"]) == ("ok", True)
        assert component(body, "grpc")["healthy"]
        await wait_until(lambda: app.ops.monitor.changes > changes, what="the monitor to notice")
        assert await grpc_health.status() == NOT_SERVING
        code, ready = await get_json(health_url(app, "/ready"))
        assert code == 200, "stale is unhealthy, but still connected, so ready"
        samples = parse(await scrape(app))
        healthy = "raven_component_healthy"
        assert total(samples, healthy, component="binance_futures/public#0") == 0
        assert total(samples, healthy, component="binance_futures/market#0") == 1

        sim.feed_enabled.set()
        await wait_for_status(url, 200, "healthy again after recovery")
        await grpc_health.wait_for(SERVING, "SERVING again")
    finally:
        sim.feed_enabled.clear()
        await grpc_health.channel.close()


async def test_ready_waits_for_the_books_while_health_stays_200(sim: Simulator) -> None:
    app = RavenApp(full_config(sim, None, monitoring={"stale_feed_s": 60.0}))
    assert not app.ops.health.evaluate().ready, "not ready before start"
    await app.start()
    try:
        assert app.binance is not None
        ready_url = health_url(app, "/ready")
        # Connected, but the feed is held: no depth event, so no book can sync.
        body = await wait_for_status(
            ready_url, 503, "feeds up, books waiting",
            lambda b: not any(n.endswith("#0") for n in b["waiting_for"]),
        )  # fmt: skip
        assert sorted(body["waiting_for"]) == [
            "book:binance_futures:BTCUSDT",
            "book:binance_futures:ETHUSDT",
        ]
        code, health = await get_json(health_url(app))
        assert code == 200, "a book still syncing at start is not a failure"
        book = component(health, "book:binance_futures:BTCUSDT")
        assert (book["status"], book["healthy"], book["ready"]) == ("waiting", True, False)
        assert book["info"]["state"] == "syncing"

        sim.feed_enabled.set()
        body = await wait_for_status(ready_url, 200, "ready once the books are live")
        assert body["waiting_for"] == []
        code, health = await get_json(health_url(app))
        assert code == 200
        book = component(health, "book:binance_futures:BTCUSDT")
        assert (book["status"], book["info"]["state"]) == ("ok", "live")
        assert book["age_s"] is not None
    finally:
        sim.feed_enabled.clear()
        await app.stop()
    assert not app.ops.health.evaluate().healthy, "not healthy once stopped"


async def test_health_turns_503_when_a_book_stays_stale_and_200_when_it_is_live_again(
    sim: Simulator, tmp_path: Path
) -> None:
    monitoring = {"stale_book_s": 0.3, "stale_feed_s": 60.0, "health_interval_s": 0.05}
    app = RavenApp(full_config(sim, None, monitoring=monitoring))
    await app.start()
    grpc_health = GrpcHealth(app)
    try:
        assert app.binance is not None
        stats = app.binance.books.stats["BTCUSDT"]
        sim.feed_enabled.set()
        await wait_for_status(health_url(app, "/ready"), 200, "books live")
        await grpc_health.wait_for(SERVING, "SERVING")
        # Snapshots now come 2 s late: after a gap the book stays stale that long.
        sim.faults.rest_delay(2.0)
        sim.faults.gap("BTCUSDT")
        await wait_until(lambda: stats.state is BookState.STALE, what="the book stale")
        body = await wait_for_status(health_url(app), 503, "the stale book unhealthy")
        book = component(body, "book:binance_futures:BTCUSDT")
        assert (book["status"], book["healthy"], book["ready"]) == ("stale", False, False)
        assert book["info"]["resyncs"] == 1
        assert component(body, "book:binance_futures:ETHUSDT")["healthy"]
        await grpc_health.wait_for(NOT_SERVING, "NOT_SERVING for the stale book")
        samples = parse(await scrape(app))
        btc = {"exchange": "binance_futures", "symbol": "BTCUSDT"}
        assert total(samples, "raven_book_stale", **btc) == 1
        assert total(samples, "raven_book_live", **btc) == 0
        assert total(samples, "raven_book_resyncs_total", **btc) == 1

        sim.faults.clear()  # the delayed snapshot still comes; later ones come at once
        await wait_for_status(health_url(app), 200, "healthy once the book is live again")
        assert stats.state is BookState.LIVE
        await grpc_health.wait_for(SERVING, "SERVING again")
    finally:
        sim.feed_enabled.clear()
        await grpc_health.channel.close()
        await app.stop()


async def test_metrics_and_health_can_share_one_port(sim: Simulator) -> None:
    port = free_port()
    app = RavenApp(server_config(sim, monitoring={"metrics_port": port, "health_check_port": port}))
    await app.start()
    try:
        async with aiohttp.ClientSession() as session:
            for path in ("/metrics", "/health", "/ready"):
                async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                    assert response.status in (200, 503), path
                    assert await response.read()
    finally:
        await app.stop()
