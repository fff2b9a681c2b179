"""The blocking client, for scripts and notebooks.

`RavenClient` runs an `AsyncRavenClient` on an event loop in a background
thread that it owns, and hands events to the caller through a bounded queue.

    client = RavenClient("localhost:50051")
    client.connect()
    client.stream_market_data(["BTCUSDT", "ETHUSDT"], duration_seconds=30)

    with client.book("BTCUSDT", depth=20) as book:
        book.wait_synced(10)
        print(book.top(5))
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any, TypeVar

from raven.client.aio import DEFAULT_KINDS, AsyncRavenClient
from raven.client.book import LiveBook
from raven.client.format import format_event
from raven.client.stream import Gap
from raven.model import Event, Level
from raven.types import Kind

T = TypeVar("T")
HANDOFF = 10_000  # items buffered between the client thread and the caller (bounded; the
# client thread waits when it is full, so nothing is dropped between the two)

_DONE = object()


CLOSE_TIMEOUT_S = 5.0  # for the connection, the loop's tasks and its threads to end


class RavenClient:
    """Same options as `AsyncRavenClient` (token, tls, root_certificates, reconnect)."""

    def __init__(
        self,
        target: str = "localhost:50051",
        *,
        token: str = "",
        tls: bool = False,
        root_certificates: bytes | str | os.PathLike[str] | None = None,
        reconnect: bool = True,
    ) -> None:
        self._client = AsyncRavenClient(
            target, token=token, tls=tls, root_certificates=root_certificates, reconnect=reconnect
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def connect(self, timeout: float = 10.0) -> None:
        self._call(self._client.connect(timeout))

    def close(self) -> None:
        """Close the connection, end the loop's tasks and threads, close the loop."""
        if self._loop.is_running():
            with contextlib.suppress(TimeoutError):
                self._call(self._shutdown(), timeout=CLOSE_TIMEOUT_S)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(CLOSE_TIMEOUT_S)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()  # else its selector and self-pipe leak until garbage collection

    async def _shutdown(self) -> None:
        await self._client.close()
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]  # e.g. a pump still running
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.get_running_loop().shutdown_default_executor()  # the to_thread workers

    def __enter__(self) -> RavenClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def snapshot(self, symbol: str, *, exchange: str = "") -> list[Event]:
        return self._call(self._client.snapshot(symbol, exchange=exchange))

    def items(
        self,
        symbols: list[str],
        kinds: Iterable[Kind] = DEFAULT_KINDS,
        duration_seconds: float | None = None,
        **options: Any,
    ) -> Iterator[Event | Gap]:
        """Events and `Gap`s until `duration_seconds` pass (forever when None).
        `options` go to `AsyncRavenClient.stream` (exchange, policy, book_depth)."""
        handoff: queue.Queue[object] = queue.Queue(HANDOFF)
        kinds = tuple(kinds)

        async def pump() -> None:
            try:
                async with self._client.stream(symbols, kinds, **options) as stream:
                    async for item in stream.items():
                        try:
                            handoff.put_nowait(item)
                        except queue.Full:  # the caller is slow: wait without blocking the loop
                            await asyncio.to_thread(handoff.put, item)
            finally:
                await asyncio.to_thread(handoff.put, _DONE)

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
            with contextlib.suppress(queue.Empty):
                while True:  # unblock a pump waiting on a full handoff
                    handoff.get_nowait()
        if future.done() and not future.cancelled() and future.exception() is not None:
            raise future.exception()  # type: ignore[misc]

    def events(
        self,
        symbols: list[str],
        kinds: Iterable[Kind] = DEFAULT_KINDS,
        duration_seconds: float | None = None,
        **options: Any,
    ) -> Iterator[Event]:
        """Normalized events until `duration_seconds` pass (forever when None)."""
        for item in self.items(symbols, kinds, duration_seconds, **options):
            if not isinstance(item, Gap):
                yield item

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

    def book(self, symbol: str, *, depth: int = 0, exchange: str = "") -> SyncBook:
        """A local order book kept current in the background; close it (or use `with`)."""
        return SyncBook(self, symbol, depth, exchange)


class SyncBook:
    """Blocking view of a `LiveBook`; reads run on the client's loop, so they are consistent."""

    def __init__(self, client: RavenClient, symbol: str, depth: int, exchange: str) -> None:
        self._client = client
        self._context = client._client.book(symbol, depth=depth, exchange=exchange)
        self._live: LiveBook = client._call(self._context.__aenter__())

    def _read(self, fn: Callable[[LiveBook], T]) -> T:
        async def read() -> T:
            return fn(self._live)

        return self._client._call(read())

    def wait_synced(self, timeout: float | None = None) -> None:
        self._client._call(self._live.wait_synced(timeout))

    @property
    def synced(self) -> bool:
        return self._read(lambda b: b.local.synced)

    def top(self, n: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        return self._read(lambda b: b.local.top(n))

    def best_bid(self) -> Level | None:
        return self._read(lambda b: b.local.best_bid())

    def best_ask(self) -> Level | None:
        return self._read(lambda b: b.local.best_ask())

    def close(self) -> None:
        self._client._call(self._context.__aexit__(None, None, None))

    def __enter__(self) -> SyncBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
