"""`raven.v1.MarketDataService`: StreamMarketData, Subscribe, Unsubscribe,
GetSnapshot and GetHistoricalData.

Requests arrive as raw bytes and are parsed here, so a malformed message is
an INVALID_ARGUMENT with a reason rather than a generic INTERNAL error.
Stream responses are written as pre-built bytes (see `raven.codec`).

Each StreamMarketData call is three owned tasks under the handler: a reader
(client requests), a sender (frames, idle heartbeats) and the handler itself
supervising them. The handler ends the call when the client half-closes,
sends a bad request (INVALID_ARGUMENT), falls behind under the DISCONNECT
policy (RESOURCE_EXHAUSTED), stays silent past `client_timeout_s`
(DEADLINE_EXCEEDED), or the server drains for shutdown (OK, after a
SERVER_SHUTDOWN status event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from raven import __version__, codec
from raven.api.history import serialize_response
from raven.api.requests import (
    Catalog,
    RequestError,
    book_depth,
    exchange_of,
    plan_subscription,
    symbol_of,
)
from raven.api.streams import ClientStream, StreamRegistry
from raven.config import ServerConfig
from raven.core.state import MarketRecord
from raven.model import Status
from raven.types import StatusKind
from raven.v1 import market_data_pb2 as pb

log = logging.getLogger("raven.api")

SERVICE = "raven.v1.MarketDataService"

Context = grpc.aio.ServicerContext[bytes, bytes]
M = TypeVar("M", bound=Message)


class HistoryService(Protocol):
    """GetHistoricalData's implementation: writes its responses to `context`."""

    async def get_historical_data(
        self, request: pb.HistoricalDataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None: ...


class _End(Exception):
    """Ends a stream with a status (raised inside the handler's own task)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        self.code = code
        self.message = message


# Why the server ends a stream, by its status code (the metrics' reason label).
_END_REASONS = {
    grpc.StatusCode.RESOURCE_EXHAUSTED: "slow_consumer",
    grpc.StatusCode.DEADLINE_EXCEEDED: "timeout",
    grpc.StatusCode.INVALID_ARGUMENT: "bad_request",
}


class MarketDataService:
    def __init__(
        self,
        config: ServerConfig,
        registry: StreamRegistry,
        history: HistoryService | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.history = history
        self.closing = False
        # Streams the server ended or refused, by reason, for the metrics layer.
        self.ended = dict.fromkeys(_END_REASONS.values(), 0)
        self.refused = {"connection_limit": 0, "shutting_down": 0}

    @property
    def catalog(self) -> Catalog:
        return self.registry.catalog

    def handler(self) -> grpc.GenericRpcHandler:
        raw: dict[str, Any] = {"request_deserializer": None, "response_serializer": None}
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "StreamMarketData": grpc.stream_stream_rpc_method_handler(
                    self.stream_market_data, **raw
                ),
                "Subscribe": grpc.unary_unary_rpc_method_handler(self.subscribe, **raw),
                "Unsubscribe": grpc.unary_unary_rpc_method_handler(self.unsubscribe, **raw),
                "GetSnapshot": grpc.unary_unary_rpc_method_handler(self.get_snapshot, **raw),
                "GetHistoricalData": grpc.unary_stream_rpc_method_handler(
                    self.get_historical_data,
                    request_deserializer=None,
                    response_serializer=serialize_response,
                ),
            },
        )

    # --- StreamMarketData ---------------------------------------------------

    async def stream_market_data(self, requests: AsyncIterator[bytes], context: Context) -> None:
        if self.closing:
            self.refused["shutting_down"] += 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
        registry = self.registry
        if len(registry.streams) >= self.config.max_connections:
            self.refused["connection_limit"] += 1
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"connection limit reached ({self.config.max_connections} streams); "
                "try again later or raise [server] max_connections",
            )
        stream = registry.open(context.peer())
        log.info("stream %s opened by %s", stream.id, stream.peer)
        started = pb.StreamStarted(
            stream_id=stream.id,
            server_version=__version__,
            heartbeat_interval_ms=int(self.config.heartbeat_interval_s * 1000),
        )
        stream.send_control(pb.StreamResponse(started=started))
        reader = asyncio.create_task(self._read(requests, stream), name=f"read {stream.id}")
        sender = asyncio.create_task(self._send(stream, context), name=f"send {stream.id}")
        failed = asyncio.create_task(stream.failed.wait(), name=f"failed {stream.id}")
        ending: _End | None = None
        try:
            await self._supervise(stream, reader, sender, failed)
        except _End as end:
            ending = end
            self.ended[_END_REASONS[end.code]] += 1
        finally:
            for task in (reader, sender, failed):
                task.cancel()
            for task in (reader, sender, failed):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            registry.close(stream)
        log.info("stream %s closed%s", stream.id, f": {ending.message}" if ending else "")
        if ending is not None:
            await context.abort(ending.code, ending.message)

    async def _supervise(
        self,
        stream: ClientStream,
        reader: asyncio.Task[str],
        sender: asyncio.Task[None],
        failed: asyncio.Task[Any],
    ) -> None:
        """Wait for the first reason to end the stream; raises _End for an error."""
        timeout = self.config.client_timeout_s
        while True:
            remaining = stream.last_heard + timeout - time.monotonic()
            if remaining <= 0:
                raise _End(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no message from the client for {timeout:g} s; "
                    "send a heartbeat at least every client_timeout_s",
                )
            await asyncio.wait(
                (reader, sender, failed), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if stream.sub.failure:
                raise _End(grpc.StatusCode.RESOURCE_EXHAUSTED, stream.sub.failure)
            if reader.done():
                problem = reader.result()
                if problem:
                    raise _End(grpc.StatusCode.INVALID_ARGUMENT, problem)
                return  # the client half-closed its side
            if sender.done():
                sender.result()  # re-raises what broke the sender
                return  # drained for shutdown

    async def _read(self, requests: AsyncIterator[bytes], stream: ClientStream) -> str:
        """Apply the client's requests; returns why the stream must end, or ''."""
        async for data in requests:
            stream.last_heard = time.monotonic()
            try:
                request = _parse(pb.StreamRequest, data)
                self._apply(request, stream)
            except RequestError as exc:
                return str(exc)
        return ""

    def _apply(self, request: pb.StreamRequest, stream: ClientStream) -> None:
        which = request.WhichOneof("request")
        if which == "heartbeat":
            return
        if which is None:
            raise RequestError("empty StreamRequest: set subscribe, unsubscribe or heartbeat")
        plan = plan_subscription(getattr(request, which), self.catalog, self.config)
        if which == "subscribe":
            self.registry.subscribe(stream, plan)
        else:
            self.registry.unsubscribe(stream, plan)

    async def _send(self, stream: ClientStream, context: Context) -> None:
        """Write frames as they are queued; a heartbeat when idle; end when drained."""
        cap = self.config.max_events_per_frame
        sub = stream.sub
        wakeup = sub.wakeup
        written = self.registry.latency_write.observe
        beat = _Heartbeat(self.config.heartbeat_interval_s, wakeup)
        loop = beat.loop
        last = -math.inf  # when this stream's last frame write started
        full = False  # the last frame was capped: the stream is behind, no pause
        try:
            while True:
                pause = self._pace(last) - loop.time()
                if pause > 0 and not full and not stream.draining:
                    await asyncio.sleep(pause)
                first = sub.next_sequence
                data = stream.next_frame(cap)
                if data is not None:
                    full = sub.next_sequence - first >= cap
                    beat.last = last = loop.time()
                    await context.write(data)
                    written(loop.time() - last)
                    continue
                if stream.draining:
                    return
                if beat.due:
                    beat.due = False
                    heartbeat = pb.StreamResponse(heartbeat=pb.Heartbeat(time_ns=time.time_ns()))
                    await context.write(heartbeat.SerializeToString())
                    continue
                await wakeup.wait()
        finally:
            beat.cancel()

    def _pace(self, last: float) -> float:
        """When a stream whose last write started at `last` may write again: the
        frame budget (`max_frames_per_s`) shared by the open streams."""
        budget = self.config.max_frames_per_s
        return last + len(self.registry.streams) / budget if budget else last

    async def shutdown(self, grace: float, detail: str = "server shutting down") -> None:
        """Refuse new streams, tell open ones, let them drain for up to `grace` s."""
        self.closing = True
        self.registry.shutdown(detail)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self.registry.empty.wait()

    # --- unary --------------------------------------------------------------

    async def subscribe(self, data: bytes, context: Context) -> bytes:
        async def run() -> bytes:
            request = _parse(pb.SubscribeRequest, data)
            stream = await self._stream(request.stream_id, context)
            plan = plan_subscription(request.subscription, self.catalog, self.config)
            ack = self.registry.subscribe(stream, plan)
            return pb.SubscribeResponse(ack=ack).SerializeToString()

        return await _unary(run, context)

    async def unsubscribe(self, data: bytes, context: Context) -> bytes:
        async def run() -> bytes:
            request = _parse(pb.UnsubscribeRequest, data)
            stream = await self._stream(request.stream_id, context)
            plan = plan_subscription(request.subscription, self.catalog, self.config)
            ack = self.registry.unsubscribe(stream, plan)
            return pb.UnsubscribeResponse(ack=ack).SerializeToString()

        return await _unary(run, context)

    async def _stream(self, stream_id: str, context: Context) -> ClientStream:
        stream = self.registry.streams.get(stream_id)
        if stream is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"no open stream with id {stream_id!r}; use the stream_id from the "
                "StreamStarted message of an open StreamMarketData call",
            )
        return stream

    async def get_snapshot(self, data: bytes, context: Context) -> bytes:
        async def run() -> bytes:
            request = _parse(pb.GetSnapshotRequest, data)
            exchange = exchange_of(request.exchange, self.catalog)
            symbol = symbol_of(request.symbol, self.catalog, exchange)
            depth = book_depth(request.book_depth, self.config)
            record = self.registry.state.get(exchange, symbol)
            chunks = _snapshot_chunks(record, depth) if record is not None else []
            return b"".join(_as_snapshot_event(c) for c in chunks)

        return await _unary(run, context)

    async def get_historical_data(self, data: bytes, context: Context) -> None:
        if self.history is None:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                "GetHistoricalData needs a store: set [database] backend in the server's config",
            )
        try:
            request = _parse(pb.HistoricalDataRequest, data)
        except RequestError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        await self.history.get_historical_data(request, context)


