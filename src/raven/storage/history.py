"""Reading history back: merged time-ordered streams, cursors, built candles, book at T.

`HistoryReader` turns a validated `HistoryPlan` into batches of events:

- One source per stored table the plan needs (BOOK = book_snapshot +
  book_delta), each paged from the store in ts order, plus one source per
  (symbol, interval) of candles built from trades when that interval isn't
  stored. A k-way merge interleaves them by key.
- The key of an event is `(ts, source)`: `ts` is the unique storage time of a
  stored record (source 0); a built candle takes the ts of its last trade and
  a source number >= 1 fixed by the request, so keys are unique and a cursor
  (the last key sent) resumes exactly after it. Internally a key is the int
  `ts << 32 | source`, which compares faster than a tuple.
- Sources produce pages, and the merge works page by page: a heap step per
  event in plain Python, an await only when a source's page runs out.
- GetHistoricalData reads the same sources already encoded (`encoded_batches`:
  each event as the bytes of its `events` entry, from `Store.read_encoded`
  when the store has it, else encoded per event), merged and batched a run
  at a time (`raven.storage.runs`), with the same keys, order, limit and
  cursors.
- A cursor is opaque text: a version, the key and a fingerprint of the
  request it belongs to, so it can't be replayed against another query.

Memory stays bounded: each source holds one page (and a builder one bar).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec

from raven.model import BookDelta, BookSnapshot, Event, Trade
from raven.storage.base import (
    KIND_TABLES,
    BookCheckpoint,
    EncodedReads,
    ReadQuery,
    Store,
    Table,
)
from raven.storage.candles import CandleBuilder
from raven.storage.encode import encode_event
from raven.storage.replay import BookReplayer
from raven.storage.runs import Run, batched_runs, merge_runs
from raven.types import Kind

Key = tuple[int, int]  # (ts, source)
Keyed = tuple[int, Event]  # (ts << SOURCE_BITS | source, event)
P = TypeVar("P")  # what a merged source carries per key: an Event or its encoding
Reader = Callable[[ReadQuery], Awaitable[Any]]  # Store.read, or read_encoded
SOURCE_BITS = 32
SOURCE_MASK = (1 << SOURCE_BITS) - 1
CURSOR_VERSION = 1
PAGE_SIZE = 5000  # records per store read
# Encoded reads of tables without book levels take this many times more
# records per read: a DuckDB query costs ~1 ms before its first row, and
# these rows are ~100 bytes, so a page stays a few MB.
NARROW_PAGES = 4
_WIDE = frozenset({Table.BOOK_SNAPSHOT, Table.BOOK_DELTA, Table.BOOK_CHECKPOINT})
FIRST_WINDOW_NS = 60 * 1_000_000_000  # time span of the first read of a source
MIN_WINDOW_NS = 1_000_000
_cursor_decoder = msgspec.msgpack.Decoder(tuple[int, int, int, int])


class CursorError(ValueError):
    """A cursor that is malformed or belongs to another request."""


class BookNotFound(LookupError):
    """No stored book at or before the requested time."""


class HistoryPlan(msgspec.Struct, frozen=True):
    """A validated history request (see raven.api.history.plan_history)."""

    exchange: str
    symbols: tuple[str, ...]
    kinds: tuple[Kind, ...]
    start: int  # ts >= start
    end: int  # ts < end
    limit: int  # events in this call (the book at T not counted)
    fingerprint: int  # of the request, bound into cursors
    intervals: tuple[str, ...] = ()  # candles: these intervals (empty: every stored one)
    after: Key | None = None  # resume after this key
    book_at: int = 0  # also return the book as of this ts (0: no)
    book_depth: int = 0  # levels per side of that book (0: all)


def fingerprint(*parts: object) -> int:
    return zlib.crc32(msgspec.msgpack.encode(parts))


def encode_cursor(key: Key, fp: int) -> str:
    raw = msgspec.msgpack.encode((CURSOR_VERSION, key[0], key[1], fp))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: str, fp: int) -> Key:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        version, ts, source, cursor_fp = _cursor_decoder.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise CursorError(
            "bad cursor: not a cursor from this server; pass next_cursor exactly as received"
        ) from None
    if version != CURSOR_VERSION:
        raise CursorError(f"bad cursor: version {version} is not supported; start over")
    if cursor_fp != fp:
        raise CursorError(
            "bad cursor: it belongs to a different request; resend the same exchange, "
            "symbols, kinds, times and intervals with it"
        )
    return ts, source


def _key(key: Key) -> int:
    return key[0] << SOURCE_BITS | key[1]


def _unkey(key: int) -> Key:
    return key >> SOURCE_BITS, key & SOURCE_MASK


async def _next_page(source: AsyncIterator[list[tuple[int, P]]]) -> list[tuple[int, P]] | None:
    """The source's next non-empty page; None at its end."""
    async for page in source:
        if page:
            return page
    return None


