"""Helpers for the operations tests: scrape /metrics, read /health, build a full server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from prometheus_client.parser import text_string_to_metric_families

from raven.app import RavenApp
from raven.config import RavenConfig, config_from_dict
from raven.sim.server import Simulator

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
STREAMS = ["aggTrade", "bookTicker", "depth@100ms"]


def parse(text: bytes) -> Samples:
    """{(sample name, sorted labels): value} of an exposition."""
    out: Samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(samples: Samples, name: str, **match: str) -> float:
    """The sum of `name`'s samples whose labels include `match`."""
    return sum(
        v
        for (n, labels), v in samples.items()
        if n == name and all(dict(labels).get(k) == want for k, want in match.items())
    )


def has(samples: Samples, name: str, **match: str) -> bool:
    return any(
        n == name and all(dict(labels).get(k) == want for k, want in match.items())
        for (n, labels) in samples
    )


async def scrape(app: RavenApp) -> bytes:
    assert app.ops.http is not None
    url = f"http://127.0.0.1:{app.ops.http.metrics_port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return await response.read()


def health_url(app: RavenApp, path: str = "/health") -> str:
    assert app.ops.http is not None
    return f"http://127.0.0.1:{app.ops.http.health_port}{path}"


async def get_json(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def wait_for_status(
    url: str,
    status: int,
    what: str,
    also: Callable[[Any], bool] = lambda body: True,
    timeout: float = 20.0,
) -> Any:
    """Poll `url` (a JSON endpoint) until it answers `status` and `also(body)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        code, body = await get_json(url)
        if code == status and also(body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: last {code} {body}")
        await asyncio.sleep(0.02)


def component(body: Any, name: str) -> Any:
    """The /health component called `name`."""
    found = [c for c in body["components"] if c["name"] == name]
    assert found, f"no component {name!r} in {[c['name'] for c in body['components']]}"
    return found[0]


def full_config(sim: Simulator, tmp_path: Path | None, **sections: dict[str, Any]) -> RavenConfig:
    """A server fed by `sim` with books (diff depth), an embedded store in `tmp_path`
    (none when None), every listener on a free port."""
    binance: dict[str, Any] = {
        "ws_url": sim.ws_url,
        "rest_url": sim.rest_url,
        "symbols": list(sim.config.symbols),
        "streams": STREAMS,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.2,
        "book_refresh_s": 0,
        "exchange_info_refresh_s": 0,
    }
    database: dict[str, Any] = {"backend": "none"}
    if tmp_path is not None:
        database = {
            "backend": "embedded",
            "path": str(tmp_path / "raven.duckdb"),
            "writer": {"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.05},
        }
    raw: dict[str, dict[str, Any]] = {
        "server": {"port": 0, "shutdown_grace_s": 0.5},
        "exchanges": {"binance_futures": binance},
        "monitoring": {"metrics_port": 0, "health_check_port": 0},
        "database": database,
    }
    for name, values in sections.items():
        for key, value in values.items():
            current = raw.setdefault(name, {}).get(key)
            if isinstance(current, dict) and isinstance(value, dict):
                current.update(value)
            else:
                raw[name][key] = value
    return config_from_dict(msgspec.to_builtins(raw), "test")
