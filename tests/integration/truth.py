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

from raven.model import BookDelta, Event, Status
from raven.sim.market import Truth
from raven.types import StatusKind
from tests.connectors.binance.replica import BookReplica


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


class TruthBooks(BookReplica):
    def __init__(self, truth: Truth) -> None:
        super().__init__(bridges)  # the rule written out above, not the connector's own
        self.truth = truth
        self.bridges: list[Bridge] = []
        self.checks: collections.Counter[str] = collections.Counter()  # per symbol
        self.deltas: collections.Counter[str] = collections.Counter()
        self.snapshots: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        try:
            self.apply(event)
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

    def on_bridge(self, symbol: str, snapshot_id: int, delta: BookDelta) -> None:
        self.bridges.append(Bridge(symbol, snapshot_id, delta))

    def after_book(self, symbol: str, delta: BookDelta | None) -> None:
        if delta is None:
            self.snapshots[symbol] += 1
        else:
            self.deltas[symbol] += 1
        book = self.books[symbol]
        truth = self.truth.book_at(symbol, book.update_id)
        assert book.top(0) == truth, f"{symbol} differs from the truth at {book.update_id}"
        self.checks[symbol] += 1