async def _merge(sources: Sequence[AsyncIterator[list[Keyed]]]) -> AsyncIterator[list[Keyed]]:
    """K-way merge of sources whose pages are each in key order; yields chunks in key order."""
    pages: list[list[Keyed]] = [[] for _ in sources]
    pos = [0] * len(sources)
    heap: list[tuple[int, int]] = []
    for i, source in enumerate(sources):
        page = await _next_page(source)
        if page is not None:
            pages[i] = page
            heap.append((page[0][0], i))
    heapq.heapify(heap)
    out: list[Keyed] = []
    while heap:
        if len(heap) == 1:  # one source left: pass its pages through
            i = heap[0][1]
            out.extend(pages[i][pos[i] :])
            yield out
            async for page in sources[i]:
                yield page
            return
        i = heap[0][1]
        page, p = pages[i], pos[i]
        out.append(page[p])
        p += 1
        if p < len(page):
            pos[i] = p
            heapq.heapreplace(heap, (page[p][0], i))
            continue
        yield out
        out = []
        following = await _next_page(sources[i])
        if following is None:
            heapq.heappop(heap)
        else:
            pages[i], pos[i] = following, 0
            heapq.heapreplace(heap, (following[0][0], i))
    if out:
        yield out


async def _batched(
    stream: AsyncIterator[list[tuple[int, P]]], plan: HistoryPlan, batch_size: int
) -> AsyncIterator[tuple[list[P], str]]:
    """Batches of at most `batch_size` items and the cursor after each ("" at the end).

    A batch goes out once an item after it is known, so its cursor is empty
    exactly when nothing follows.
    """
    buf: list[tuple[int, P]] = []
    count = 0
    try:
        async for chunk in stream:
            buf += chunk
            while len(buf) > (take := min(batch_size, plan.limit - count)):
                if take == 0:
                    return  # the limit is reached and more follow: the last cursor says so
                batch, buf = buf[:take], buf[take:]
                count += take
                yield (
                    [e for _, e in batch],
                    encode_cursor(_unkey(batch[-1][0]), plan.fingerprint),
                )
        if buf:
            yield [e for _, e in buf], ""
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


def _ignore_result(task: asyncio.Future[Any]) -> None:
    """A read ahead cancelled when its reader closed: its outcome is nobody's concern."""
    if not task.cancelled():
        task.exception()


