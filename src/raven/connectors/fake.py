"""A scripted connector: replays given events into the pipeline.

`FakeConnector` implements the `Connector` protocol without any venue: a
test (or a demo) feeds it normalized events and it hands them to its sink
from its own `run()` task, like a real connector would. It exposes
`instruments` (tick and step sizes) like the real one, records resync
requests, and answers them with a fresh snapshot when given a
`snapshot_source`. It ships beside the real connectors so that everything
downstream can be driven deterministically through the real server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

import msgspec

from raven.connectors.base import EventSink
from raven.model import BookDelta, BookSnapshot, Event, Status
from raven.types import S_NS, StatusKind

QUEUE_SIZE = 4096  # scripted events waiting for run(); feed() waits when it is full


class FakeInstrument(msgspec.Struct, frozen=True):
    """The fields of an exchange instrument that validation reads."""

    symbol: str
    tick_size: str
    step_size: str


class FakeConnector:
    name: str

    def __init__(
        self,
        name: str,
        sink: EventSink,
        symbols: Iterable[str],
        instruments: dict[str, tuple[str, str]] | None = None,
        snapshot_source: Callable[[str], BookSnapshot] | None = None,
    ) -> None:
        self.name = name
        self.sink = sink
        self.symbols = tuple(symbols)
        self.instruments = {
            s: FakeInstrument(s, tick, step) for s, (tick, step) in (instruments or {}).items()
        }
        self.snapshot_source = snapshot_source
        self.resyncs: list[tuple[str, str]] = []  # (symbol, reason) per request
        self.delivered = 0
        self.restamp = True  # set receive_time to the delivery time, as a live feed would
        self._queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self._urgent: list[Event] = []  # resync answers, delivered before the queue
        self._floor: dict[str, int] = {}  # symbol -> resync snapshot id; older deltas dropped

    async def run(self) -> None:
        queue = self._queue
        while True:
            event = await queue.get()
            try:
                while self._urgent:
                    self._deliver(self._urgent.pop(0))
                self._deliver(event)
            finally:
                queue.task_done()

    def _deliver(self, event: Event) -> None:
        if type(event) is BookDelta and event.update_id <= self._floor.get(event.symbol, -1):
            return  # as a real sync does: deltas the resync snapshot already covers
        if self.restamp:
            event = msgspec.structs.replace(event, receive_time=time.time_ns())
        self.delivered += 1
        self.sink(event)

    async def feed(self, events: Iterable[Event], speed: float | None = None) -> None:
        """Queue events for delivery. With `speed`, pace them by their exchange
        times (1.0: as recorded, 100.0: a hundred times faster)."""
        start_wall = time.monotonic()
        start_exchange: int | None = None
        for event in events:
            if speed is not None:
                if start_exchange is None:
                    start_exchange = event.exchange_time
                due = start_wall + (event.exchange_time - start_exchange) / S_NS / speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self._queue.put(event)

    async def drained(self) -> None:
        """Wait until every event fed so far was handed to the sink."""
        await self._queue.join()

    def request_resync(self, symbol: str, reason: str) -> None:
        self.resyncs.append((symbol, reason))
        now = time.time_ns()
        self.sink(Status(self.name, symbol, StatusKind.BOOK_STALE, f"resync: {reason}", now, now))
        if self.snapshot_source is not None:
            snapshot = self.snapshot_source(symbol)
            self._floor[symbol] = snapshot.update_id
            live = Status(self.name, symbol, StatusKind.BOOK_LIVE, "resynced", now, now)
            self._urgent += [snapshot, live]
            if self._queue.empty():  # nothing will wake run(): deliver on the next loop turn
                asyncio.get_running_loop().call_soon(self._flush_urgent)

    def _flush_urgent(self) -> None:
        while self._urgent:
            self._deliver(self._urgent.pop(0))
