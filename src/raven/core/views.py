"""Book views: what clients of one (symbol, depth, mode) see of a canonical book.

Clients never get the full book's raw deltas. A `DeltaView` keeps the top N
levels that its clients have been sent; after each change of the canonical
book it computes the change of that top-N *once*, encodes it once, and
publishes it to every subscriber of that (symbol, depth). Deltas chain by
update id within the view (`prev_update_id` of each equals the `update_id`
of the one before, or of the snapshot the client started from), and skip
book changes outside the view. A level that leaves the top N (removed, or
pushed out by a better one) goes out with quantity "0"; removals come first
in each side's list so a client applying the levels in order is correct.

A `SnapshotView` (BOOK_MODE_SNAPSHOTS) publishes a conflated top-N snapshot
every `interval_ms` when the book changed. It owns one timer task per
(symbol, depth, interval): that cadence is the product the client asked for,
not a poll standing in for an event. `BookViews` creates views when the first
client asks and ends them (cancelling the timer) when the last one leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from raven import codec
from raven.core.bus import Bus, Topic
from raven.core.state import MarketRecord
from raven.model import BookDelta, BookSnapshot, Level
from raven.types import Kind

INF = float("inf")


def diff_levels(old: tuple[Level, ...], new: tuple[Level, ...]) -> tuple[Level, ...]:
    """The levels that turn side `old` into side `new`: removals ("0") first."""
    if old == new:
        return ()
    now = dict(new)
    before = dict(old)
    removed = [(price, "0") for price, _ in old if price not in now]
    changed = [(price, qty) for price, qty in new if before.get(price) != qty]
    return (*removed, *changed)


def delta_channel(depth: int) -> str:
    return f"deltas/{depth}"


def snapshot_channel(depth: int, interval_ms: int) -> str:
    return f"snapshots/{depth}/{interval_ms}ms"


class DeltaView:
    """The top `depth` levels of one book as its delta subscribers know it."""

    __slots__ = (
        "_snapshot",
        "asks",
        "bids",
        "bus",
        "depth",
        "exchange_time",
        "record",
        "refs",
        "resnapshot",
        "topic",
        "update_id",
        "worst_ask",
        "worst_bid",
    )

    def __init__(self, bus: Bus, record: MarketRecord, depth: int) -> None:
        self.bus = bus
        self.record = record
        self.depth = depth
        self.topic: Topic = (Kind.BOOK, record.exchange, record.symbol, delta_channel(depth))
        self.refs = 0
        self.bids, self.asks = record.book.top(depth)
        self.update_id = record.book.update_id
        self.exchange_time = record.book.exchange_time
        self.worst_bid = self.worst_ask = 0.0
        self._bounds()
        self._snapshot: bytes | None = None
        self.resnapshot = self.snapshot_chunk  # bound once: passed with every publish

    def _bounds(self) -> None:
        """Prices beyond which a change can't reach the view (-inf/inf: any can)."""
        depth = self.depth
        self.worst_bid = float(self.bids[-1][0]) if len(self.bids) >= depth else -INF
        self.worst_ask = float(self.asks[-1][0]) if len(self.asks) >= depth else INF

    def snapshot(self) -> BookSnapshot:
        rec = self.record
        return BookSnapshot(
            rec.exchange,
            rec.symbol,
            self.bids,
            self.asks,
            self.update_id,
            self.exchange_time,
            rec.last_receive_ns,
            self.depth,
        )

    def snapshot_chunk(self) -> bytes:
        """This view as a snapshot, encoded once per view change."""
        if self._snapshot is None:
            self._snapshot = codec.encode(self.snapshot())
        return self._snapshot

    def touched(self, best_bid: float, best_ask: float) -> bool:
        """Whether a change that touched these best prices can reach the view
        (-inf / inf: the change touched no level on that side)."""
        return best_bid >= self.worst_bid or best_ask <= self.worst_ask

    def update(
        self,
        bids: tuple[Level, ...],
        asks: tuple[Level, ...],
        receive_ns: int,
        now_ns: int,
    ) -> None:
        """The canonical book changed; `bids` / `asks` are its best levels, at
        least `depth` of each when there are that many."""
        depth = self.depth
        bids, asks = bids[:depth], asks[:depth]
        bid_changes, ask_changes = diff_levels(self.bids, bids), diff_levels(self.asks, asks)
        if not (bid_changes or ask_changes):
            return
        rec = self.record
        book = rec.book
        delta = BookDelta(
            rec.exchange,
            rec.symbol,
            bid_changes,
            ask_changes,
            0,
            book.update_id,
            self.update_id,
            book.exchange_time,
            receive_ns,
            depth,
        )
        # Publish before moving on: a subscriber conflating this delta asks
        # `resnapshot` for the view as it was before it.
        self.bus.publish(self.topic, codec.encode(delta), now_ns, False, self.resnapshot)
        self.bids, self.asks = bids, asks
        self.update_id = book.update_id
        self.exchange_time = book.exchange_time
        self._snapshot = None
        self._bounds()

    def rebase(self, now_ns: int) -> None:
        """The book was loaded afresh after being stale: subscribers start over
        from a top-N snapshot (a client drops its book on BOOK_STALE), and the
        deltas after it chain from it."""
        book = self.record.book
        self.bids, self.asks = book.top(self.depth)
        self.update_id = book.update_id
        self.exchange_time = book.exchange_time
        self._snapshot = None
        self._bounds()
        self.bus.publish(self.topic, self.snapshot_chunk(), now_ns, False, self.resnapshot)


