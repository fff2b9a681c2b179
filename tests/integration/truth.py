"""The connector's book events checked against the simulator's truth, as they come.

`TruthBooks` is an event sink for a real connector fed by a real simulator.
It applies each `BookSnapshot` (depth 0) and `BookDelta` to an
`raven.core.book.OrderBook` per symbol, exactly as the state layer does, and
after EVERY one compares the book with `sim.truth.book_at(symbol, update_id)`.
On the way it asserts the sync contract: after BOOK_STALE the next book
event is a snapshot; the first delta after a snapshot bridges it (the
reference's U <= lastUpdateId <= u, or Raven's pu <= lastUpdateId < U);
every later delta has prev_update_id == the book's update id (so nothing
was lost or repeated). A failed check is kept (`failures`) and re-raised by
`assert_ok`, because an exception inside the connector's callback would only
be seen as a crash of its connection task.
"""

from __future__ import annotations

import collections

from raven.core.book import OrderBook
from raven.model import BookDelta, BookSnapshot, Event, Status
from raven.sim.market import Truth
from raven.types import StatusKind


def bridges(delta: BookDelta, snapshot_id: int) -> bool:
    """The reference's U <= lastUpdateId <= u, or pu <= lastUpdateId < U (the snapshot
    fell between two events of the stream, where the book did not change)."""
    first, last, prev = delta.first_update_id, delta.update_id, delta.prev_update_id
    return first <= snapshot_id <= last or prev <= snapshot_id < first


class Bridge:
    """How a snapshot was bridged: the first delta applied after it."""

    __slots__ = ("first", "last", "snapshot", "symbol")

    def __init__(self, symbol: str, snapshot: int, delta: BookDelta) -> None:
        self.symbol = symbol
        self.snapshot = snapshot  # lastUpdateId
        self.first = delta.first_update_id  # U
        self.last = delta.update_id  # u

    @property
    def lower_edge(self) -> bool:
        """U == lastUpdateId."""
        return self.first == self.snapshot

    @property
    def upper_edge(self) -> bool:
        """u == lastUpdateId."""
        return self.last == self.snapshot


class TruthBooks:
    def __init__(self, truth: Truth) -> None:
        self.truth = truth
        self.books: dict[str, OrderBook] = {}
        self.synced: dict[str, bool] = {}  # a snapshot was applied since the last STALE
        self.fresh: dict[str, bool] = {}  # the next delta is the first after a snapshot
        self.events: list[Event] = []
        self.statuses: list[Status] = []
        self.bridges: list[Bridge] = []
        self.checks: collections.Counter[str] = collections.Counter()  # per symbol
        self.deltas: collections.Counter[str] = collections.Counter()
        self.snapshots: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        try:
            self._apply(event)
        except AssertionError as exc:
            self.failures.append(str(exc))

    def assert_ok(self) -> None:
        assert not self.failures, "\n".join(self.failures[:5])

    def total_checks(self) -> int:
        return sum(self.checks.values())

    def stale(self, symbol: str | None = None) -> list[Status]:
        return [
            s for s in self.statuses
            if s.status is StatusKind.BOOK_STALE and (symbol is None or s.symbol == symbol)
        ]  # fmt: skip

    def _apply(self, event: Event) -> None:
        if isinstance(event, Status):
            self._status(event)
        elif isinstance(event, BookSnapshot) and event.depth == 0:
            book = self.books.setdefault(event.symbol, OrderBook(event.symbol))
            book.load(event.bids, event.asks, event.update_id)
            self.synced[event.symbol] = True
            self.fresh[event.symbol] = True
            self.snapshots[event.symbol] += 1
            self._check(event.symbol)
        elif isinstance(event, BookDelta):
            self._delta(event)

    def _status(self, status: Status) -> None:
        self.statuses.append(status)
        if status.status is StatusKind.BOOK_STALE:
            self.synced[status.symbol] = False
        elif status.status is StatusKind.BOOK_LIVE:
            assert self.synced.get(status.symbol), f"{status.symbol}: LIVE before a snapshot"

    def _delta(self, delta: BookDelta) -> None:
        symbol = delta.symbol
        assert self.synced.get(symbol), f"{symbol}: delta {delta.update_id} without a snapshot"
        book = self.books[symbol]
        if self.fresh[symbol]:
            assert bridges(delta, book.update_id), (
                f"{symbol}: first delta U={delta.first_update_id} u={delta.update_id} "
                f"pu={delta.prev_update_id} does not bridge snapshot {book.update_id}"
            )
            self.bridges.append(Bridge(symbol, book.update_id, delta))
            self.fresh[symbol] = False
        else:
            assert delta.prev_update_id == book.update_id, (
                f"{symbol}: pu {delta.prev_update_id} != book {book.update_id}: lost or repeated"
            )
        book.apply(delta.bids, delta.asks, delta.update_id)
        self.deltas[symbol] += 1
        self._check(symbol)

    def _check(self, symbol: str) -> None:
        book = self.books[symbol]
        truth = self.truth.book_at(symbol, book.update_id)
        assert book.top(0) == truth, f"{symbol} differs from the truth at {book.update_id}"
        self.checks[symbol] += 1
