"""`raven.v1.MarketDataService`: the four RPCs plus GetSnapshot.

Stream responses are written as pre-built bytes (see `raven.codec`), so the
StreamMarketData handler is registered with an identity serializer; the
other methods use the generated message classes as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from raven import __version__
from raven.api.requests import Plan, RequestError, plan_subscription
from raven.api.streams import ClientStream, StreamRegistry
from raven.config import ServerConfig
from raven.types import Kind
from raven.v1 import market_data_pb2 as pb

log = logging.getLogger("raven.api")

SERVICE = "raven.v1.MarketDataService"

StreamContext = grpc.aio.ServicerContext[pb.StreamRequest, bytes]


class MarketDataService:
    def __init__(self, config: ServerConfig, registry: StreamRegistry) -> None:
        self.config = config
        self.registry = registry

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "StreamMarketData": grpc.stream_stream_rpc_method_handler(
                    self.stream_market_data,
                    request_deserializer=pb.StreamRequest.FromString,
                    response_serializer=_identity,
                ),
                "Subscribe": _unary(self.subscribe, pb.SubscribeRequest),
                "Unsubscribe": _unary(self.unsubscribe, pb.UnsubscribeRequest),
                "GetSnapshot": _unary(self.get_snapshot, pb.GetSnapshotRequest),
                "GetHistoricalData": grpc.unary_stream_rpc_method_handler(
                    self.get_historical_data,
                    request_deserializer=pb.HistoricalDataRequest.FromString,
                    response_serializer=pb.HistoricalDataResponse.SerializeToString,
                ),
            },
        )

    # --- StreamMarketData ---------------------------------------------------

    async def stream_market_data(
        self, requests: AsyncIterator[pb.StreamRequest], context: StreamContext
    ) -> None:
        registry = self.registry
        if len(registry.streams) >= self.config.max_connections:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"connection limit reached ({self.config.max_connections} streams); "
                "try again later or raise [server] max_connections",
            )
        stream = registry.open(context.peer(), self.config.queue_size)
        log.info("stream %s opened by %s", stream.id, stream.peer)
        interval_ms = int(self.config.heartbeat_interval_s * 1000)
        started = pb.StreamStarted(
            stream_id=stream.id, server_version=__version__, heartbeat_interval_ms=interval_ms
        )
        stream.send_control(pb.StreamResponse(started=started))
        reader = asyncio.create_task(self._read(requests, stream, context), name="stream-reader")
        try:
            await self._send(stream, context, reader)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            registry.close(stream)
            log.info("stream %s closed", stream.id)

    async def _read(
        self,
        requests: AsyncIterator[pb.StreamRequest],
        stream: ClientStream,
        context: StreamContext,
    ) -> str:
        """Apply the client's requests; returns why the stream should end, or ''."""
        async for request in requests:
            stream.last_heard = time.monotonic()
            which = request.WhichOneof("request")
            if which not in ("subscribe", "unsubscribe"):
                continue
            try:
                plan = plan_subscription(
                    getattr(request, which),
                    self.registry.catalog,
                    self.config.default_book_depth,
                )
            except RequestError as exc:
                return str(exc)
            if which == "subscribe":
                ack = self.registry.subscribe(stream, plan)
            else:
                ack = self.registry.unsubscribe(stream, plan)
            stream.send_control(pb.StreamResponse(ack=ack))
        return ""

    async def _send(
        self, stream: ClientStream, context: StreamContext, reader: asyncio.Task[str]
    ) -> None:
        sub = stream.sub
        cap = self.config.max_events_per_frame
        heartbeat = self.config.heartbeat_interval_s
        while True:
            if reader.done():
                problem = reader.result()
                if problem:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
                return  # the client half-closed
            if sub.failure:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, sub.failure)
            data = stream.next_frame(cap)
            if data is not None:
                await context.write(data)
                continue
            await self._idle(stream, context, reader, heartbeat)

    async def _idle(
        self,
        stream: ClientStream,
        context: StreamContext,
        reader: asyncio.Task[str],
        heartbeat: float,
    ) -> None:
        """Wait for work, the reader ending, or the heartbeat interval."""
        waiter = asyncio.ensure_future(stream.sub.wakeup.wait())
        try:
            done, _ = await asyncio.wait(
                (waiter, reader), timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
        if done:
            return
        silent = time.monotonic() - stream.last_heard
        if silent > self.config.client_timeout_s:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no message from the client for {silent:.0f} s "
                f"(timeout {self.config.client_timeout_s:g} s); send heartbeats",
            )
        beat = pb.StreamResponse(heartbeat=pb.Heartbeat(time_ns=time.time_ns()))
        await context.write(beat.SerializeToString())

    # --- unary --------------------------------------------------------------

    async def subscribe(
        self, request: pb.SubscribeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.SubscribeResponse:
        stream, plan = await self._stream_and_plan(request, context)
        return pb.SubscribeResponse(ack=self.registry.subscribe(stream, plan))

    async def unsubscribe(
        self, request: pb.UnsubscribeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.UnsubscribeResponse:
        stream, plan = await self._stream_and_plan(request, context)
        return pb.UnsubscribeResponse(ack=self.registry.unsubscribe(stream, plan))

    async def _stream_and_plan(
        self,
        request: pb.SubscribeRequest | pb.UnsubscribeRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> tuple[ClientStream, Plan]:
        stream = self.registry.streams.get(request.stream_id)
        if stream is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"no open stream with id {request.stream_id!r}; "
                "use the id from the stream's first response",
            )
        try:
            plan = plan_subscription(
                request.subscription, self.registry.catalog, self.config.default_book_depth
            )
        except RequestError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return stream, plan

    async def get_snapshot(
        self, request: pb.GetSnapshotRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetSnapshotResponse:
        catalog = self.registry.catalog
        exchange = request.exchange or next(iter(catalog), "")
        symbol = request.symbol.strip().upper()
        if symbol not in catalog.get(exchange, frozenset()):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unknown symbol {request.symbol!r} on exchange {exchange!r}",
            )
        record = self.registry.state.get(exchange, symbol)
        response = pb.GetSnapshotResponse()
        if record is not None:
            for kind in Kind:
                for chunk in record.chunks(kind):
                    response.MergeFromString(_as_snapshot_events(chunk))
        return response

    async def get_historical_data(
        self, request: pb.HistoricalDataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "GetHistoricalData needs a store; not implemented yet"
        )


def _as_snapshot_events(chunk: bytes) -> bytes:
    """A StreamResponse `events` chunk (field 2) re-tagged as GetSnapshotResponse
    `events` (field 1): same length-delimited body, different tag byte."""
    return b"\x0a" + chunk[1:]


def _identity(data: bytes) -> bytes:
    return data


def _unary(method: Any, request_type: Any) -> grpc.RpcMethodHandler[Any, Any]:
    return grpc.unary_unary_rpc_method_handler(
        method,
        request_deserializer=request_type.FromString,
        response_serializer=lambda m: m.SerializeToString(),
    )
