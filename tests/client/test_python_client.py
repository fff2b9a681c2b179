"""python_client/: the load test and the usage example run against a real server."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from raven.app import RavenApp
from raven.sim.server import Simulator
from tests.helpers import wait_until

FOLDER = Path(__file__).resolve().parents[2] / "python_client"


async def run(script: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(FOLDER / script), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_load_test_prints_its_report(sim: Simulator, app: RavenApp) -> None:
    sim.feed_enabled.set()
    try:
        await wait_until(lambda: app.pipeline.ingested > 10, what="events")
        code, out, err = await run(
            "test.py", "--target", f"127.0.0.1:{app.grpc.port}", "--duration", "2",
            "--streams", "2",
        )  # fmt: skip
    finally:
        sim.feed_enabled.clear()
    assert code == 0, err
    events = re.search(r"^events +(\d+) \(([\d,.]+)/s over [\d.]+ s\)$", out, re.M)
    assert events, out
    assert int(events.group(1)) > 0
    assert re.search(r"^frames +\d+ on 2 stream\(s\)$", out, re.M), out
    assert re.search(
        r"^latency ms +p50 [\d.]+ +p90 [\d.]+ +p99 [\d.]+ +p99\.9 [\d.]+ +max", out, re.M
    )
    assert re.search(r"^gaps detected +0 \(0 events missed\), reconnects 0$", out, re.M), out


async def test_load_test_without_a_server_is_a_clear_error() -> None:
    code, _, err = await run("test.py", "--target", "127.0.0.1:9", "--connect-timeout", "0.5")
    assert code == 2
    assert "no Raven server answered" in err


async def test_usage_example_streams(sim: Simulator, app: RavenApp) -> None:
    sim.feed_enabled.set()
    try:
        code, out, err = await run(
            "client.py", "--target", f"127.0.0.1:{app.grpc.port}", "--duration", "1"
        )
    finally:
        sim.feed_enabled.clear()
    assert code == 0, err
    assert " trade " in out or " quote " in out
    assert "received: {" in out
