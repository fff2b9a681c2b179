"""A real grpc.aio server on loopback serving GetHistoricalData from a HistoryService.

Until the server wires HistoryService into MarketDataService, tests register a
generic handler for just that method, under the real service name, and call it
through the generated stub, as any client would.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc

from raven.api.history import HistoryService
from raven.api.service import SERVICE
from raven.v1 import market_data_pb2 as pb
from raven.v1 import market_data_pb2_grpc as pb_grpc

Stub = pb_grpc.MarketDataServiceAsyncStub


@contextlib.asynccontextmanager
async def serve_history(
    service: HistoryService,
) -> AsyncIterator[pb_grpc.MarketDataServiceAsyncStub]:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "GetHistoricalData": grpc.unary_stream_rpc_method_handler(
                service.get_historical_data,
                request_deserializer=pb.HistoricalDataRequest.FromString,
                response_serializer=pb.HistoricalDataResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield pb_grpc.MarketDataServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)


async def fetch(stub: Stub, request: pb.HistoricalDataRequest) -> list[pb.HistoricalDataResponse]:
    return [response async for response in stub.GetHistoricalData(request)]


def events_of(responses: list[pb.HistoricalDataResponse]) -> list[pb.MarketEvent]:
    return [e for r in responses for e in r.events]
