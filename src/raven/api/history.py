"""GetHistoricalData: validate the request, stream stored events back in the live schema.

`plan_history` (no I/O) turns a `HistoricalDataRequest` into a
`HistoryPlan` or raises `HistoryRequestError` with a message a person can
act on. `HistoryService.get_historical_data` is the gRPC handler; it writes
`HistoricalDataResponse` batches of `[history] batch_size` events, each with
the cursor that resumes after it, already serialized: register it with
`serialize_response` as the response serializer.

Errors: INVALID_ARGUMENT for a bad request (times, range, symbol, kind,
interval, depth, cursor); NOT_FOUND when no book is stored before `book_at`;
DATA_LOSS when stored book updates have a gap; UNAVAILABLE when the store
can't be read.

Times are storage times: Raven's receive time of each event, in ns (each
event still carries its exchange time). `end_time_ns = 0` means now.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import grpc

from raven.config import HistoryConfig
from raven.storage.base import StoreError
from raven.storage.candles import interval_ns
from raven.storage.encode import encode_event
from raven.storage.encode import response as encoded_response
from raven.storage.history import (
    BookNotFound,
    CursorError,
    HistoryPlan,
    HistoryReader,
    decode_cursor,
    encode_cursor,
    fingerprint,
)
from raven.storage.replay import BookGapError
from raven.types import S_NS, Kind
from raven.v1 import market_data_pb2 as pb

MAX_BOOK_DEPTH = 5000
_LAST_SOURCE = 2**31  # a cursor key after every event at a given ts


def serialize_response(response: bytes | pb.HistoricalDataResponse) -> bytes:
    """GetHistoricalData's response serializer: responses are written as bytes
    (built without a message object); a message is serialized as usual."""
    return response if isinstance(response, bytes) else response.SerializeToString()


class HistoryRequestError(ValueError):
    """A history request that can't be served; the message says why."""


def _iso(ns: int) -> str:
    seconds = ns // S_NS
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _symbols(request: pb.HistoricalDataRequest, known: frozenset[str] | None) -> tuple[str, ...]:
    if not request.symbols:
        raise HistoryRequestError("no symbols: name at least one symbol, or '*' for all")
    if "*" in request.symbols:
        if known is None:
            raise HistoryRequestError("'*' works against a server (--target); name the symbols")
        return tuple(sorted(known))
    out: list[str] = []
    for symbol in request.symbols:
        upper = symbol.strip().upper()
        if known is not None and upper not in known:
            raise HistoryRequestError(
                f"unknown symbol {symbol!r}; configured: {', '.join(sorted(known))}"
            )
        if upper not in out:
            out.append(upper)
    return tuple(out)


def _kinds(request: pb.HistoricalDataRequest) -> tuple[Kind, ...]:
    if not request.kinds and not request.book_at_ns:
        raise HistoryRequestError(
            "no kinds: name at least one data kind (e.g. DATA_KIND_TRADE), or set book_at_ns"
        )
    out: list[Kind] = []
    for value in request.kinds:
        try:
            kind = Kind(value)
        except ValueError:
            names = ", ".join(pb.DataKind.Name(pb.DataKind.ValueType(k)) for k in Kind)
            raise HistoryRequestError(
                f"unknown data kind {value}; expected one of: {names}"
            ) from None
        if kind not in out:
            out.append(kind)
    return tuple(out)


def _range(
    request: pb.HistoricalDataRequest, config: HistoryConfig, now_ns: int, needed: bool
) -> tuple[int, int]:
    start, end = request.start_time_ns, request.end_time_ns or now_ns
    if not needed:
        return start, end
    if start <= 0:
        raise HistoryRequestError("start_time_ns is required (ns since the Unix epoch, > 0)")
    if start >= end:
        raise HistoryRequestError(
            f"start_time_ns {start} ({_iso(start)}) is not before end_time_ns {end} ({_iso(end)})"
        )
    max_ns = int(config.max_range_s * S_NS)
    if end - start > max_ns:
        raise HistoryRequestError(
            f"time range of {(end - start) / S_NS:,.0f} s is larger than the maximum "
            f"{config.max_range_s:,.0f} s ([history] max_range_s); split the request"
        )
    return start, end


def _intervals(request: pb.HistoricalDataRequest, kinds: tuple[Kind, ...]) -> tuple[str, ...]:
    intervals = tuple(dict.fromkeys(i.strip() for i in request.candle_intervals))
    if intervals and Kind.CANDLE not in kinds:
        raise HistoryRequestError("candle_intervals given, but DATA_KIND_CANDLE isn't requested")
    for interval in intervals:
        try:
            interval_ns(interval)
        except ValueError as exc:
            raise HistoryRequestError(str(exc)) from None
    return intervals


