"""One logical market data stream that survives server restarts.

`MarketStream` wraps StreamMarketData calls. It remembers its
subscriptions; when the call fails with a retryable status (or the server
ends it), it opens a new call with capped exponential backoff, waits for
the server, resubscribes everything, and goes on. It checks the stream's
sequence numbers and reports every loss as a `Gap`:

- the server's Gap markers (this client's queue overflowed under
  DROP_OLDEST): `dropped` events, `reason` from the server;
- a hole in the numbering (should not happen; reported if it does);
- a reconnect: events published while disconnected are missed
  (`dropped` = 0, unknown; `reconnect` = True). After a reconnect the
  server sends the current state again (snapshot, last quote, ...).

It answers the server's heartbeats and sends its own, so the server never
times out a quiet but healthy client.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence

import grpc
import msgspec

from raven import codec
from raven.connectors.backoff import exponential_backoff
from raven.model import Event
from raven.v1 import market_data_pb2 as pb
from raven.v1 import market_data_pb2_grpc as pb_grpc

log = logging.getLogger("raven.client")

HEARTBEAT_S = 5.0  # longest silence from this client, whatever the server asks
REQUEST_QUEUE = 64  # outgoing requests buffered per call (subscribe, heartbeat)
GAP_LOG = 100  # most recent gaps kept on the stream
CONNECT_TIMEOUT_S = 10.0  # per attempt: the server must start the stream in this time
# Statuses after which a new call may succeed; others (INVALID_ARGUMENT,
# UNAUTHENTICATED, ...) need the caller to change something.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)

Metadata = tuple[tuple[str, str], ...]
Backoff = Callable[[], Iterator[float]]


class Gap(msgspec.Struct, frozen=True):
    """Events this client did not get (see the module docstring for the causes)."""

    dropped: int  # events known to be missing; 0 when unknown (a reconnect)
    reason: str
    time_ns: int
    reconnect: bool = False


class _Call:
    """One StreamMarketData call: its request queue and heartbeat task."""

    def __init__(self, stub: pb_grpc.MarketDataServiceAsyncStub, metadata: Metadata) -> None:
        self.requests: asyncio.Queue[pb.StreamRequest | None] = asyncio.Queue(REQUEST_QUEUE)
        self.call = stub.StreamMarketData(self._iter(), metadata=metadata, wait_for_ready=True)
        self.heartbeat: asyncio.Task[None] | None = None

    async def _iter(self) -> AsyncIterator[pb.StreamRequest]:
        while True:
            request = await self.requests.get()
            if request is None:
                return
            yield request

    async def beat(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.requests.put(_heartbeat())

    def answer_heartbeat(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a full queue is busy anyway
            self.requests.put_nowait(_heartbeat())

    async def close(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.heartbeat
        with contextlib.suppress(asyncio.QueueFull):
            self.requests.put_nowait(None)
        self.call.cancel()


def _heartbeat() -> pb.StreamRequest:
    return pb.StreamRequest(heartbeat=pb.Heartbeat(time_ns=time.time_ns()))


class MarketStream:
    """Iterate for normalized events (`events()`), or events and gaps (`items()`)."""

    def __init__(
        self,
        stub: pb_grpc.MarketDataServiceAsyncStub,
        metadata: Metadata = (),
        *,
        reconnect: bool = True,
        backoff: Backoff = lambda: exponential_backoff(0.1, 5.0),
    ) -> None:
        self._stub = stub
        self._metadata = metadata
        self.reconnect = reconnect
        self._backoff = backoff
        self._call: _Call | None = None
        self._closed = False
        self.subscriptions: list[pb.Subscription] = []
        self.stream_id = ""
        self.next_sequence = 1
        self.gaps = 0  # events known missed (sum of Gap.dropped)
        self.gap_log: collections.deque[Gap] = collections.deque(maxlen=GAP_LOG)
        self.reconnects = 0
        self.frames = 0
        self.acks: list[pb.SubscriptionAck] = []

    async def start(self, timeout: float = CONNECT_TIMEOUT_S) -> str:
        """Open the first call and wait for the server to start it; returns the stream id."""
        await self._open(timeout)
        return self.stream_id

    async def _open(self, timeout: float) -> None:
        call = _Call(self._stub, self._metadata)
        try:
            first = await asyncio.wait_for(call.call.read(), timeout)
            if not isinstance(first, pb.StreamResponse) or not first.HasField("started"):
                raise ConnectionError("the server did not start the stream")
        except BaseException:
            await call.close()
            raise
        self._call = call
        self.stream_id = first.started.stream_id
        self.next_sequence = 1
        server_interval = first.started.heartbeat_interval_ms / 1000
        interval = min(HEARTBEAT_S, server_interval or HEARTBEAT_S)
        call.heartbeat = asyncio.create_task(call.beat(interval), name="raven-client-heartbeat")
        for sub in self.subscriptions:
            await call.requests.put(pb.StreamRequest(subscribe=sub))

    async def subscribe(self, sub: pb.Subscription) -> None:
        """Add a subscription now, and again after every reconnect."""
        self.subscriptions.append(sub)
        await self._send(pb.StreamRequest(subscribe=sub))

    async def unsubscribe(self, sub: pb.Subscription) -> None:
        with contextlib.suppress(ValueError):
            self.subscriptions.remove(sub)
        await self._send(pb.StreamRequest(unsubscribe=sub))

    async def _send(self, request: pb.StreamRequest) -> None:
        if self._call is None:
            raise RuntimeError("the stream is not started: call start() first")
        await self._call.requests.put(request)

    async def frames_raw(self) -> AsyncIterator[pb.StreamResponse]:
        """Every frame as received (raw protobuf), across reconnects."""
        async for item in self._frames():
            if not isinstance(item, Gap):
                yield item

    async def items(self) -> AsyncIterator[Event | Gap]:
        """Normalized events and, where something was missed, `Gap`s, in order."""
        async for item in self._frames():
            if isinstance(item, Gap):
                yield item
                continue
            for message in item.events:
                if message.HasField("gap"):
                    yield Gap(message.gap.dropped, message.gap.reason, message.receive_time_ns)
                    continue
                event = codec.from_proto(message)
                if event is not None:
                    yield event

    async def events(self) -> AsyncIterator[Event]:
        """Normalized events only; gaps are counted in `gaps` and kept in `gap_log`."""
        async for item in self.items():
            if not isinstance(item, Gap):
                yield item

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    async def _frames(self) -> AsyncIterator[pb.StreamResponse | Gap]:
        while True:
            call = self._call
            if call is None:
                raise RuntimeError("the stream is not started: call start() first")
            try:
                frame = await call.call.read()
            except grpc.aio.AioRpcError as exc:
                if self._closed or not self.reconnect or exc.code() not in RETRYABLE:
                    raise
                problem = f"{exc.code().name}: {exc.details()}"
            else:
                if isinstance(frame, pb.StreamResponse):
                    for gap in self._take(frame, call):
                        yield gap
                    yield frame
                    continue
                if self._closed or not self.reconnect:
                    return
                problem = "the server ended the stream"
            yield await self._reconnect(problem)

    def _take(self, frame: pb.StreamResponse, call: _Call) -> list[Gap]:
        """Book-keeping for one frame; returns gaps found in its numbering."""
        self.frames += 1
        if frame.HasField("heartbeat"):
            call.answer_heartbeat()
        if frame.HasField("ack"):
            self.acks.append(frame.ack)
        if not frame.events:
            return []
        found = []
        if frame.first_sequence > self.next_sequence:
            missing = frame.first_sequence - self.next_sequence
            found.append(Gap(missing, "sequence hole", time.time_ns()))
        self.next_sequence = frame.first_sequence + len(frame.events)
        for event in frame.events:
            if event.HasField("gap"):
                self._note(Gap(event.gap.dropped, event.gap.reason, event.receive_time_ns))
        for gap in found:
            self._note(gap)
        return found

    def _note(self, gap: Gap) -> None:
        self.gaps += gap.dropped
        self.gap_log.append(gap)

    async def _reconnect(self, problem: str) -> Gap:
        log.warning("stream %s lost (%s); reconnecting", self.stream_id, problem)
        if self._call is not None:
            await self._call.close()
        delays = self._backoff()
        while True:
            await asyncio.sleep(next(delays))
            try:
                await self._open(CONNECT_TIMEOUT_S)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRYABLE:
                    raise
                log.info("reconnect failed (%s); retrying", exc.code().name)
            except (TimeoutError, ConnectionError) as exc:
                log.info("reconnect failed (%s); retrying", exc or type(exc).__name__)
            else:
                break
        self.reconnects += 1
        log.info("stream reconnected as %s; %d subscriptions renewed",
                 self.stream_id, len(self.subscriptions))  # fmt: skip
        gap = Gap(0, f"reconnected after: {problem}", time.time_ns(), reconnect=True)
        self._note(gap)
        return gap

    async def close(self) -> None:
        self._closed = True
        if self._call is not None:
            await self._call.close()


def subscription(
    symbols: Sequence[str],
    kinds: Sequence[int],
    *,
    exchange: str = "",
    policy: int = 0,
    book_depth: int = 0,
    candle_intervals: Sequence[str] = (),
) -> pb.Subscription:
    return pb.Subscription(
        exchange=exchange,
        symbols=list(symbols),
        kinds=[int(k) for k in kinds],  # type: ignore[misc]
        policy=policy,  # type: ignore[arg-type]
        book_depth=book_depth,
        candle_intervals=list(candle_intervals),
    )
