"""What the state layer does with the book events a connector emits, checked as it goes.

`BookReplica` is an event sink: it applies each `BookSnapshot` (depth 0) and
`BookDelta` to a `raven.core.book.OrderBook` per symbol, and asserts the
contract on the way: after `BOOK_STALE` the next book event is a snapshot;
the first delta after a snapshot bridges it (`bridge_rule`); every later one
has prev_update_id == the book's update id (nothing lost or repeated). After
each book event it calls `after_book(symbol)`, where subclasses compare with
a truth: `Replica` with a `DepthModel` here, `tests.integration.truth.TruthBooks`
with the simulator's.
"""

from __future__ import annotations

from collections.abc import Callable

from raven.connectors.binance.book_sync import bridges
from raven.core.book import OrderBook
from raven.model import BookDelta, BookSnapshot, Event, Status
from raven.types import StatusKind
from tests.connectors.binance.depth_model import DepthModel


class BookReplica:
    """The shared contract checks; `after_book` and `on_bridge` are the hooks."""

    def __init__(self, bridge_rule: Callable[[BookDelta, int], bool] = bridges) -> None:
        self.bridge_rule = bridge_rule
        self.books: dict[str, OrderBook] = {}
        self.synced: dict[str, bool] = {}  # a snapshot was applied since the last STALE
        self.fresh: dict[str, bool] = {}  # the next delta is the first after a snapshot
        self.events: list[Event] = []
        self.statuses: list[Status] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self.apply(event)

    def apply(self, event: Event) -> None:
        if isinstance(event, Status):
            self._status(event)
        elif isinstance(event, BookSnapshot) and event.depth == 0:
            book = self.books.setdefault(event.symbol, OrderBook(event.symbol))
            book.load(event.bids, event.asks, event.update_id)
            self.synced[event.symbol] = True
            self.fresh[event.symbol] = True
            self.after_book(event.symbol, None)
        elif isinstance(event, BookDelta):
            self._delta(event)

    def after_book(self, symbol: str, delta: BookDelta | None) -> None:
        """Called after each snapshot (delta None) or delta is applied."""

    def on_bridge(self, symbol: str, snapshot_id: int, delta: BookDelta) -> None:
        """Called with the first delta after a snapshot, before it is applied."""

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
            assert self.bridge_rule(delta, book.update_id), (
                f"{symbol}: first delta U={delta.first_update_id} u={delta.update_id} "
                f"pu={delta.prev_update_id} does not bridge snapshot {book.update_id}"
            )
            self.on_bridge(symbol, book.update_id, delta)
            self.fresh[symbol] = False
        else:
            assert delta.prev_update_id == book.update_id, (
                f"{symbol}: pu {delta.prev_update_id} != book {book.update_id}: lost or repeated"
            )
        book.apply(delta.bids, delta.asks, delta.update_id)
        self.after_book(symbol, delta)


class Replica(BookReplica):
    """Checked against a `DepthModel`'s truth (after every book event by default)."""

    def __init__(self, model: DepthModel | None = None, check_every: bool = True) -> None:
        super().__init__()
        self.model = model
        self.check_every = check_every  # compare with the model after every book event
        self.checks = 0

    def after_book(self, symbol: str, delta: BookDelta | None) -> None:
        if self.check_every and self.model is not None:
            self.check(symbol)

    def check(self, symbol: str) -> None:
        assert self.model is not None
        book = self.books[symbol]
        truth = self.model.book_at(symbol, book.update_id)
        assert book.top(0) == truth, f"{symbol} differs from the truth at {book.update_id}"
        self.checks += 1
