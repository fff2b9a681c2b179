"""Which simulated WebSocket connection gets which frame.

The hub indexes connections by stream name. Each emission is encoded once
in raw form and once in combined form, and the same bytes go to every
connection subscribed to that stream on a route that carries it. Every
connection records what it was sent (bounded), so tests can compare what a
client received with what the simulator really sent.
"""

from __future__ import annotations

import asyncio
import collections

import msgspec

from raven.connectors.binance import wire
from raven.connectors.binance.streams import Route, route_of
from raven.sim.market import Emission

_encode = wire.encoder.encode


class Sent(msgspec.Struct, frozen=True):
    stream: str
    payload: wire.Payload


class SimConnection:
    """One client connection: its subscriptions, outgoing queue and record."""

    def __init__(self, route: Route | None, combined: bool, queue_limit: int, record: int) -> None:
        self.route = route  # None: a connection without a route only gets /public streams
        self.combined = combined
        self.subscriptions: list[str] = []  # in subscription order, for LIST_SUBSCRIPTIONS
        self.queue: collections.deque[bytes] = collections.deque()
        self.queue_limit = queue_limit
        self.wakeup = asyncio.Event()
        self.sent: collections.deque[Sent] = collections.deque(maxlen=record)
        self.overflowed = False

    def carries(self, name: str) -> bool:
        route = route_of(name)
        symbol = name.partition("@")[0]
        if route is None or symbol != symbol.lower():
            return False  # acknowledged, but silent: like the venue
        return route is (self.route or Route.PUBLIC)

    def push(self, frame: bytes, record: Sent) -> None:
        if len(self.queue) >= self.queue_limit:
            self.overflowed = True
        else:
            self.queue.append(frame)
            self.sent.append(record)
        self.wakeup.set()


class Hub:
    def __init__(self) -> None:
        self.connections: set[SimConnection] = set()
        self._index: dict[str, set[SimConnection]] = collections.defaultdict(set)

    def add(self, conn: SimConnection) -> None:
        self.connections.add(conn)

    def remove(self, conn: SimConnection) -> None:
        self.connections.discard(conn)
        for name in conn.subscriptions:
            self._index[name].discard(conn)

    def subscribe(self, conn: SimConnection, names: list[str]) -> None:
        for name in names:
            if name not in conn.subscriptions:
                conn.subscriptions.append(name)
            if conn.carries(name):
                self._index[name].add(conn)

    def unsubscribe(self, conn: SimConnection, names: list[str]) -> None:
        for name in names:
            if name in conn.subscriptions:
                conn.subscriptions.remove(name)
            self._index[name].discard(conn)

    def publish(self, emission: Emission) -> int:
        """Send one emission to its subscribers; returns how many got it."""
        name = f"{emission.symbol.lower()}@{emission.suffix}"
        targets = self._index.get(name)
        if not targets:
            return 0
        raw = _encode(emission.payload)
        combined = b'{"stream":"' + name.encode() + b'","data":' + raw + b"}"
        record = Sent(name, emission.payload)
        for conn in targets:
            conn.push(combined if conn.combined else raw, record)
        return len(targets)
