from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from raven.core.book import OrderBook


def test_snapshot_then_updates() -> None:
    book = OrderBook("BTCUSDT")
    book.load([("100.10", "1"), ("100.00", "2")], [("100.20", "3"), ("100.30", "4")], 10)
    assert book.best_bid() == ("100.10", "1")
    assert book.best_ask() == ("100.20", "3")
    book.apply([("100.10", "0"), ("99.90", "5")], [("100.15", "1.5"), ("100.30", "0")], 12)
    assert book.update_id == 12
    assert book.top(5) == (
        (("100.00", "2"), ("99.90", "5")),
        (("100.15", "1.5"), ("100.20", "3")),
    )
    assert not book.crossed()


def test_removing_an_absent_level_is_normal() -> None:
    book = OrderBook("X")
    book.apply([("1.0", "0")], [("2.0", "0.000")], 1)
    assert book.top(0) == ((), ())


def test_same_price_in_other_text_is_the_same_level() -> None:
    book = OrderBook("X")
    book.apply([("83091.70", "1")], [], 1)
    book.apply([("83091.7", "2")], [], 2)
    assert book.top(0)[0] == (("83091.7", "2"),)


def test_top_n_and_crossed() -> None:
    book = OrderBook("X")
    book.load([(f"{p}.0", "1") for p in range(1, 11)], [("5.0", "1")], 1)
    assert [p for p, _ in book.top(3)[0]] == ["10.0", "9.0", "8.0"]
    assert book.crossed()


@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(1, 40), st.sampled_from(["0", "1", "2.5", "0.000"])),
        max_size=200,
    )
)
def test_matches_a_plain_dict_model(ops: list[tuple[bool, int, str]]) -> None:
    book = OrderBook("X")
    model: dict[bool, dict[int, str]] = {True: {}, False: {}}
    for step, (is_bid, tick, qty) in enumerate(ops):
        price = f"{tick / 10:.1f}"
        if is_bid:
            book.apply([(price, qty)], [], step)
        else:
            book.apply([], [(price, qty)], step)
        if float(qty) == 0:
            model[is_bid].pop(tick, None)
        else:
            model[is_bid][tick] = qty
    bids, asks = book.top(0)
    assert [(float(p), q) for p, q in bids] == [
        (t / 10, q) for t, q in sorted(model[True].items(), reverse=True)
    ]
    assert [(float(p), q) for p, q in asks] == [
        (t / 10, q) for t, q in sorted(model[False].items())
    ]
