"""A store down past `store_down_s`: /health 503 with its breaker, metrics show the
buffer and spool, then the store comes up, everything is written and /health is 200.

The store is a real InfluxDB 1.x: Raven starts pointed at its port while
nothing listens there, then influxd starts on that port.
"""

from __future__ import annotations

from pathlib import Path

from raven.app import RavenApp
from raven.sim.server import Simulator
from tests.helpers import wait_until
from tests.ops.promtool import promtool_check
from tests.ops.scrape import (
    component,
    full_config,
    health_url,
    parse,
    scrape,
    total,
    wait_for_status,
)
from tests.storage.influxd import InfluxServer, require_influxd


async def test_a_store_down_past_the_limit_turns_health_503_and_recovers(
    sim: Simulator, tmp_path: Path
) -> None:
    root = tmp_path / "influxd"
    root.mkdir()
    influxd = InfluxServer(require_influxd(), root)  # not started yet: nothing on its port
    database = {
        "backend": "influxdb",
        "influxdb": {"url": influxd.url, "database": "ops", "timeout_s": 2.0},
        "writer": {
            "spool_dir": str(tmp_path / "spool"),
            "batch_size": 20,
            "max_buffer_events": 40,  # a small buffer: the spool fills during the outage
            "flush_interval_s": 0.05,
            "failure_threshold": 2,
            "probe_interval_s": 0.1,
            "retry_delay_s": 0.02,
        },
    }
    monitoring = {"store_down_s": 0.5, "stale_feed_s": 60.0}
    app = RavenApp(full_config(sim, None, database=database, monitoring=monitoring))
    await app.start()
    try:
        assert app.storage is not None
        writer = app.storage.writers[0]
        sim.feed_enabled.set()
        body = await wait_for_status(
            health_url(app),
            503,
            "the store down past the limit",
            lambda b: component(b, "store:influxdb")["status"] == "down",
        )
        store = component(body, "store:influxdb")
        assert not store["healthy"]
        assert store["info"]["breaker"] in ("open", "half_open")
        assert "127.0.0.1" in store["info"]["last_error"]
        assert "down for" in store["detail"]
        await wait_until(lambda: writer.stats().spool_events > 0, what="the spool to be used")
        during = await scrape(app)
        samples = parse(during)
        influx = {"store": "influxdb"}
        assert total(samples, "raven_store_up", **influx) == 0
        assert total(samples, "raven_store_write_failures_total", **influx) >= 2
        assert total(samples, "raven_store_write_retries_total", **influx) >= 1
        assert total(samples, "raven_store_spooled_events", **influx) > 0
        assert total(samples, "raven_store_spool_bytes", **influx) > 0
        assert total(samples, "raven_store_events_spilled_total", **influx) > 0
        assert total(samples, "raven_store_buffered_events", **influx) > 0
        assert total(samples, "raven_store_write_lag_seconds", **influx) > 0
        assert total(samples, "raven_store_events_written_total", **influx) == 0
        assert total(samples, "raven_circuit_breaker_state", breaker="store influxdb") >= 1
        assert total(samples, "raven_circuit_breaker_failures_total", breaker="store influxdb") >= 2
        assert total(samples, "raven_component_healthy", component="store:influxdb") == 0
        promtool_check(during)

        influxd.start()  # the store comes up on the port Raven was told
        sim.feed_enabled.clear()
        await wait_until(lambda: writer.pending == 0, timeout=30, what="everything written")
        body = await wait_for_status(health_url(app), 200, "healthy once the store took it all")
        store = component(body, "store:influxdb")
        assert (store["status"], store["info"]["breaker"]) == ("ok", "closed")
        samples = parse(await scrape(app))
        assert total(samples, "raven_store_up", **influx) == 1
        assert total(samples, "raven_store_spooled_events", **influx) == 0
        written = total(samples, "raven_store_events_written_total", **influx)
        assert written == total(samples, "raven_store_events_recorded_total", **influx) > 0
    finally:
        sim.feed_enabled.clear()
        await app.stop()
        influxd.stop()