class SnapshotView:
    """A top-`depth` snapshot of one book every `interval_ms`, when it changed."""

    def __init__(self, bus: Bus, record: MarketRecord, depth: int, interval_ms: int) -> None:
        self.bus = bus
        self.record = record
        self.depth = depth
        self.interval_ms = interval_ms
        self.topic: Topic = (
            Kind.BOOK, record.exchange, record.symbol, snapshot_channel(depth, interval_ms)
        )  # fmt: skip
        self.refs = 0
        self.sent_update_id = -1
        self.task: asyncio.Task[None] | None = None

    def snapshot_chunk(self) -> bytes:
        return codec.encode(self.record.book_snapshot(self.depth))

    async def run(self) -> None:
        period = self.interval_ms / 1000
        while True:
            await asyncio.sleep(period)
            rec = self.record
            if rec.book_live and rec.book.update_id != self.sent_update_id:
                self.sent_update_id = rec.book.update_id
                self.bus.publish(self.topic, self.snapshot_chunk(), time.time_ns())


class BookViews:
    """Every live view, created on first use and ended with its last subscriber."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._deltas: dict[tuple[str, str], dict[int, DeltaView]] = {}
        self._snapshots: dict[Topic, SnapshotView] = {}
        self._ending: set[asyncio.Task[None]] = set()

    def delta_view(self, record: MarketRecord, depth: int) -> DeltaView:
        """The view of (record's symbol, depth), one more reference to it."""
        views = self._deltas.setdefault((record.exchange, record.symbol), {})
        view = views.get(depth)
        if view is None:
            view = views[depth] = DeltaView(self.bus, record, depth)
        view.refs += 1
        return view

    def snapshot_view(self, record: MarketRecord, depth: int, interval_ms: int) -> SnapshotView:
        channel = snapshot_channel(depth, interval_ms)
        key: Topic = (Kind.BOOK, record.exchange, record.symbol, channel)
        view = self._snapshots.get(key)
        if view is None:
            view = self._snapshots[key] = SnapshotView(self.bus, record, depth, interval_ms)
            view.task = asyncio.get_running_loop().create_task(
                view.run(), name=f"book-snapshots {record.symbol} {channel}"
            )
        view.refs += 1
        return view

    def release(self, topic: Topic) -> None:
        """One reference less to the view publishing `topic`."""
        _, exchange, symbol, _ = topic
        views = self._deltas.get((exchange, symbol), {})
        for depth, view in list(views.items()):
            if view.topic == topic:
                view.refs -= 1
                if view.refs <= 0:
                    del views[depth]
                return
        snap = self._snapshots.get(topic)
        if snap is not None:
            snap.refs -= 1
            if snap.refs <= 0:
                del self._snapshots[topic]
                self._end(snap)

    def update(
        self, record: MarketRecord, best_bid: float, best_ask: float, receive_ns: int, now_ns: int
    ) -> None:
        """Tell the delta views of `record`'s book that it changed; the book's
        top levels are read once, at the deepest depth any touched view needs."""
        views = self._deltas.get((record.exchange, record.symbol))
        if not views:
            return
        touched = [v for v in views.values() if v.touched(best_bid, best_ask)]
        if not touched:
            return
        bids, asks = record.book.top(max(v.depth for v in touched))
        for view in touched:
            view.update(bids, asks, receive_ns, now_ns)

    def rebase(self, record: MarketRecord, now_ns: int) -> None:
        """A fresh snapshot to every delta view of `record`'s book (see DeltaView.rebase)."""
        for view in self._deltas.get((record.exchange, record.symbol), {}).values():
            view.rebase(now_ns)

    def has_deltas(self, exchange: str, symbol: str) -> bool:
        return bool(self._deltas.get((exchange, symbol)))

    def topics_of(self, exchange: str, symbol: str) -> list[Topic]:
        """Every view topic of a symbol (for book status events)."""
        topics = [v.topic for v in self._deltas.get((exchange, symbol), {}).values()]
        topics += [t for t in self._snapshots if t[1] == exchange and t[2] == symbol]
        return topics

    def _end(self, view: SnapshotView) -> None:
        if view.task is not None:
            view.task.cancel()
            self._ending.add(view.task)
            view.task.add_done_callback(self._ending.discard)

    async def close(self) -> None:
        """Cancel every timer and wait for them to end."""
        for view in list(self._snapshots.values()):
            self._end(view)
        self._snapshots.clear()
        for task in list(self._ending):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def counts(self) -> tuple[int, int]:
        """(delta views, snapshot views) alive now."""
        return sum(len(v) for v in self._deltas.values()), len(self._snapshots)
