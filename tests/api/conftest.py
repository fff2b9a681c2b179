"""A real Raven server on loopback fed by the scripted `FakeConnector`, and raw
gRPC clients for it (so tests can send exactly the bytes and metadata they want)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc
import msgspec
import pytest

from raven import codec
from raven.app import RavenApp
from raven.config import config_from_dict
from raven.connectors.fake import FakeConnector
from raven.model import BookSnapshot, Event
from raven.types import Kind
from raven.v1 import market_data_pb2 as pb
from raven.v1 import market_data_pb2_grpc as pb_grpc

EXCHANGE = "fake"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
INSTRUMENTS = dict.fromkeys(SYMBOLS, ("0.1", "0.001"))


class Server:
    """A started RavenApp whose only feed is `fake`."""

    def __init__(self, app: RavenApp, fake: FakeConnector) -> None:
        self.app = app
        self.fake = fake
        self.target = f"127.0.0.1:{app.grpc.port}"

    async def feed(self, events: Iterable[Event], speed: float | None = None) -> None:
        await self.fake.feed(events, speed)
        await self.fake.drained()


ServerFactory = Callable[..., contextlib.AbstractAsyncContextManager[Server]]


@contextlib.asynccontextmanager
async def serve(
    snapshot_source: Callable[[str], BookSnapshot] | None = None, **sections: dict[str, Any]
) -> AsyncIterator[Server]:
    raw: dict[str, dict[str, Any]] = {
        "server": {"port": 0, "shutdown_grace_s": 1.0},
        "exchanges": {"binance_futures": {"enabled": False}},
        "monitoring": {"metrics_port": 0, "health_check_port": 0},
        "database": {"backend": "none"},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    app = RavenApp(config_from_dict(msgspec.to_builtins(raw), "test"))
    fake = FakeConnector(EXCHANGE, app.pipeline.ingest, SYMBOLS, INSTRUMENTS, snapshot_source)
    app.add_connector(fake, SYMBOLS)
    await app.start()
    try:
        yield Server(app, fake)
    finally:
        await app.stop()


@pytest.fixture
def make_server() -> ServerFactory:
    return serve


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with serve() as s:
        yield s


class Stream:
    """One raw StreamMarketData call: send requests, read frames and events."""

    def __init__(self, stub: pb_grpc.MarketDataServiceAsyncStub, metadata: Any = None) -> None:
        self._requests: asyncio.Queue[pb.StreamRequest | None] = asyncio.Queue(100)
        self.call = stub.StreamMarketData(self._iter(), metadata=metadata)
        self.stream_id = ""
        self.next_sequence = 1
        self.gaps = 0
        self.before_ack: list[pb.MarketEvent] = []

    async def _iter(self) -> AsyncIterator[pb.StreamRequest]:
        while (request := await self._requests.get()) is not None:
            yield request

    async def start(self) -> str:
        first = await self.read()
        assert first.HasField("started"), first
        self.stream_id = first.started.stream_id
        return self.stream_id

    async def send(self, request: pb.StreamRequest) -> None:
        await self._requests.put(request)

    async def subscribe(self, **fields: Any) -> pb.SubscriptionAck:
        """Subscribe and wait for the ack (frames before it are sequence-checked)."""
        await self.send(pb.StreamRequest(subscribe=subscription(**fields)))
        return await self.ack()

    async def unsubscribe(self, **fields: Any) -> pb.SubscriptionAck:
        await self.send(pb.StreamRequest(unsubscribe=subscription(**fields)))
        return await self.ack()

    async def ack(self) -> pb.SubscriptionAck:
        """Read up to the next ack; events before it are kept in `before_ack`."""
        self.before_ack = []
        while True:
            frame = await self.read()
            self.before_ack += frame.events
            if frame.HasField("ack"):
                return frame.ack

    async def read(self) -> pb.StreamResponse:
        frame = await self.call.read()
        assert isinstance(frame, pb.StreamResponse), f"stream ended: {frame}"
        if frame.events:
            assert frame.first_sequence == self.next_sequence, "sequence hole"
            self.next_sequence += len(frame.events)
            self.gaps += sum(m.gap.dropped for m in frame.events if m.HasField("gap"))
        return frame

    async def messages(self, count: int) -> list[pb.MarketEvent]:
        """The next `count` market events (Gap markers included)."""
        out: list[pb.MarketEvent] = []
        while len(out) < count:
            frame = await self.read()
            out += frame.events
        return out

    async def events_until(self, done: Callable[[list[Event]], bool]) -> list[Event]:
        out: list[Event] = []
        while not done(out):
            frame = await self.read()
            out += [e for m in frame.events if (e := codec.from_proto(m)) is not None]
        return out

    async def close(self) -> None:
        self._requests.put_nowait(None)
        self.call.cancel()


def subscription(
    symbols: Iterable[str] = ("BTCUSDT",),
    kinds: Iterable[Kind] = (Kind.TRADE,),
    **options: Any,
) -> pb.Subscription:
    return pb.Subscription(
        exchange=options.pop("exchange", EXCHANGE),
        symbols=list(symbols),
        kinds=[int(k) for k in kinds],  # type: ignore[misc]
        **options,
    )


@contextlib.asynccontextmanager
async def connect(
    target: str,
    credentials: grpc.ChannelCredentials | None = None,
    options: dict[str, Any] | None = None,
) -> AsyncIterator[pb_grpc.MarketDataServiceAsyncStub]:
    channel_options = list((options or {}).items())
    if credentials is None:
        channel = grpc.aio.insecure_channel(target, options=channel_options)
    else:
        channel = grpc.aio.secure_channel(target, credentials, options=channel_options)
    async with channel:
        yield pb_grpc.MarketDataServiceStub(channel)


@contextlib.asynccontextmanager
async def open_stream(
    stub: pb_grpc.MarketDataServiceAsyncStub, metadata: Any = None
) -> AsyncIterator[Stream]:
    stream = Stream(stub, metadata)
    await stream.start()
    try:
        yield stream
    finally:
        await stream.close()
