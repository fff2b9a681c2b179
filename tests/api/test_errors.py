"""Every bad request gets the right status code and a message a person can act on."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from raven.types import Kind
from raven.v1 import market_data_pb2 as pb
from tests.api.conftest import EXCHANGE, Server, Stream, connect, open_stream, subscription

BAD_SUBSCRIPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"symbols": ["DOGEUSDT"]}, "unknown symbol 'DOGEUSDT' on fake; configured: BTCUSDT"),
    ({"symbols": []}, "no symbols: name at least one symbol, or '*' for all"),
    ({"kinds": []}, "no kinds: name at least one data kind"),
    ({"kinds": [42]}, "unknown data kind 42; expected one of: DATA_KIND_TRADE"),
    ({"exchange": "kraken"}, "unknown exchange 'kraken'; configured: fake"),
    ({"kinds": [Kind.BOOK], "book_depth": 5000}, "book_depth 5000 is too deep; ask for 1 to 1000"),
    ({"kinds": [Kind.CANDLE], "candle_intervals": ["7x"]}, "bad candle interval '7x'; available"),
    ({"kinds": [Kind.CANDLE], "candle_intervals": ["3m"]}, "available on fake: 1s, 1m, 5m, 1h"),
    ({"policy": 9}, "unknown overflow policy 9; expected one of: OVERFLOW_POLICY_CONFLATE"),
    ({"kinds": [Kind.BOOK], "book_mode": 7}, "unknown book_mode 7"),
    (
        {"kinds": [Kind.BOOK], "book_mode": pb.BOOK_MODE_SNAPSHOTS, "book_interval_ms": 1},
        "book_interval_ms 1 is out of range; use 10 to 60000",
    ),
    (
        {"kinds": [Kind.BOOK], "book_interval_ms": 100},
        "book_interval_ms applies to book_mode BOOK_MODE_SNAPSHOTS only",
    ),
]


def fields(overrides: dict[str, Any]) -> dict[str, Any]:
    base: dict[str, Any] = {"symbols": ["BTCUSDT"], "kinds": [Kind.TRADE]}
    return {**base, **overrides}


async def final_status(stream: Stream) -> grpc.aio.AioRpcError:
    """Read to the end of the stream, which must end with an error."""
    try:
        while await stream.call.read() is not grpc.aio.EOF:
            pass
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError(f"stream ended with {await stream.call.code()}, not an error")


@pytest.mark.parametrize(("overrides", "message"), BAD_SUBSCRIPTIONS)
async def test_bad_stream_subscription(
    server: Server, overrides: dict[str, Any], message: str
) -> None:
    async with connect(server.target) as stub, open_stream(stub) as stream:
        await stream.send(pb.StreamRequest(subscribe=subscription(**fields(overrides))))
        error = await final_status(stream)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert message in (error.details() or "")
    assert not server.app.registry.streams


@pytest.mark.parametrize(("overrides", "message"), BAD_SUBSCRIPTIONS[:4])
async def test_bad_unary_subscription(
    server: Server, overrides: dict[str, Any], message: str
) -> None:
    async with connect(server.target) as stub, open_stream(stub) as stream:
        request = pb.SubscribeRequest(
            stream_id=stream.stream_id, subscription=subscription(**fields(overrides))
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Subscribe(request)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert message in (info.value.details() or "")


async def test_empty_stream_request(server: Server) -> None:
    async with connect(server.target) as stub, open_stream(stub) as stream:
        await stream.send(pb.StreamRequest())
        error = await final_status(stream)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "empty StreamRequest: set subscribe, unsubscribe or heartbeat" in (error.details() or "")


async def test_malformed_bytes(server: Server) -> None:
    async with grpc.aio.insecure_channel(server.target) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/raven.v1.MarketDataService/GetSnapshot"
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(b"\xff\xff\xff")
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "malformed GetSnapshotRequest" in (info.value.details() or "")


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"symbol": "NOPE"}, "unknown symbol 'NOPE' on fake"),
        ({"symbol": ""}, "no symbol: name one, e.g. BTCUSDT"),
        ({"symbol": "BTCUSDT", "exchange": "x"}, "unknown exchange 'x'"),
        ({"symbol": "BTCUSDT", "book_depth": 100000}, "book_depth 100000 is too deep"),
    ],
)
async def test_bad_get_snapshot(
    server: Server, request_fields: dict[str, Any], message: str
) -> None:
    async with connect(server.target) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetSnapshot(pb.GetSnapshotRequest(**request_fields))
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert message in (info.value.details() or "")


async def test_history_without_a_store_is_unimplemented(server: Server) -> None:
    async with connect(server.target) as stub:
        call = stub.GetHistoricalData(pb.HistoricalDataRequest(exchange=EXCHANGE))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
    assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert "GetHistoricalData needs a store" in (info.value.details() or "")
