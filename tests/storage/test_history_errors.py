"""Bad history requests get a gRPC status with a message a person can act on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from raven.api.history import HistoryRequestError, HistoryService, plan_history
from raven.config import HistoryConfig
from raven.model import BookDelta
from raven.storage.history import HistoryReader, encode_cursor
from raven.storage.memory import MemoryStore
from raven.types import S_NS, Kind
from raven.v1 import market_data_pb2 as pb
from raven.v1 import market_data_pb2_grpc as pb_grpc
from tests.storage.events import BASE_NS, EX, Market
from tests.storage.grpc_history import fetch, serve_history

CATALOG = {EX: frozenset({"BTCUSDT", "ETHUSDT"})}
CONFIG = HistoryConfig(max_range_s=3600.0, max_events=1000)
NOW = BASE_NS + 10 * S_NS


def request(**fields: object) -> pb.HistoricalDataRequest:
    values: dict[str, object] = {
        "symbols": ["BTCUSDT"], "kinds": [Kind.TRADE], "start_time_ns": BASE_NS,
        "end_time_ns": BASE_NS + S_NS,
    }  # fmt: skip
    values.update(fields)
    return pb.HistoricalDataRequest(**values)  # type: ignore[arg-type]


BAD = [
    ({"start_time_ns": BASE_NS + 2 * S_NS}, r"start_time_ns .* is not before end_time_ns"),
    ({"start_time_ns": 0}, r"start_time_ns is required"),
    ({"end_time_ns": BASE_NS + 7200 * S_NS}, r"larger than the maximum 3,600 s"),
    ({"symbols": ["DOGEUSDT"]}, r"unknown symbol 'DOGEUSDT'; configured: BTCUSDT, ETHUSDT"),
    ({"symbols": []}, r"no symbols"),
    ({"exchange": "kraken"}, r"unknown exchange 'kraken'"),
    ({"kinds": [42]}, r"unknown data kind 42; expected one of: DATA_KIND_TRADE"),
    ({"kinds": []}, r"no kinds"),
    ({"kinds": [Kind.CANDLE], "candle_intervals": ["7x"]}, r"bad candle interval '7x'"),
    ({"kinds": [Kind.CANDLE], "candle_intervals": ["2d"]}, r"from 1s to 1d"),
    ({"candle_intervals": ["1m"]}, r"DATA_KIND_CANDLE isn't requested"),
    ({"cursor": "not a cursor!"}, r"bad cursor: not a cursor from this server"),
    ({"book_depth": 100_000}, r"book_depth 100000 is too large"),
]


@pytest.mark.parametrize(("fields", "message"), BAD)
def test_bad_requests_are_named(fields: dict[str, object], message: str) -> None:
    with pytest.raises(HistoryRequestError, match=message):
        plan_history(request(**fields), CATALOG, CONFIG, NOW)


def test_a_cursor_only_resumes_its_own_request() -> None:
    plan = plan_history(request(), CATALOG, CONFIG, NOW)
    cursor = encode_cursor((BASE_NS + 5, 0), plan.fingerprint)
    assert plan_history(request(cursor=cursor, limit=10), CATALOG, CONFIG, NOW).after == (
        BASE_NS + 5, 0,
    )  # fmt: skip
    with pytest.raises(HistoryRequestError, match="belongs to a different request"):
        plan_history(request(cursor=cursor, symbols=["ETHUSDT"]), CATALOG, CONFIG, NOW)


def test_defaults_end_now_limit_capped_star_symbols() -> None:
    plan = plan_history(
        request(end_time_ns=0, limit=10**6, symbols=["*"], exchange=""), CATALOG, CONFIG, NOW
    )
    assert (plan.end, plan.limit, plan.symbols, plan.exchange) == (
        NOW, 1000, ("BTCUSDT", "ETHUSDT"), EX,
    )  # fmt: skip


@pytest.fixture
async def served() -> AsyncIterator[tuple[pb_grpc.MarketDataServiceAsyncStub, MemoryStore]]:
    store = MemoryStore()
    service = HistoryService(HistoryReader(store), CATALOG, CONFIG, clock=lambda: NOW)
    async with serve_history(service) as stub:
        yield stub, store


async def test_bad_request_over_grpc_is_invalid_argument(
    served: tuple[pb_grpc.MarketDataServiceAsyncStub, MemoryStore],
) -> None:
    stub, _ = served
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fetch(stub, request(symbols=["NOPE"]))
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown symbol 'NOPE'" in (info.value.details() or "")


async def test_a_store_that_is_down_is_unavailable(
    served: tuple[pb_grpc.MarketDataServiceAsyncStub, MemoryStore],
) -> None:
    stub, store = served
    store.down = True
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fetch(stub, request())
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "try again later" in (info.value.details() or "")


async def test_no_book_before_t_is_not_found_and_a_gap_is_data_loss(
    served: tuple[pb_grpc.MarketDataServiceAsyncStub, MemoryStore],
) -> None:
    stub, store = served
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fetch(stub, request(kinds=[], book_at_ns=BASE_NS))
    assert info.value.code() is grpc.StatusCode.NOT_FOUND
    events = Market().events(40)
    lost = [e for e in events if isinstance(e, BookDelta) and e.symbol == "BTCUSDT"][1]
    kept = [e for e in events if e is not lost]
    await store.write([(e.receive_time, e) for e in kept])  # one stored delta went missing
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await fetch(stub, request(kinds=[], book_at_ns=events[-1].receive_time))
    assert info.value.code() is grpc.StatusCode.DATA_LOSS
    assert "stored book updates are missing" in (info.value.details() or "")
