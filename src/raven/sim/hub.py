"""Which simulated WebSocket connection gets which frame.

The hub indexes connections by stream name. Each payload is encoded once
in raw form and once in combined form, and the same bytes go to every
connection subscribed to that stream on a route that carries it (a
connection without a route gets only `/public` streams; a name the venue
would not feed stays subscribed and silent).

Each connection has a bounded frame queue drained by its own writer task.
Overflow policy: DISCONNECT - a connection whose queue is full is closed
with 1008, like the venue drops a consumer that cannot keep up; dropping
frames instead would silently break its diff-depth chain. Every connection
also remembers what it was sent (bounded, `record_frames`), so tests can
compare what a client received with what the simulator really sent.

Stream faults live here because they act on what is sent: a gap withholds
the next event of a stream, a stall withholds a stream (or all) for a time.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Iterable

import msgspec

from raven.connectors.binance import wire
from raven.connectors.binance.streams import Route
from raven.sim.stats import SimStats

_encode = wire.encoder.encode

Router = Callable[[str], frozenset[Route]]  # the routes that carry a stream name
SentPayload = wire.Payload | list[wire.MarkPrice] | None

CLOSE_POLICY = 1008  # slow consumer, too many requests, too many subscriptions
CLOSE_EXPIRED = 1000  # the connection lifetime limit (24 h on the venue)


class Sent(msgspec.Struct, frozen=True, gc=False):
    stream: str
    payload: SentPayload  # None: bytes sent as they are (a replayed or malformed frame)
    data: bytes = b""  # the payload bytes as encoded (raw form)


class SimConnection:
    """One client connection: subscriptions, outgoing queue, limits and record."""

    def __init__(
        self,
        route: Route | None,
        combined: bool,
        queue_limit: int,
        record: int,
        now: float,
        incoming_limit: int,
    ) -> None:
        self.route = route  # None: a connection without a route only gets /public streams
        self.combined = combined
        self.subscriptions: list[str] = []  # in subscription order, for LIST_SUBSCRIPTIONS
        self.queue: collections.deque[bytes] = collections.deque()
        self.queue_limit = queue_limit
        self.control: collections.deque[tuple[bool, bytes]] = collections.deque()  # (ping?, data)
        self.wakeup = asyncio.Event()
        self.drained = asyncio.Event()  # set by the writer whenever the queue is empty
        self.sent: collections.deque[Sent] = collections.deque(maxlen=record)
        self.overflowed = False
        self.overflow_at = 0.0  # loop time of the overflow: a stuck writer is aborted later
        self.on_overflow: Callable[[], None] = lambda: None
        self.close_request: tuple[int, str] | None = None
        self.abort: Callable[[], None] = lambda: None  # drops the TCP connection, set by the server
        self.opened_at = now
        self.last_pong = now  # the pong timeout counts from here
        self.next_ping = now
        self.expires_at = now
        self.incoming: collections.deque[float] = collections.deque(maxlen=incoming_limit)
        self.frames_sent = 0

    @property
    def closing(self) -> bool:
        return self.close_request is not None

    def push(self, frame: bytes, record: Sent | None) -> None:
        if self.close_request is not None:
            return  # closing: what was queued before the close goes out, nothing after
        if len(self.queue) >= self.queue_limit:
            if not self.overflowed:
                self.overflowed = True
                self.overflow_at = asyncio.get_running_loop().time()
                self.on_overflow()
        else:
            self.queue.append(frame)
            if record is not None:
                self.sent.append(record)
        self.wakeup.set()

    def reply(self, frame: bytes) -> None:
        """A reply to a request: queued in order with the data, never dropped."""
        self.queue.append(frame)
        self.wakeup.set()

    def close(self, code: int, reason: str) -> None:
        """Ask the writer to send what is queued, then close with `code`."""
        if self.close_request is None:
            self.close_request = (code, reason)
        self.wakeup.set()

    def send_control(self, ping: bool, data: bytes) -> None:
        self.control.append((ping, data))
        self.wakeup.set()

    def allow_incoming(self, now: float) -> bool:
        """Count one incoming message; False past the limit in the last second."""
        recent = self.incoming
        if len(recent) == recent.maxlen and now - recent[0] < 1.0:
            return False
        recent.append(now)
        return True


class Hub:
    def __init__(self, router: Router, stats: SimStats, record: int) -> None:
        self.router = router
        self.stats = stats
        self.record = record
        self.connections: set[SimConnection] = set()
        self.subscribed = asyncio.Event()  # set once any connection subscribes to a fed stream
        self.on_first_subscriber: Callable[[str], None] = lambda name: None
        self._index: dict[str, set[SimConnection]] = collections.defaultdict(set)
        self._prefix: dict[str, bytes] = {}
        self._held = False  # any gap or stall pending: check before sending
        self._withhold: dict[str, int] = {}
        self._stalled: dict[str, float] = {}  # name -> monotonic end of the stall
        self._stall_all_until = 0.0

    def add(self, conn: SimConnection) -> None:
        self.connections.add(conn)

    def remove(self, conn: SimConnection) -> None:
        self.connections.discard(conn)
        for name in conn.subscriptions:
            self._index[name].discard(conn)

    def carries(self, conn: SimConnection, name: str) -> bool:
        return (conn.route or Route.PUBLIC) in self.router(name)

    def subscribe(self, conn: SimConnection, names: Iterable[str]) -> None:
        for name in names:
            if name not in conn.subscriptions:
                conn.subscriptions.append(name)
            if self.carries(conn, name):
                targets = self._index[name]
                if not targets:
                    self.on_first_subscriber(name)
                targets.add(conn)
                self.subscribed.set()

    def unsubscribe(self, conn: SimConnection, names: Iterable[str]) -> None:
        for name in names:
            if name in conn.subscriptions:
                conn.subscriptions.remove(name)
            self._index[name].discard(conn)

    def has(self, name: str) -> bool:
        """Whether anyone listens to `name` (build payloads only then)."""
        return bool(self._index.get(name))

    def listeners(self, name: str | None = None) -> list[SimConnection]:
        """Connections subscribed to `name` (every connection when None)."""
        if name is None:
            return list(self.connections)
        return list(self._index.get(name, ()))

    def publish(self, name: str, payload: wire.Payload | list[wire.MarkPrice]) -> int:
        """Send one payload to the stream's subscribers; returns how many got it."""
        targets = self._index.get(name)
        if not targets or (self._held and self._hold(name)):
            return 0
        raw = _encode(payload)
        return self._fan_out(targets, name, raw, self._combined(name, raw), payload)

    def publish_bytes(self, name: str, raw: bytes, combined: bytes) -> int:
        """Send bytes as they are (a replayed capture); `combined` is the wrapped form."""
        targets = self._index.get(name)
        if not targets or (self._held and self._hold(name)):
            return 0
        return self._fan_out(targets, name, raw, combined, None)

    def _combined(self, name: str, raw: bytes) -> bytes:
        prefix = self._prefix.get(name)
        if prefix is None:
            prefix = self._prefix[name] = b'{"stream":"' + name.encode() + b'","data":'
        return prefix + raw + b"}"

    def _fan_out(
        self,
        targets: set[SimConnection],
        name: str,
        raw: bytes,
        combined: bytes,
        payload: SentPayload,
    ) -> int:
        record = Sent(name, payload, raw) if self.record else None
        for conn in targets:
            conn.push(combined if conn.combined else raw, record)
        self.stats.published += 1
        self.stats.frames += len(targets)
        return len(targets)

    def inject(self, conns: Iterable[SimConnection], name: str, raw: bytes) -> int:
        """Queue a frame outside the feed (a malformed frame) in each connection's form."""
        combined = self._combined(name, raw) if name else raw
        count = 0
        for conn in conns:
            conn.push(combined if conn.combined else raw, Sent(name, None, raw))
            count += 1
        return count

    # --- stream faults -----------------------------------------------------

    def withhold(self, name: str, count: int = 1) -> None:
        """Don't send the next `count` events of `name` that have a subscriber (requests
        made before that event do not add up: a repeated fault on an idle stream is one gap)."""
        self._withhold[name] = max(self._withhold.get(name, 0), count)
        self._held = True

    def stall(self, seconds: float, names: Iterable[str] | None = None) -> None:
        """Send nothing on `names` (every stream when None) for `seconds`."""
        until = time.monotonic() + seconds
        if names is None:
            self._stall_all_until = max(self._stall_all_until, until)
        else:
            for name in names:
                self._stalled[name] = max(self._stalled.get(name, 0.0), until)
        self._held = True

    def clear_faults(self) -> None:
        self._withhold.clear()
        self._stalled.clear()
        self._stall_all_until = 0.0
        self._held = False

    def _hold(self, name: str) -> bool:
        """True when a fault keeps this event from being sent."""
        now = time.monotonic()
        if now < self._stall_all_until or now < self._stalled.get(name, 0.0):
            self.stats.stalled += 1
            return True
        pending = self._withhold.get(name, 0)
        if pending:
            self._withhold[name] = pending - 1
            self.stats.withheld += 1
            return True
        self._expire_faults(now)
        return False

    def _expire_faults(self, now: float) -> None:
        self._stalled = {n: t for n, t in self._stalled.items() if t > now}
        self._withhold = {n: c for n, c in self._withhold.items() if c}
        self._held = bool(self._stalled or self._withhold or now < self._stall_all_until)
