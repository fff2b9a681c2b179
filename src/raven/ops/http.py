"""The operations HTTP listeners: /metrics on one port, /health and /ready on another.

Both are small aiohttp applications on the event loop, so a scrape reads
the counters of the loop's own components with no locks. When both ports
are the same (and not 0) one listener serves all three paths. Port 0 picks
a free port; the bound ports are `metrics_port` and `health_port` after
`start()`.

- `GET /metrics`: Prometheus text format.
- `GET /health`: JSON `HealthReport`; 200 when healthy, 503 when not.
- `GET /ready`: 200 once started and every feed is connected, else 503.
"""

from __future__ import annotations

import logging

import msgspec
from aiohttp import web

from raven.ops.health import HealthRegistry
from raven.ops.metrics import CONTENT_TYPE, MetricsRegistry

log = logging.getLogger("raven.ops.http")

_json = msgspec.json.Encoder()


class OpsServer:
    def __init__(
        self, host: str, metrics_port: int, health_port: int,
        metrics: MetricsRegistry, health: HealthRegistry,
    ) -> None:  # fmt: skip
        self.host = host
        self.metrics = metrics
        self.health = health
        self.metrics_port = metrics_port
        self.health_port = health_port
        self._runners: list[web.AppRunner] = []

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def _health(self, request: web.Request) -> web.Response:
        report = self.health.evaluate()
        return web.Response(
            body=_json.encode(report),
            status=200 if report.healthy else 503,
            content_type="application/json",
        )

    async def _ready(self, request: web.Request) -> web.Response:
        report = self.health.evaluate()
        waiting = [c.name for c in report.components if not c.ready]
        body = {"ready": report.ready, "waiting_for": waiting, "started": self.health.started}
        return web.Response(
            body=_json.encode(body),
            status=200 if report.ready else 503,
            content_type="application/json",
        )

    def _app(self, metrics: bool, health: bool) -> web.Application:
        app = web.Application()
        if metrics:
            app.router.add_get("/metrics", self._metrics)
        if health:
            app.router.add_get("/health", self._health)
            app.router.add_get("/ready", self._ready)
        return app

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        log.info(
            "metrics on http://%s:%d/metrics, health on http://%s:%d/health",
            self.host, self.metrics_port, self.host, self.health_port,
        )  # fmt: skip

    async def _start(self) -> None:
        if self.metrics_port == self.health_port and self.metrics_port != 0:
            port = await self._listen(self._app(metrics=True, health=True), self.metrics_port)
            self.metrics_port = self.health_port = port
        else:
            self.metrics_port = await self._listen(self._app(True, False), self.metrics_port)
            self.health_port = await self._listen(self._app(False, True), self.health_port)

    async def _listen(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(
                f"cannot listen on {self.host}:{port} for metrics/health: {exc.strerror}"
            ) from None
        self._runners.append(runner)
        return int(runner.addresses[0][1])

    async def stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