class HistoryReader:
    def __init__(self, store: Store, page_size: int = PAGE_SIZE) -> None:
        self.store = store
        self.page_size = page_size

    async def _pages(
        self,
        table: Table,
        plan: HistoryPlan,
        symbols: tuple[str, ...],
        start: int,
        end: int,
        intervals: tuple[str, ...] = (),
        read: Reader | None = None,
        size: int = 0,
    ) -> AsyncIterator[Any]:
        """Records of one table in ts order, a store page at a time.

        Each read covers a time window sized to hold about two pages (from the
        density of the last full page, growing 4x over empty stretches), so a
        store scans about what it returns instead of the whole remaining range
        on every page. The next page is read (on the store's threads) while
        the caller works on this one: one page ahead per source, no more.
        `size`: records per read (0: `page_size`). `read` may return records
        or a `(ts list, entries)` pair (`read_encoded`).
        """
        read = read or self.store.read
        size = size or self.page_size
        window = FIRST_WINDOW_NS
        if start >= end:
            return
        stop = min(end, start + window)
        query = ReadQuery(table, plan.exchange, symbols, start, stop, size, intervals)
        pending: asyncio.Task[Any] | None = asyncio.ensure_future(read(query))
        try:
            while pending is not None:
                page: Any = await pending
                pending = None
                encoded = isinstance(page, tuple)  # (ts list, entries), or records
                times: list[Any] = page[0] if encoded else page
                if len(times) < size:
                    start, window = stop, window * 4
                else:
                    following = int(times[-1] if encoded else times[-1][0]) + 1
                    window = max(MIN_WINDOW_NS, 2 * (following - start))
                    start = following
                if start < end:  # read the next page while this one is used
                    stop = min(end, start + window)
                    query = ReadQuery(table, plan.exchange, symbols, start, stop, size, intervals)
                    pending = asyncio.ensure_future(read(query))
                if times:
                    yield page
        finally:
            if pending is not None:  # closed early: the read ahead isn't wanted
                pending.add_done_callback(_ignore_result)
                pending.cancel()

    async def _stored(
        self, table: Table, plan: HistoryPlan, symbols: tuple[str, ...], intervals: tuple[str, ...]
    ) -> AsyncIterator[list[Keyed]]:
        start = plan.start if plan.after is None else max(plan.start, plan.after[0] + 1)
        async for page in self._pages(table, plan, symbols, start, plan.end, intervals):
            yield [(ts << SOURCE_BITS, event) for ts, event in page]

    async def _stored_encoded(
        self, table: Table, plan: HistoryPlan, symbols: tuple[str, ...], intervals: tuple[str, ...]
    ) -> AsyncIterator[Run]:
        start = plan.start if plan.after is None else max(plan.start, plan.after[0] + 1)
        store = self.store
        if isinstance(store, EncodedReads):
            read = store.read_encoded
            size = self.page_size * (1 if table in _WIDE else NARROW_PAGES)
            pages = self._pages(table, plan, symbols, start, plan.end, intervals, read, size)
            async for ts, entries in pages:
                yield [t << SOURCE_BITS for t in ts], entries
            return
        async for page in self._pages(table, plan, symbols, start, plan.end, intervals):
            yield [ts << SOURCE_BITS for ts, _ in page], [encode_event(e) for _, e in page]

    async def _built_encoded(
        self, plan: HistoryPlan, symbol: str, interval: str, source: int
    ) -> AsyncIterator[Run]:
        async for page in self._built(plan, symbol, interval, source):
            yield [key for key, _ in page], [encode_event(candle) for _, candle in page]

    async def _built(
        self, plan: HistoryPlan, symbol: str, interval: str, source: int
    ) -> AsyncIterator[list[Keyed]]:
        # Bars need all their trades, so this reads from the range start even
        # when resuming; candles up to the cursor are dropped, not sent again.
        after = _key(plan.after) if plan.after else -1
        builder = CandleBuilder(interval, plan.end)
        async for page in self._pages(Table.TRADE, plan, (symbol,), plan.start, plan.end):
            out: list[Keyed] = []
            for ts, trade in page:
                assert isinstance(trade, Trade)
                done = builder.add(ts, trade)
                if done is not None and (key := done[0] << SOURCE_BITS | source) > after:
                    out.append((key, done[1]))
            if out:
                yield out
        last = builder.finish()
        if last is not None and (key := last[0] << SOURCE_BITS | source) > after:
            yield [(key, last[1])]

    async def _sources(self, plan: HistoryPlan, encoded: bool) -> list[AsyncIterator[Any]]:
        stored = self._stored_encoded if encoded else self._stored
        built = self._built_encoded if encoded else self._built
        sources: list[AsyncIterator[Any]] = []
        for kind in plan.kinds:
            if kind is Kind.STATUS:  # feed-wide statuses (no symbol) concern every symbol
                sources.append(stored(Table.STATUS, plan, (*plan.symbols, ""), ()))
                continue
            if kind is not Kind.CANDLE:
                sources += [stored(t, plan, plan.symbols, ()) for t in KIND_TABLES[kind]]
                continue
            if not plan.intervals:
                sources.append(stored(Table.CANDLE, plan, plan.symbols, ()))
                continue
            source = 0
            for symbol in plan.symbols:
                have_stored = await self.store.candle_intervals(plan.exchange, symbol)
                have = tuple(i for i in plan.intervals if i in have_stored)
                if have:
                    sources.append(stored(Table.CANDLE, plan, (symbol,), have))
                for interval in plan.intervals:
                    source += 1  # numbered over every (symbol, interval): stable per request
                    if interval not in have_stored:
                        sources.append(built(plan, symbol, interval, source))
        return sources

    async def events(self, plan: HistoryPlan) -> AsyncIterator[list[Keyed]]:
        """Every event of the plan after its cursor, in key order, in chunks (no limit)."""
        sources = await self._sources(plan, encoded=False)
        try:
            async for chunk in _merge(sources):
                yield chunk
        finally:
            for source in sources:
                await source.aclose()  # type: ignore[attr-defined]

    async def encoded_events(self, plan: HistoryPlan) -> AsyncIterator[Run]:
        """`events`, each as the bytes of its HistoricalDataResponse `events` entry."""
        sources = await self._sources(plan, encoded=True)
        try:
            async for chunk in merge_runs(sources):
                yield chunk
        finally:
            for source in sources:
                await source.aclose()  # type: ignore[attr-defined]

    def batches(self, plan: HistoryPlan, batch_size: int) -> AsyncIterator[tuple[list[Event], str]]:
        """Batches of at most `batch_size` events and the cursor after each ("" at the end).

        A batch goes out once an event after it is known, so its cursor is
        empty exactly when nothing follows.
        """
        return _batched(self.events(plan), plan, batch_size)

    def encoded_batches(
        self, plan: HistoryPlan, batch_size: int
    ) -> AsyncIterator[tuple[list[bytes], str]]:
        """`batches` with each event as its `events` entry (see `raven.storage.encode`)."""
        fp = plan.fingerprint
        return batched_runs(
            self.encoded_events(plan), plan.limit, batch_size,
            lambda key: encode_cursor(_unkey(key), fp),
        )  # fmt: skip

    async def book_at(self, exchange: str, symbol: str, at: int, depth: int) -> BookSnapshot:
        """The book of `symbol` as it stood at `at`: newest full book <= at, plus deltas."""
        base = None
        for table in (Table.BOOK_SNAPSHOT, Table.BOOK_CHECKPOINT):
            found = await self.store.latest(table, exchange, symbol, at)
            if found is not None and (base is None or found[0] > base[0]):
                base = found
        if base is None:
            raise BookNotFound(
                f"no order book of {exchange} {symbol} is stored at or before {at} ns; "
                "books are stored from the first snapshot after Raven subscribed"
            )
        replayer = BookReplayer(exchange, symbol)
        item = base[1]
        assert isinstance(item, BookSnapshot | BookCheckpoint)
        replayer.load(item)
        plan = HistoryPlan(exchange, (symbol,), (Kind.BOOK,), base[0] + 1, at + 1, 0, 0)
        async for page in self._pages(Table.BOOK_DELTA, plan, (symbol,), plan.start, plan.end):
            for _, delta in page:
                assert isinstance(delta, BookDelta)
                replayer.apply(delta)
        return replayer.snapshot(depth)
