from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from raven.core.book import BookSide, OrderBook


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


class ReferenceSide:
    """The plain model a BookSide must equal: float key -> level, sorted on read."""

    def __init__(self, descending: bool) -> None:
        self.descending = descending
        self.levels: dict[float, tuple[str, str]] = {}

    def set(self, price: str, quantity: str) -> None:
        if float(quantity) == 0.0:
            self.levels.pop(float(price), None)
        else:
            self.levels[float(price)] = (price, quantity)

    def top(self, n: int) -> tuple[tuple[str, str], ...]:
        ordered = [self.levels[k] for k in sorted(self.levels, reverse=self.descending)]
        return tuple(ordered[:n] if n > 0 else ordered)


# Several texts per price ("1.5", "1.50", "01.5") so a level's text can change in place.
PRICE = st.builds(
    lambda tick, zeros, lead: f"{'0' if lead else ''}{tick / 4:.2f}{'0' * zeros}",
    st.integers(0, 60),
    st.integers(0, 2),
    st.booleans(),
)
QTY = st.sampled_from(["0", "0.000", "0.0", "1", "2.5", "0.001", "10.00"])
OP = st.one_of(
    st.tuples(st.just("set"), PRICE, QTY),
    st.tuples(st.just("apply"), st.lists(st.tuples(PRICE, QTY), max_size=8)),
    st.tuples(st.just("top"), st.integers(-1, 70)),
    st.tuples(st.just("get"), PRICE),
    st.tuples(st.just("clear")),
)


@given(st.booleans(), st.lists(OP, max_size=120))
def test_book_side_equals_a_dict_reference(descending: bool, ops: list[tuple[object, ...]]) -> None:
    side = BookSide(descending)
    ref = ReferenceSide(descending)
    for op in ops:
        match op:
            case ("set", str(price), str(qty)):
                side.set(price, qty)
                ref.set(price, qty)
            case ("apply", list(levels)):
                side.apply(levels)
                for price, qty in levels:
                    ref.set(price, qty)
            case ("top", int(n)):
                assert side.top(n) == ref.top(n)
            case ("get", str(price)):
                level = ref.levels.get(float(price))
                assert side.get(price) == (None if level is None else level[1])
            case ("clear",):
                side.clear()
                ref.levels.clear()
        assert len(side) == len(ref.levels)
        best = ref.top(1)
        assert side.best() == (best[0] if best else None)
    assert side.top(0) == ref.top(0)


@given(
    st.lists(st.tuples(PRICE, QTY), max_size=30),
    st.lists(st.tuples(PRICE, QTY), max_size=30),
)
def test_crossed_compares_best_bid_with_best_ask(
    bids: list[tuple[str, str]], asks: list[tuple[str, str]]
) -> None:
    book = OrderBook("X")
    book.load(bids, asks, 1)
    bid, ask = book.best_bid(), book.best_ask()
    assert book.crossed() == (
        bid is not None and ask is not None and float(bid[0]) >= float(ask[0])
    )
