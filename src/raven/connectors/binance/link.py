"""One open WebSocket of a connection: paced subscriptions, a read loop, a close.

A `Connection` owns one link at a time, two while it replaces one with the
next. The link only moves frames: what a frame means is the connection's
business (`on_message`), decided by the link's `mode`:

- ACTIVE: its events go out;
- HELD: a replacement being opened: its events are held back until the switch;
- RETIRED: replaced or dropped: anything still arriving is ignored.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from raven.connectors.binance import wire
from raven.connectors.pacing import SendPacer

log = logging.getLogger("raven.connectors.binance")

# aiohttp hands over buffered frames without suspending, so a link with a
# backlog would hold the event loop until the backlog is gone, and the gRPC
# stream writers (and everything else) would starve: after this much time
# reading frames back to back, the read loop gives the event loop a turn. By
# time, not by frame count: every other ready task (one per client stream)
# runs before the read loop's next turn, so with many clients a count of
# frames per turn starved the feed instead.
TURN_S = 0.002
LinkErrors = (aiohttp.ClientError, OSError, TimeoutError)  # a broken link, never a bug


class LinkMode(enum.Enum):
    ACTIVE = "active"
    HELD = "held"
    RETIRED = "retired"


class Link:
    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse[Any],
        label: str,
        mode: LinkMode,
        pacer: SendPacer,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ws = ws
        self.label = label
        self.mode = mode
        self.pacer = pacer  # this socket's outgoing messages (the venue counts per connection)
        self.clock = clock
        self.opened_ns = time.time_ns()
        self.closed = asyncio.Event()  # the read loop ended
        self.end_reason = ""
        self.frames = 0  # data frames received
        self.unacked: dict[int, list[str]] = {}  # request id -> streams, until the reply
        self.subscribe_times: list[
            float
        ] = []  # when each SUBSCRIBE went out (clock), one per batch
        self._next_id = 1

    async def subscribe(self, batches: list[list[str]]) -> int:
        """Send one SUBSCRIBE per batch, paced; returns how many were sent."""
        for batch in batches:
            # A deadline, not a condition an event could signal:
            while (wait := self.pacer.delay(self.clock())) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
            now = self.clock()
            self.pacer.record(now)
            self.subscribe_times.append(now)
            request_id = self._next_id
            self._next_id += 1
            self.unacked[request_id] = batch
            params: list[str | bool] = [*batch]
            message = wire.Request("SUBSCRIBE", params, request_id)
            await self.ws.send_str(wire.encoder.encode(message).decode())
        return len(batches)

    def acknowledged(self, reply: wire.Reply) -> list[str] | None:
        """The streams a reply answers (None if it answers nothing we sent)."""
        if reply.id is None:
            return None
        return self.unacked.pop(reply.id, None)

    async def read(
        self,
        on_message: Callable[[Link, aiohttp.WSMessage], None],
        on_end: Callable[[Link], None],
    ) -> None:
        """Hand every frame to `on_message` until the socket ends; then `on_end`."""
        clock = time.perf_counter
        try:
            turn = clock() + TURN_S  # when the read loop gives the event loop a turn
            async for msg in self.ws:
                if msg.type is aiohttp.WSMsgType.ERROR:
                    raise aiohttp.ClientError(f"websocket error: {self.ws.exception()}")
                on_message(self, msg)
                if clock() >= turn:
                    await asyncio.sleep(0)
                    turn = clock() + TURN_S
            if not self.end_reason:
                self.end_reason = f"closed by the venue (code {self.ws.close_code})"
        except LinkErrors as exc:
            if not self.end_reason:
                self.end_reason = f"error: {exc or type(exc).__name__}"
        finally:
            self.closed.set()
            on_end(self)
            if not self.ws.closed:  # cancelled (shutdown): release the socket cleanly
                await self.close("shut down")

    async def close(self, reason: str) -> None:
        """Close the socket (its read loop then ends); `reason` is kept for the log."""
        if not self.end_reason:
            self.end_reason = reason
        self.mode = LinkMode.RETIRED
        try:
            await self.ws.close()
        except LinkErrors as exc:
            log.debug("%s: close failed: %s", self.label, exc)
