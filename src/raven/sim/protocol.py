"""The venue's WebSocket rules that are not about market data.

- `Requests` answers live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS /
  SET_PROPERTY / GET_PROPERTY messages with the venue's replies and error
  codes (0 unknown property, 1 bad value type, 2 invalid request, 3 invalid
  JSON, 4 too many subscriptions - the last one followed by a 1008 close).
- `Keeper` is ONE task that keeps every connection's clocks: a server ping
  (payload: a ms timestamp) every `ping_interval_s`, a close when no pong
  came for `pong_timeout_s`, a close at the connection lifetime limit, and
  dropping a slow consumer whose writer is stuck.
  It sleeps until the earliest deadline or until a connection arrives.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import msgspec

from raven.config import SimulatorConfig
from raven.sim.hub import CLOSE_EXPIRED, CLOSE_POLICY, Hub, SimConnection
from raven.sim.stats import SimStats

CLOSE_PONG_TIMEOUT = 1008
ABORT_AFTER_S = 5.0  # a slow consumer whose close frame cannot even be written is dropped
_encode = msgspec.json.encode
_request_decoder = msgspec.json.Decoder(Any)


class _Result(msgspec.Struct):
    result: list[str] | bool | None
    id: Any


class _ErrorBody(msgspec.Struct):
    code: int
    msg: str


class _Error(msgspec.Struct):
    error: _ErrorBody
    id: Any = None


def error(code: int, msg: str, req_id: Any = None) -> bytes:
    return _encode(_Error(_ErrorBody(code, msg), req_id))


class Requests:
    def __init__(self, hub: Hub, max_streams: int, stats: SimStats) -> None:
        self.hub = hub
        self.max_streams = max_streams
        self.stats = stats

    def handle(self, conn: SimConnection, text: str | bytes) -> None:
        """Answer one incoming message (the reply is queued in order with the data)."""
        try:
            request = _request_decoder.decode(text)
        except msgspec.DecodeError as exc:
            conn.reply(error(3, f"Invalid JSON: {exc}"))
            return
        if not isinstance(request, dict):
            conn.reply(error(2, "Invalid request: expected a JSON object"))
            return
        req_id = request.get("id")
        method = request.get("method")
        params = request.get("params", [])
        if not isinstance(params, list):
            conn.reply(error(1, "Invalid value type: params must be an array", req_id))
        elif method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            self._subscription(conn, method, params, req_id)
        elif method == "LIST_SUBSCRIPTIONS":
            conn.reply(_encode(_Result(list(conn.subscriptions), req_id)))
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            self._property(conn, method, params, req_id)
        else:
            conn.reply(error(2, f"Invalid request: unknown method {method!r}", req_id))

    def _subscription(
        self, conn: SimConnection, method: str, params: list[Any], req_id: Any
    ) -> None:
        if not all(isinstance(p, str) for p in params):
            conn.reply(error(2, "Invalid request: stream names must be strings", req_id))
            return
        if method == "UNSUBSCRIBE":
            self.hub.unsubscribe(conn, params)
            conn.reply(_encode(_Result(None, req_id)))
            return
        new = set(params) - set(conn.subscriptions)
        if len(conn.subscriptions) + len(new) > self.max_streams:
            self.too_many(conn, req_id)
            return
        self.hub.subscribe(conn, params)
        conn.reply(_encode(_Result(None, req_id)))

    def too_many(self, conn: SimConnection, req_id: Any = None) -> None:
        """Error code 4, then a 1008 close that drops every subscription."""
        self.stats.stream_limit_closes += 1
        conn.reply(error(4, "Too many subscriptions", req_id))
        conn.close(CLOSE_POLICY, "Too many subscriptions")

    def _property(self, conn: SimConnection, method: str, params: list[Any], req_id: Any) -> None:
        expected = 2 if method == "SET_PROPERTY" else 1
        if len(params) != expected or params[0] != "combined":
            conn.reply(error(0, "Unknown property", req_id))
        elif method == "GET_PROPERTY":
            conn.reply(_encode(_Result(conn.combined, req_id)))
        elif not isinstance(params[1], bool):
            conn.reply(error(1, "Invalid value type: expected Boolean", req_id))
        else:
            conn.combined = params[1]
            conn.reply(_encode(_Result(None, req_id)))


class Keeper:
    """Pings, pong timeouts and lifetime limits of every connection, in one task."""

    def __init__(self, hub: Hub, config: SimulatorConfig, stats: SimStats) -> None:
        self.hub = hub
        self.config = config
        self.stats = stats
        self.changed = asyncio.Event()

    def admit(self, conn: SimConnection, now: float) -> None:
        conn.on_overflow = self.changed.set
        conn.next_ping = now + self.config.ping_interval_s
        conn.expires_at = now + self.config.max_connection_s
        self.changed.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            wake = min((self._check(c, now) for c in list(self.hub.connections)), default=math.inf)
            self.changed.clear()
            delay = None if wake == math.inf else max(0.0, wake - loop.time())
            try:
                async with asyncio.timeout(delay):
                    await self.changed.wait()
            except TimeoutError:
                pass

    def _check(self, conn: SimConnection, now: float) -> float:
        """Act on what is due for `conn`; return its next deadline."""
        if conn.overflowed:  # the writer closes it, unless it is stuck writing to a dead reader
            deadline = conn.overflow_at + ABORT_AFTER_S
            if now < deadline:
                return deadline
            conn.abort()
            return math.inf
        if conn.close_request is not None:
            return math.inf
        if now >= conn.expires_at:
            self.stats.expired += 1
            conn.close(CLOSE_EXPIRED, "24-hour connection limit")
            return math.inf
        pong_deadline = conn.last_pong + self.config.pong_timeout_s
        if now >= pong_deadline:
            self.stats.pong_timeouts += 1
            conn.close(CLOSE_PONG_TIMEOUT, "Pong timeout")
            return math.inf
        if now >= conn.next_ping:
            self.stats.pings += 1
            conn.send_control(True, str(time.time_ns() // 1_000_000).encode())
            conn.next_ping = now + self.config.ping_interval_s
        return min(conn.expires_at, pong_deadline, conn.next_ping)
