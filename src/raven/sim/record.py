"""`raven record`: save a live feed to a capture file (see `capture.py`).

Streams are grouped by route and opened as combined-stream connections (so
every frame names its stream), at most `max_streams` per connection. Once
the first diff-depth event of a symbol has arrived, its REST snapshot is
fetched (`limit=1000`) - the order-book procedure's step 2 - so a replay can
sync books exactly as a live client would. `exchangeInfo` is fetched first.
REST calls run one at a time, back off on 429 (`Retry-After`) and stop for
the rest of the recording on a 418 ban.

The file is written from the event loop with plain buffered writes: a
recorder has no latency budget to protect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import BinaryIO

import aiohttp
import msgspec

from raven.connectors.binance.streams import Route, combined_url
from raven.sim.capture import CaptureWriter, split_combined
from raven.sim.names import route_of

log = logging.getLogger("raven.sim.record")

DEPTH_LIMIT = 1000
REST_RETRIES = 5


class RecordError(Exception):
    """The feed could not be recorded (connection refused, ...)."""


class RecordStats(msgspec.Struct):
    frames: int = 0
    connections: int = 0
    snapshots: int = 0
    rest_errors: int = 0


def stream_names(symbols: list[str], streams: list[str]) -> list[str]:
    """`btcusdt@aggTrade`-style names: per-symbol suffixes times symbols, `!` names as they are."""
    out = []
    for suffix in streams:
        if suffix.startswith("!"):
            out.append(suffix)
        else:
            out.extend(f"{s.lower()}@{suffix}" for s in symbols)
    return out


def _is_diff_depth(name: str) -> bool:
    suffix = name.partition("@")[2]
    return suffix == "depth" or suffix.startswith("depth@")


class Recorder:
    def __init__(self, ws_url: str, rest_url: str, names: list[str], out: Path,
                 max_streams: int = 1024) -> None:  # fmt: skip
        unknown = [n for n in names if route_of(n) is None]
        if unknown:
            raise ValueError(f"unknown stream names: {', '.join(unknown)}")
        self.ws_url = ws_url
        self.rest_url = rest_url.rstrip("/")
        self.names = names
        self.out = out
        self.max_streams = max_streams
        self.stats = RecordStats()
        self._snap_queue: asyncio.Queue[str] = asyncio.Queue(maxsize=len(names) + 1)  # bounded
        self._snapped: set[str] = set()
        self._writer: CaptureWriter | None = None
        self._done = asyncio.Event()
        self._max_frames = 0
        self._banned = False  # a 418: no more REST calls in this recording

    def stop(self) -> None:
        """End the recording now (the file is complete)."""
        self._done.set()

    def urls(self) -> list[str]:
        urls = []
        for route in Route:
            routed = [n for n in self.names if route_of(n) is route]
            for i in range(0, len(routed), self.max_streams):
                urls.append(combined_url(self.ws_url, route, routed[i : i + self.max_streams]))
        return urls

    async def run(self, duration: float | None = None, max_frames: int = 0) -> RecordStats:
        """Record until `duration` seconds pass or `max_frames` frames arrived (0: no cap).
        Raises `RecordError` when the feed cannot be reached."""
        self._max_frames = max_frames
        with self._open() as f:
            self._writer = CaptureWriter(f, f"recorded from {self.ws_url} and {self.rest_url}")
            try:
                async with aiohttp.ClientSession() as session:
                    await self._fetch(session, "/fapi/v1/exchangeInfo")
                    await self._record(session, duration)
            except* (aiohttp.ClientError, OSError) as group:
                raise RecordError(f"recording failed: {group.exceptions[0]}") from None
        return self.stats

    def _open(self) -> BinaryIO:
        return open(self.out, "wb")  # a small local file: blocking is fine here

    async def _record(self, session: aiohttp.ClientSession, duration: float | None) -> None:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._connection(session, u)) for u in self.urls()]
            tasks.append(group.create_task(self._snapshots(session)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), duration)
            for task in tasks:
                task.cancel()

    async def _connection(self, session: aiohttp.ClientSession, url: str) -> None:
        assert self._writer is not None
        async with session.ws_connect(url, max_msg_size=0, decode_text=False) as ws:
            self.stats.connections += 1
            self._writer.connection(time.time_ns(), url)
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT or msg.type is aiohttp.WSMsgType.BINARY:
                    self._frame(msg.data)

    def _frame(self, frame: bytes) -> None:
        assert self._writer is not None
        self._writer.frame(time.time_ns(), frame)
        self.stats.frames += 1
        if self._max_frames and self.stats.frames >= self._max_frames:
            self._done.set()
        stream, _ = split_combined(frame)
        symbol = stream.partition("@")[0].upper()
        if _is_diff_depth(stream) and symbol not in self._snapped:
            self._snapped.add(symbol)
            self._snap_queue.put_nowait(symbol)

    async def _snapshots(self, session: aiohttp.ClientSession) -> None:
        while True:
            symbol = await self._snap_queue.get()
            if await self._fetch(session, f"/fapi/v1/depth?symbol={symbol}&limit={DEPTH_LIMIT}"):
                self.stats.snapshots += 1

    async def _fetch(self, session: aiohttp.ClientSession, path: str) -> bool:
        """GET and record `path`; back off on 429, stop all REST on 418."""
        assert self._writer is not None
        for _ in range(REST_RETRIES):
            if self._banned:
                return False
            async with session.get(self.rest_url + path) as response:
                body = await response.read()
                self._writer.rest(time.time_ns(), response.status, path, body)
                if response.status == 200:
                    return True
                self.stats.rest_errors += 1
                retry = float(response.headers.get("Retry-After", "1"))
            if response.status == 418:
                log.error("REST banned (418) for %.0f s: no more snapshots", retry)
                self._banned = True
                return False
            log.warning("GET %s: HTTP %d; retrying in %.0f s", path, response.status, retry)
            await asyncio.sleep(retry)
        return False
