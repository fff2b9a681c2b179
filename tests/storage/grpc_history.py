"""A real grpc.aio server on loopback serving GetHistoricalData from a HistoryService.

Until the server wires HistoryService into MarketDataService, tests register a
generic handler for just that method, under the real service name, and call it
through the generated stub, as any client would.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TypeAlias

import grpc

from raven.api.history import HistoryService, serialize_response
from raven.api.service import SERVICE
from raven.v1 import market_data_pb2 as pb
from raven.v1 import market_data_pb2_grpc as pb_grpc

Stub: TypeAlias = "pb_grpc.MarketDataServiceAsyncStub"  # exists in the .pyi only


@contextlib.asynccontextmanager
async def history_server(service: HistoryService) -> AsyncIterator[str]:
    """Serve GetHistoricalData on a free loopback port; yields "127.0.0.1:port"."""
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "GetHistoricalData": grpc.unary_stream_rpc_method_handler(
                service.get_historical_data,
                request_deserializer=pb.HistoricalDataRequest.FromString,
                response_serializer=serialize_response,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@contextlib.asynccontextmanager
async def serve_history(service: HistoryService) -> AsyncIterator[Stub]:
    """The same, with a client stub on a channel to it."""
    async with history_server(service) as target:
        channel = grpc.aio.insecure_channel(target)
        try:
            yield pb_grpc.MarketDataServiceStub(channel)
        finally:
            await channel.close()


async def fetch(stub: Stub, request: pb.HistoricalDataRequest) -> list[pb.HistoricalDataResponse]:
    return [response async for response in stub.GetHistoricalData(request)]


def events_of(responses: list[pb.HistoricalDataResponse]) -> list[pb.MarketEvent]:
    return [e for r in responses for e in r.events]
