"""LocalBook: snapshot + deltas -> the book, with sequence checks (synthetic events)."""

from __future__ import annotations

from raven.client import Gap, LocalBook
from raven.model import BookDelta, BookSnapshot, Level, Quote, Status
from raven.types import StatusKind

EX = "binance_futures"


def snapshot(
    update_id: int, bids: list[Level], asks: list[Level], symbol: str = "BTCUSDT"
) -> BookSnapshot:
    return BookSnapshot(EX, symbol, tuple(bids), tuple(asks), update_id, 1, 2, depth=20)


def delta(
    prev: int, update_id: int, bids: list[Level], asks: list[Level], symbol: str = "BTCUSDT"
) -> BookDelta:
    return BookDelta(EX, symbol, tuple(bids), tuple(asks), prev + 1, update_id, prev, 3, 4)


def live_book() -> LocalBook:
    book = LocalBook("BTCUSDT")
    assert not book.synced
    assert book.apply(
        snapshot(100, [("99.5", "2"), ("99.0", "1")], [("100.0", "3"), ("100.5", "4")])
    )
    return book


def test_snapshot_then_chained_deltas_give_the_book() -> None:
    book = live_book()
    assert book.best_bid() == ("99.5", "2")
    assert book.best_ask() == ("100.0", "3")
    assert book.apply(delta(100, 105, [("99.5", "0"), ("99.8", "5")], [("100.0", "1.5")]))
    assert book.apply(delta(105, 107, [], [("100.2", "7"), ("100.5", "0")]))
    bids, asks = book.top(5)
    assert bids == (("99.8", "5"), ("99.0", "1"))
    assert asks == (("100.0", "1.5"), ("100.2", "7"))
    assert book.update_id == 107
    assert (book.snapshots, book.deltas, book.out_of_sync) == (1, 2, 0)


def test_a_broken_chain_loses_sync_until_the_next_snapshot() -> None:
    book = live_book()
    assert not book.apply(delta(101, 102, [("99.9", "1")], []))  # prev 101 != 100
    assert book.out_of_sync == 1
    assert book.best_bid() == ("99.5", "2"), "the bad delta was not applied"
    assert not book.apply(delta(102, 103, [], [])), "stays out of sync"
    assert book.out_of_sync == 1
    assert book.apply(snapshot(200, [("98", "1")], [("101", "1")]))
    assert book.top(0) == ((("98", "1"),), (("101", "1"),))
    assert book.apply(delta(200, 201, [("98", "2")], []))


def test_deltas_before_the_first_snapshot_are_ignored() -> None:
    book = LocalBook("BTCUSDT")
    assert not book.apply(delta(0, 5, [("1", "1")], []))
    assert book.best_bid() is None
    assert book.out_of_sync == 0


def test_gaps_and_stale_status_lose_sync_other_symbols_do_not_matter() -> None:
    book = live_book()
    assert book.apply(delta(100, 101, [], [], symbol="ETHUSDT")), "not this book's event"
    assert book.apply(snapshot(5, [("1", "1")], [("2", "1")], symbol="ETHUSDT"))
    assert book.update_id == 100
    assert book.apply(Quote(EX, "BTCUSDT", "99.5", "2", "100.0", "3", 100, 1, 2))
    assert not book.apply(Gap(3, "queue full: oldest dropped", 5))
    assert book.apply(snapshot(110, [("99", "1")], [("100", "1")]))
    assert book.apply(Status(EX, "ETHUSDT", StatusKind.BOOK_STALE, "resync", 1, 2))
    assert not book.apply(Status(EX, "BTCUSDT", StatusKind.BOOK_STALE, "resync", 1, 2))
    assert book.out_of_sync == 2


def test_exchange_filter() -> None:
    book = LocalBook("BTCUSDT", exchange="other")
    assert not book.apply(snapshot(1, [("1", "1")], [("2", "1")]))
    assert book.snapshots == 0
