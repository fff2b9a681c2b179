"""The asyncio client: a channel (TLS and a bearer token when asked), streams, typed events.

    async with AsyncRavenClient("localhost:50051") as client:
        async with client.stream(["BTCUSDT"], [Kind.TRADE, Kind.QUOTE]) as stream:
            async for event in stream:          # raven.model.Trade / Quote / ...
                ...
        async with client.book("BTCUSDT", depth=20) as book:
            await book.wait_synced()
            bids, asks = book.local.top(5)

Streams reconnect and resubscribe on their own (see `raven.client.stream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from types import TracebackType

import grpc

from raven import codec
from raven.client.book import LiveBook, live_book
from raven.client.stream import MarketStream, Metadata, subscription
from raven.grpc_poller import drain_wakeups
from raven.model import Event
from raven.types import Kind
from raven.v1 import market_data_pb2 as pb
from raven.v1 import market_data_pb2_grpc as pb_grpc

DEFAULT_KINDS = (Kind.TRADE, Kind.QUOTE)

__all__ = ["DEFAULT_KINDS", "AsyncRavenClient", "MarketStream", "subscription"]


class AsyncRavenClient:
    """`async with AsyncRavenClient("localhost:50051") as client: ...`

    `token`: sent as `authorization: Bearer <token>` on every call.
    `tls`: use TLS; `root_certificates` (PEM bytes or a file path) trusts a
    private CA or a self-signed server certificate, and implies TLS.
    `reconnect`: streams reconnect and resubscribe after the server restarts.
    `options`: gRPC channel arguments, e.g. `("grpc.http2.lookahead_bytes", 65536)`.
    """

    def __init__(
        self,
        target: str = "localhost:50051",
        *,
        token: str = "",
        tls: bool = False,
        root_certificates: bytes | str | os.PathLike[str] | None = None,
        reconnect: bool = True,
        options: Sequence[tuple[str, int | str]] = (),
    ) -> None:
        self.target = target
        self.options = tuple(options)  # gRPC channel arguments
        self.token = token
        self.root_certificates = _pem(root_certificates)
        self.tls = tls or self.root_certificates is not None
        self.reconnect = reconnect
        self.metadata: Metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.MarketDataServiceAsyncStub | None = None

    async def connect(self, timeout: float = 10.0) -> None:
        """Open the channel and wait until the server answers (TimeoutError if not)."""
        if self.tls:
            credentials = grpc.ssl_channel_credentials(self.root_certificates)
            self._channel = grpc.aio.secure_channel(self.target, credentials, self.options)
        else:
            self._channel = grpc.aio.insecure_channel(self.target, self.options)
        try:
            await _wait_ready(self._channel, timeout)
        except BaseException:
            await self._channel.close()
            self._channel = None
            raise
        drain_wakeups(asyncio.get_running_loop())  # see raven.grpc_poller
        self._stub = pb_grpc.MarketDataServiceStub(self._channel)

    @property
    def stub(self) -> pb_grpc.MarketDataServiceAsyncStub:
        """The generated stub, for raw protobuf calls (pass `metadata=client.metadata`)."""
        if self._stub is None:
            raise RuntimeError("not connected: call connect() first")
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    async def __aenter__(self) -> AsyncRavenClient:
        await self.connect()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open_stream(self) -> MarketStream:
        """A started stream with no subscriptions yet."""
        stream = MarketStream(self.stub, self.metadata, reconnect=self.reconnect)
        await stream.start()
        return stream

    @contextlib.asynccontextmanager
    async def stream(
        self,
        symbols: Sequence[str],
        kinds: Iterable[Kind] = DEFAULT_KINDS,
        *,
        exchange: str = "",
        policy: int = 0,
        book_depth: int = 0,
        candle_intervals: Sequence[str] = (),
    ) -> AsyncIterator[MarketStream]:
        """A started stream subscribed to `symbols` x `kinds`; closed on exit.

        `policy` is a `raven.v1.OverflowPolicy` value (0: the server's default per kind).
        """
        stream = await self.open_stream()
        try:
            sub = subscription(
                symbols, list(kinds), exchange=exchange, policy=policy,
                book_depth=book_depth, candle_intervals=candle_intervals,
            )  # fmt: skip
            await stream.subscribe(sub)
            yield stream
        finally:
            await stream.close()

    @contextlib.asynccontextmanager
    async def book(
        self, symbol: str, *, depth: int = 0, exchange: str = ""
    ) -> AsyncIterator[LiveBook]:
        """A local order book for `symbol`, rebuilt from snapshot + deltas on its own stream."""
        stream = await self.open_stream()
        sub = subscription([symbol], [Kind.BOOK], exchange=exchange, book_depth=depth)
        async with live_book(stream, sub, symbol.upper()) as live:
            yield live

    async def snapshot(
        self, symbol: str, *, exchange: str = "", book_depth: int = 0
    ) -> list[Event]:
        """The server's current state of one symbol (book, quote, last trade, ...)."""
        request = pb.GetSnapshotRequest(exchange=exchange, symbol=symbol, book_depth=book_depth)
        response = await self.stub.GetSnapshot(request, metadata=self.metadata)
        return [e for e in map(codec.from_proto, response.events) if e is not None]


async def _wait_ready(channel: grpc.aio.Channel, timeout: float) -> None:
    try:
        await asyncio.wait_for(channel.channel_ready(), timeout)
    except TimeoutError:
        raise TimeoutError(f"no Raven server answered within {timeout:g} s") from None


def _pem(value: bytes | str | os.PathLike[str] | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()
