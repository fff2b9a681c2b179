"""The blocking client, for scripts and notebooks.

`RavenClient` runs an `AsyncRavenClient` on an event loop in a background
thread that it owns, and hands events to the caller through a bounded queue.

    client = RavenClient("localhost:50051")
    client.connect()
    client.stream_market_data(["BTCUSDT", "ETHUSDT"], duration_seconds=30)
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any, TypeVar

from raven.client.aio import DEFAULT_KINDS, AsyncRavenClient
from raven.client.format import format_event
from raven.model import Event
from raven.types import Kind

T = TypeVar("T")
HANDOFF = 10_000  # events buffered between the client thread and the caller

_DONE = object()


class RavenClient:
    def __init__(self, target: str = "localhost:50051", *, token: str = "") -> None:
        self._client = AsyncRavenClient(target, token=token)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def connect(self, timeout: float = 10.0) -> None:
        self._call(self._client.connect(timeout))

    def close(self) -> None:
        if self._loop.is_running():
            self._call(self._client.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __enter__(self) -> RavenClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def events(
        self,
        symbols: list[str],
        kinds: Iterable[Kind] = DEFAULT_KINDS,
        duration_seconds: float | None = None,
    ) -> Iterator[Event]:
        """Normalized events until `duration_seconds` pass (forever when None)."""
        handoff: queue.Queue[object] = queue.Queue(HANDOFF)
        kinds = tuple(kinds)

        async def pump() -> None:
            try:
                async with self._client.stream(symbols, kinds) as stream:
                    async for event in stream:
                        try:
                            handoff.put_nowait(event)
                        except queue.Full:  # the caller is slow: wait without blocking the loop
                            await asyncio.to_thread(handoff.put, event)
            finally:
                handoff.put(_DONE)

        future = asyncio.run_coroutine_threadsafe(pump(), self._loop)
        deadline = None if duration_seconds is None else time.monotonic() + duration_seconds
        try:
            while deadline is None or time.monotonic() < deadline:
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    item = handoff.get(timeout=wait)
                except queue.Empty:
                    break
                if item is _DONE:
                    break
                yield item  # type: ignore[misc]
        finally:
            future.cancel()
        if future.done() and not future.cancelled() and future.exception() is not None:
            raise future.exception()  # type: ignore[misc]

    def stream_market_data(
        self,
        symbols: list[str],
        duration_seconds: float = 30,
        kinds: Iterable[Kind] = DEFAULT_KINDS,
        on_event: Callable[[Event], None] | None = None,
    ) -> Counter[str]:
        """Stream for `duration_seconds`, printing each event (or calling
        `on_event`); returns the count of events per kind."""
        counts: Counter[str] = Counter()
        handle = on_event or (lambda e: print(format_event(e), flush=True))
        for event in self.events(symbols, kinds, duration_seconds):
            counts[event.kind.name.lower()] += 1
            handle(event)
        return counts
