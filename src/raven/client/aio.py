"""The asyncio client: a channel, streams with subscriptions, typed events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from types import TracebackType

import grpc

from raven import codec
from raven.model import Event
from raven.types import Kind
from raven.v1 import market_data_pb2 as pb
from raven.v1 import market_data_pb2_grpc as pb_grpc

DEFAULT_KINDS = (Kind.TRADE, Kind.QUOTE)
HEARTBEAT_S = 5.0  # how often a stream tells the server the client is alive
REQUEST_QUEUE = 64  # outgoing requests buffered per stream (subscribe, heartbeat)


def subscription(
    symbols: Iterable[str],
    kinds: Iterable[Kind] = DEFAULT_KINDS,
    *,
    exchange: str = "",
    policy: int = 0,
    book_depth: int = 0,
) -> pb.Subscription:
    return pb.Subscription(
        exchange=exchange,
        symbols=list(symbols),
        kinds=[int(k) for k in kinds],  # type: ignore[misc]
        policy=policy,  # type: ignore[arg-type]
        book_depth=book_depth,
    )


class MarketStream:
    """One StreamMarketData call. Iterate it for events; subscribe at any time.

    Checks the stream's sequence numbers: `gaps` counts events the server
    dropped for this client (Gap markers) plus any hole in the numbering.
    """

    def __init__(self, stub: pb_grpc.MarketDataServiceAsyncStub) -> None:
        self._requests: asyncio.Queue[pb.StreamRequest | None] = asyncio.Queue(REQUEST_QUEUE)
        self._call = stub.StreamMarketData(self._request_iter())
        self.stream_id = ""
        self.next_sequence = 1
        self.gaps = 0
        self.frames = 0
        self.acks: list[pb.SubscriptionAck] = []
        self._heartbeat: asyncio.Task[None] | None = None

    async def _request_iter(self) -> AsyncIterator[pb.StreamRequest]:
        while True:
            request = await self._requests.get()
            if request is None:
                return
            yield request

    async def start(self) -> str:
        """Wait for the server's first frame; returns the stream id."""
        first = await self._call.read()
        if not isinstance(first, pb.StreamResponse) or not first.HasField("started"):
            raise ConnectionError("the server did not start the stream")
        self.stream_id = first.started.stream_id
        self._heartbeat = asyncio.create_task(self._beat(), name="raven-client-heartbeat")
        return self.stream_id

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            await self._requests.put(
                pb.StreamRequest(heartbeat=pb.Heartbeat(time_ns=time.time_ns()))
            )

    async def subscribe(self, sub: pb.Subscription) -> None:
        await self._requests.put(pb.StreamRequest(subscribe=sub))

    async def unsubscribe(self, sub: pb.Subscription) -> None:
        await self._requests.put(pb.StreamRequest(unsubscribe=sub))

    async def frames_raw(self) -> AsyncIterator[pb.StreamResponse]:
        """Every frame as received, after sequence checking."""
        while True:
            frame = await self._call.read()
            if not isinstance(frame, pb.StreamResponse):  # EOF
                return
            self.frames += 1
            if frame.HasField("ack"):
                self.acks.append(frame.ack)
            if frame.events:
                self._check_sequence(frame)
            yield frame

    def _check_sequence(self, frame: pb.StreamResponse) -> None:
        if frame.first_sequence != self.next_sequence:
            self.gaps += max(0, frame.first_sequence - self.next_sequence)
        self.next_sequence = frame.first_sequence + len(frame.events)
        for event in frame.events:
            if event.HasField("gap"):
                self.gaps += event.gap.dropped

    async def events(self) -> AsyncIterator[Event]:
        """Normalized events, in order; Gap markers are counted, not yielded."""
        async for frame in self.frames_raw():
            for message in frame.events:
                event = codec.from_proto(message)
                if event is not None:
                    yield event

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        with contextlib.suppress(asyncio.QueueFull):
            self._requests.put_nowait(None)
        self._call.cancel()


class AsyncRavenClient:
    """`async with AsyncRavenClient("localhost:50051") as client: ...`"""

    def __init__(self, target: str = "localhost:50051", *, token: str = "") -> None:
        self.target = target
        self.token = token
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.MarketDataServiceAsyncStub | None = None

    async def connect(self, timeout: float = 10.0) -> None:
        self._channel = grpc.aio.insecure_channel(self.target)
        await asyncio.wait_for(self._channel.channel_ready(), timeout)
        self._stub = pb_grpc.MarketDataServiceStub(self._channel)

    @property
    def stub(self) -> pb_grpc.MarketDataServiceAsyncStub:
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
        stream = MarketStream(self.stub)
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
    ) -> AsyncIterator[MarketStream]:
        """A started stream subscribed to `symbols` x `kinds`; closed on exit."""
        stream = await self.open_stream()
        try:
            sub = subscription(
                symbols, kinds, exchange=exchange, policy=policy, book_depth=book_depth
            )
            await stream.subscribe(sub)
            yield stream
        finally:
            await stream.close()
