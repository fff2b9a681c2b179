"""Helpers for simulator tests: reading frames, the order-book procedure, the capture."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from raven.connectors.binance import wire
from raven.core.book import OrderBook
from tests.helpers import CAPTURE

FRAME_TIMEOUT = 10.0  # generous: the machine is shared and noisy

_json = msgspec.json.Decoder(dict[str, Any])


def find_capture() -> Path:
    """The shared 2021 capture: tests.helpers.CAPTURE, else the nearest ancestor's
    `shared/fixtures` (a git worktree sits one level deeper than the main checkout)."""
    if CAPTURE.exists():
        return CAPTURE
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "fixtures" / CAPTURE.name
        if candidate.exists():
            return candidate
    return CAPTURE


async def next_frame(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    return await asyncio.wait_for(ws.receive(), FRAME_TIMEOUT)


async def read_events(
    ws: aiohttp.ClientWebSocketResponse, count: int, stream: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The next `count` combined-stream events (of `stream` when given), skipping replies."""
    out: list[tuple[str, dict[str, Any]]] = []
    while len(out) < count:
        msg = await next_frame(ws)
        assert msg.type is aiohttp.WSMsgType.TEXT, f"unexpected {msg.type}: {msg.data!r}"
        body = _json.decode(msg.data)
        if "stream" in body and (stream is None or body["stream"] == stream):
            out.append((body["stream"], body["data"]))
    return out


async def snapshot(http: aiohttp.ClientSession, rest_url: str, symbol: str,
                   limit: int = 1000) -> wire.DepthSnapshot:  # fmt: skip
    async with http.get(f"{rest_url}/fapi/v1/depth?symbol={symbol}&limit={limit}") as r:
        assert r.status == 200, await r.text()
        return wire.depth_snapshot_decoder.decode(await r.read())


class BookSync:
    """The reference's local order book procedure for one symbol (a test's own copy)."""

    def __init__(self, symbol: str) -> None:
        self.book = OrderBook(symbol)
        self.last_u = 0  # 0: not synced yet
        self.snapshot_id = 0
        self.bridge: wire.DepthUpdate | None = None

    def load(self, snap: wire.DepthSnapshot) -> None:
        self.book.load(snap.bids, snap.asks, snap.lastUpdateId)
        self.snapshot_id = snap.lastUpdateId

    def apply(self, event: wire.DepthUpdate) -> bool:
        """Apply a diff event; False when it is dropped as older than the snapshot.
        Raises AssertionError on a broken chain."""
        if not self.last_u:
            if event.u < self.snapshot_id:
                return False
            assert event.U <= self.snapshot_id <= event.u, "no bridge to the snapshot"
            self.bridge = event
        else:
            assert event.pu == self.last_u, f"gap: pu {event.pu} != previous u {self.last_u}"
        self.book.apply(event.b, event.a, event.u)
        self.last_u = event.u
        return True