class _Heartbeat:
    """Marks a heartbeat due, and wakes the sender, once a stream has written
    nothing for `interval` s. One timer per interval, re-armed from its own
    callback to `interval` after the last write, instead of a timeout around
    every idle wait (one per frame)."""

    def __init__(self, interval: float, wakeup: asyncio.Event) -> None:
        self.interval = interval
        self.wakeup = wakeup
        self.due = False
        self.loop = asyncio.get_running_loop()
        self.last = self.loop.time()  # of the last write (the sender sets it)
        self.timer = self.loop.call_at(self.last + interval, self._fire)

    def _fire(self) -> None:
        now = self.loop.time()
        if now - self.last >= self.interval:
            self.due = True
            self.wakeup.set()
            self.last = now  # the next one an interval after this one
        self.timer = self.loop.call_at(self.last + self.interval, self._fire)

    def cancel(self) -> None:
        self.timer.cancel()


def _snapshot_chunks(record: MarketRecord, depth: int) -> list[bytes]:
    """The current state of one symbol as event chunks: book, quote, trade,
    candles, funding, last liquidation (and a BOOK_STALE status)."""
    chunks: list[bytes] = []
    if record.book.update_id:
        chunks.append(codec.encode(record.book_snapshot(depth)))
        if not record.book_live:
            now = time.time_ns()
            stale = "book stale; resync pending"
            status = Status(record.exchange, record.symbol, StatusKind.BOOK_STALE, stale, now, now)
            chunks.append(codec.encode(status))
    if record.quote is not None:
        chunks.append(record.quote[1])
    if record.trade is not None:
        chunks.append(record.trade[1])
    chunks += [chunk for _, chunk in record.candle_state()]
    if record.funding is not None:
        chunks.append(record.funding[1])
    if record.liquidation is not None:
        chunks.append(record.liquidation[1])
    return chunks


def _as_snapshot_event(chunk: bytes) -> bytes:
    """A StreamResponse `events` chunk (field 2) re-tagged as GetSnapshotResponse
    `events` (field 1): same length-delimited body, different tag byte."""
    return b"\x0a" + chunk[1:]


def _parse(message_type: type[M], data: bytes) -> M:
    try:
        return message_type.FromString(data)
    except DecodeError as exc:
        raise RequestError(f"malformed {message_type.__name__}: {exc}") from None


async def _unary(run: Callable[[], Awaitable[bytes]], context: Context) -> bytes:
    try:
        return await run()
    except RequestError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        raise  # abort raises; this keeps type checkers sure we never fall through
