"""Health checks, /health and /ready, and the gRPC health service, on a real run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from raven.api.service import SERVICE
from raven.app import RavenApp
from raven.ops.health import (
    HealthMonitor,
    HealthRegistry,
    flag_check,
    freshness_check,
    store_check,
)
from raven.sim.server import Simulator
from raven.types import S_NS
from tests.conftest import server_config
from tests.helpers import wait_until

T0 = 1_700_000_000 * S_NS


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


class LaggingStore:
    """A store's health view: how far behind its writes are."""

    name = "embedded"

    def __init__(self) -> None:
        self.lag = 0.0

    def write_lag_s(self) -> float:
        return self.lag


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


def test_store_is_down_when_writes_fall_behind_the_limit() -> None:
    store = LaggingStore()
    registry = HealthRegistry(Clock())
    registry.started = True
    registry.add(store_check(store, down_after_s=60.0))
    assert registry.evaluate().components[0].status == "ok"
    store.lag = 30.0
    component = registry.evaluate().components[0]
    assert (component.healthy, component.status) == (True, "behind")
    store.lag = 61.0
    report = registry.evaluate()
    assert not report.healthy
    assert report.components[0].name == "store:embedded"
    assert report.components[0].detail == "writes 61.0 s behind (limit 60 s)"


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


@pytest.fixture
async def watched_app(sim: Simulator) -> AsyncIterator[RavenApp]:
    """A server whose feeds turn stale after 1 s of silence."""
    config = server_config(sim, monitoring={"stale_feed_s": 1.0, "health_interval_s": 0.05})
    server = RavenApp(config)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def get_json(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


def all_feeds_stale(body: Any) -> bool:
    return all(c["status"] == "stale" for c in body["components"] if c["kind"] == "feed")


async def wait_for_status(
    url: str, status: int, what: str, also: Callable[[Any], bool] = lambda body: True
) -> Any:
    deadline = time.monotonic() + 15
    while True:
        code, body = await get_json(url)
        if code == status and also(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: last {code} {body}")
        await asyncio.sleep(0.02)


async def test_health_turns_503_when_the_feed_stalls_and_200_when_it_recovers(
    sim: Simulator, watched_app: RavenApp
) -> None:
    app = watched_app
    assert app.ops.http is not None
    base = f"http://127.0.0.1:{app.ops.http.health_port}"
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc.port}")
    stub: Any = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse

    async def grpc_status() -> int:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        return int(reply.status)

    try:
        sim.feed_enabled.set()
        connections = app.connectors[0].connections  # type: ignore[attr-defined]
        await wait_until(
            lambda: all(c.last_message_ns for c in connections), what="a message on each feed"
        )
        body = await wait_for_status(f"{base}/health", 200, "healthy with the feed on")
        assert body["status"] == "ok"
        kinds = {c["kind"] for c in body["components"]}
        assert kinds == {"feed", "grpc"}
        assert all(c["age_s"] is not None for c in body["components"] if c["kind"] == "feed")
        code, ready = await get_json(f"{base}/ready")
        assert (code, ready["ready"]) == (200, True)

        changes = app.ops.monitor.changes
        sim.feed_enabled.clear()  # the simulator stalls: connections stay open, nothing arrives
        # Each connection turns stale on its own clock; wait for both.
        body = await wait_for_status(
            f"{base}/health", 503, "every feed stale after the stall", all_feeds_stale
        )
        assert body["status"] == "unhealthy"
        feeds = [c for c in body["components"] if c["kind"] == "feed"]
        assert feeds
        assert all(c["status"] == "stale" and not c["healthy"] for c in feeds)
        assert all(c["age_s"] > 1.0 for c in feeds)
        grpc_component = next(c for c in body["components"] if c["kind"] == "grpc")
        assert grpc_component["healthy"]
        await wait_until(lambda: app.ops.monitor.changes > changes, what="the monitor to notice")
        assert await grpc_status() == serving.NOT_SERVING
        code, ready = await get_json(f"{base}/ready")
        assert code == 200, "stale is unhealthy, but still connected, so ready"

        sim.feed_enabled.set()
        await wait_for_status(f"{base}/health", 200, "healthy again after recovery")
        deadline = time.monotonic() + 15
        while await grpc_status() != serving.SERVING:  # the monitor's next evaluation
            assert time.monotonic() < deadline, "gRPC health never went back to SERVING"
            await asyncio.sleep(0.02)
    finally:
        sim.feed_enabled.clear()
        await channel.close()


async def test_ready_waits_for_feeds_and_health_for_start(sim: Simulator) -> None:
    config = server_config(sim, monitoring={"stale_feed_s": 60.0})
    app = RavenApp(config)
    assert not app.ops.health.evaluate().ready, "not ready before start"
    await app.start()
    try:
        assert app.ops.http is not None
        base = f"http://127.0.0.1:{app.ops.http.health_port}"
        await wait_for_status(f"{base}/ready", 200, "ready once the feeds connect")
        code, body = await get_json(f"{base}/health")
        assert code == 200
        assert {c["status"] for c in body["components"] if c["kind"] == "feed"} <= {"waiting", "ok"}
    finally:
        await app.stop()
    assert not app.ops.health.evaluate().healthy, "not healthy once stopped"


async def test_metrics_and_health_can_share_one_port(sim: Simulator) -> None:
    from tests.helpers import free_port

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