def plan_history(
    request: pb.HistoricalDataRequest,
    catalog: Mapping[str, frozenset[str]] | None,
    config: HistoryConfig,
    now_ns: int,
    default_exchange: str = "",
) -> HistoryPlan:
    """Validate a request. `catalog` None accepts any exchange and symbol (offline reads)."""
    exchange = request.exchange or default_exchange or next(iter(catalog or {}), "")
    if catalog is not None and exchange not in catalog:
        known = ", ".join(sorted(catalog)) or "none"
        raise HistoryRequestError(f"unknown exchange {request.exchange!r}; configured: {known}")
    symbols = _symbols(request, None if catalog is None else catalog[exchange])
    kinds = _kinds(request)
    start, end = _range(request, config, now_ns, needed=bool(kinds))
    intervals = _intervals(request, kinds)
    if request.book_depth > MAX_BOOK_DEPTH:
        raise HistoryRequestError(
            f"book_depth {request.book_depth} is too large; the maximum is {MAX_BOOK_DEPTH} "
            "(0: every level)"
        )
    if request.book_at_ns < 0:
        raise HistoryRequestError("book_at_ns must be a time in ns since the Unix epoch")
    fp = fingerprint(
        exchange, symbols, [int(k) for k in kinds], request.start_time_ns,
        request.end_time_ns, intervals, request.book_at_ns,
    )  # fmt: skip
    after = None
    if request.cursor:
        try:
            after = decode_cursor(request.cursor, fp)
        except CursorError as exc:
            raise HistoryRequestError(str(exc)) from None
    limit = min(request.limit or config.max_events, config.max_events)
    return HistoryPlan(
        exchange, symbols, kinds, start, end, limit, fp, intervals, after,
        request.book_at_ns, request.book_depth,
    )  # fmt: skip


class HistoryService:
    """The GetHistoricalData handler; MarketDataService delegates to it."""

    def __init__(
        self,
        reader: HistoryReader,
        catalog: Mapping[str, frozenset[str]] | None,
        config: HistoryConfig,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.reader = reader
        self.catalog = catalog
        self.config = config
        self._clock = clock
        self.requests = 0  # counters for the metrics layer
        self.events_sent = 0
        self.rejected = 0

    def plan(self, request: pb.HistoricalDataRequest) -> HistoryPlan:
        return plan_history(request, self.catalog, self.config, self._clock())

    async def get_historical_data(
        self,
        request: pb.HistoricalDataRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        self.requests += 1
        try:
            plan = self.plan(request)
        except HistoryRequestError as exc:
            self.rejected += 1
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            async for response in self.encoded_responses(plan):
                await context.write(response)  # bytes: see serialize_response
        except StoreError as exc:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, f"history store unavailable: {exc}; try again later"
            )
        except BookNotFound as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except BookGapError as exc:
            await context.abort(grpc.StatusCode.DATA_LOSS, str(exc))

    async def responses(self, plan: HistoryPlan) -> AsyncGenerator[pb.HistoricalDataResponse, None]:
        """The response messages of a plan (also used by `raven history --db`).

        Parsed from `encoded_responses` by protobuf's C parser: a copy of the
        bytes, not a Python object per event."""
        parse = pb.HistoricalDataResponse.FromString
        responses = self.encoded_responses(plan)
        try:
            async for raw in responses:
                yield parse(raw)
        finally:
            await responses.aclose()

    async def encoded_responses(self, plan: HistoryPlan) -> AsyncGenerator[bytes, None]:
        """The serialized response messages of a plan: events encoded straight
        from the store's rows (`HistoryReader.encoded_batches`)."""
        if plan.book_at and plan.after is None:
            books = [
                encode_event(
                    await self.reader.book_at(plan.exchange, s, plan.book_at, plan.book_depth)
                )
                for s in plan.symbols
            ]
            # Resuming from here skips the books and starts the range.
            cursor = encode_cursor((plan.start - 1, _LAST_SOURCE), plan.fingerprint)
            yield encoded_response(books, cursor if plan.kinds else "")
        if not plan.kinds:
            return
        batches = self.reader.encoded_batches(plan, self.config.batch_size)
        try:
            async for entries, cursor in batches:
                self.events_sent += len(entries)
                yield encoded_response(entries, cursor)
        finally:
            await batches.aclose()  # type: ignore[attr-defined]
