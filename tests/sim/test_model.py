"""The market model on its own: determinism, book invariants, ids, truth, candles."""

from __future__ import annotations

import pytest

from raven.connectors.binance import wire
from raven.core.book import OrderBook
from raven.sim.klines import bar_span
from raven.sim.market import MarketModel, Truth
from raven.sim.payloads import Print

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
T0 = 1_700_000_000_000
ALL = ("depth@0ms", "aggTrade", "trade", "bookTicker")


def run(model: MarketModel, steps: int) -> list[bytes]:
    out: list[bytes] = []
    for i in range(steps):
        out.extend(wire.encoder.encode(e.payload) for e in model.step(T0 + i))
    return out


def test_same_seed_same_market_byte_for_byte() -> None:
    a = run(MarketModel(SYMBOLS, 42, depth=50, emit=ALL), 3000)
    b = run(MarketModel(SYMBOLS, 42, depth=50, emit=ALL), 3000)
    c = run(MarketModel(SYMBOLS, 43, depth=50, emit=ALL), 3000)
    assert a == b
    assert a != c
    assert len(a) > 3000


def test_default_step_emits_trades_and_tickers_only() -> None:
    model = MarketModel(SYMBOLS, 1)
    suffixes = {e.suffix for i in range(500) for e in model.step(T0 + i)}
    assert suffixes == {"aggTrade", "bookTicker"}


def test_books_stay_sane() -> None:
    model = MarketModel(SYMBOLS, 7, depth=40)
    for i in range(20_000):
        model.advance(T0 + i)
    for state in model.states.values():
        book, inst = state.book, state.inst
        assert book.best_bid() < book.best_ask(), "crossed book"
        assert 0 < len(book.bids) <= 40
        assert 0 < len(book.asks) <= 40
        for side in (book.bids, book.asks):
            assert side.keys == sorted(side.levels)
            for price, qty in side.levels.items():
                assert price > 0
                assert price % inst.tick == 0
                assert qty > 0
                assert qty % inst.step == 0


def test_one_id_sequence_shared_by_all_symbols() -> None:
    model = MarketModel(SYMBOLS, 3, depth=30)
    last = {s: model.states[s].book.last_id for s in SYMBOLS}
    previous_u = 0
    for i in range(5000):
        step = model.advance(T0 + i)
        symbol = step.state.inst.symbol
        txn = step.txn
        assert previous_u < txn.first_id <= txn.last_id, "ids must only grow, across symbols"
        assert txn.last_id - txn.first_id + 1 == len(txn.changes)
        assert step.prev_id == last[symbol]
        assert txn.first_id > last[symbol] + 1, "futures ids: U == previous u + 1 never holds"
        last[symbol] = txn.last_id
        previous_u = txn.last_id


def test_truth_book_at_every_update_id_matches_a_replayed_diff_stream() -> None:
    model = MarketModel(SYMBOLS, 9, depth=25, emit=("depth@0ms",))
    truth = Truth(model)
    books = {}
    for s in SYMBOLS:
        bids, asks = truth.book(s)
        books[s] = OrderBook(s)
        books[s].load(bids, asks, truth.last_update_id(s))
    seen: list[tuple[str, int]] = []
    for i in range(1500):
        (emission,) = model.step(T0 + i)
        event = emission.payload
        assert isinstance(event, wire.DepthUpdate)
        book = books[event.s]
        assert event.pu == book.update_id
        book.apply(event.b, event.a, event.u)
        assert book.top(0) == truth.book(event.s)
        seen.append((event.s, event.u))
    # ...and later, every past id still rebuilds the book the stream gave then
    replay = {s: OrderBook(s) for s in SYMBOLS}
    for s in SYMBOLS:
        bids, asks = truth.book_at(s, truth.oldest_update_id(s))
        replay[s].load(bids, asks, 0)
    model2 = MarketModel(SYMBOLS, 9, depth=25, emit=("depth@0ms",))
    for i, (symbol, u) in enumerate(seen):
        (emission,) = model2.step(T0 + i)
        assert isinstance(emission.payload, wire.DepthUpdate)
        replay[symbol].apply(emission.payload.b, emission.payload.a, u)
        assert replay[symbol].top(0) == truth.book_at(symbol, u)
        # ids between two changes of a symbol all mean the book after the first one
        assert truth.book_at(symbol, u + 1) == truth.book_at(symbol, u)


def test_truth_history_is_bounded_and_says_so() -> None:
    model = MarketModel(("BTCUSDT",), 1, depth=10, history=50)
    truth = Truth(model)
    start = truth.last_update_id("BTCUSDT")
    assert truth.book_at("BTCUSDT", start) == truth.book("BTCUSDT")
    for i in range(200):
        model.advance(T0 + i)
    oldest = truth.oldest_update_id("BTCUSDT")
    assert oldest > start
    truth.book_at("BTCUSDT", oldest)
    with pytest.raises(LookupError, match="older than the truth history"):
        truth.book_at("BTCUSDT", oldest - 1)
    with pytest.raises(KeyError, match="not simulated"):
        truth.book("NOPE")


def test_trades_hit_the_book_and_build_the_candles() -> None:
    model = MarketModel(("ETHUSDT",), 11, trade_share=0.6, depth=30)
    prints: list[Print] = []
    for i in range(4000):
        t = T0 + i * 7  # ~28 s of trading
        before = dict(model.states["ETHUSDT"].book.asks.levels)
        before_bids = dict(model.states["ETHUSDT"].book.bids.levels)
        step = model.advance(t)
        for p in step.prints:
            side = before if not p.buyer_maker else before_bids
            assert p.qty <= side[p.price], "a trade can only take what rests on the book"
            assert sum(p.fills) == p.qty
            assert p.last_id - p.first_id + 1 == len(p.fills)
        prints.extend(step.prints)
    assert prints
    store = model.states["ETHUSDT"].klines
    end = T0 + 4000 * 7
    bars = store.history("1s", T0, end, 1500, end)
    assert sum(b.v for b in bars) == sum(p.qty for p in prints)
    assert sum(b.n for b in bars) == sum(len(p.fills) for p in prints)
    minute = store.history("1m", None, end, 10, end)
    assert sum(b.v for b in minute) == sum(p.qty for p in prints)
    last = prints[-1]
    assert minute[-1].c == last.price
    assert last.last_id == minute[-1].L
    for bar in bars:
        assert bar.l <= min(bar.o, bar.c) <= max(bar.o, bar.c) <= bar.h
    ids = [p.first_id for p in prints]
    assert ids == sorted(ids)


def test_liquidations_are_insurance_fills_without_agg_trades() -> None:
    model = MarketModel(("BTCUSDT",), 2, trade_share=1.0, liquidation_share=0.5, depth=20)
    emitted = []
    liquidations = 0
    for i in range(500):
        emitted.extend(model.step(T0 + i))
        if model.states["BTCUSDT"].liquidation is not None:
            liquidations += 1
            model.states["BTCUSDT"].liquidation = None
    agg_ids = [e.payload.a for e in emitted if isinstance(e.payload, wire.AggTrade)]
    assert liquidations > 50
    assert agg_ids == list(range(agg_ids[0], agg_ids[0] + len(agg_ids))), "agg ids are dense"
    assert len(agg_ids) < 500


@pytest.mark.parametrize(
    ("interval", "t", "span"),
    [
        ("1m", 1_626_992_741_062, (1_626_992_700_000, 1_626_992_760_000)),
        ("1w", 1_626_992_741_062, (1_626_652_800_000, 1_627_257_600_000)),  # Mon 2021-07-19
        ("1M", 1_626_992_741_062, (1_625_097_600_000, 1_627_776_000_000)),  # July 2021
        ("1M", 1_638_316_800_000, (1_638_316_800_000, 1_640_995_200_000)),  # December
    ],
)
def test_bar_spans(interval: str, t: int, span: tuple[int, int]) -> None:
    assert bar_span(t, interval) == span


def test_funding_history_is_on_the_8h_grid() -> None:
    model = MarketModel(("BTCUSDT",), 4)
    now = 1_700_000_123_000
    model.funding_tick(now)
    rows = model.states["BTCUSDT"].funding.history(None, None, now)
    times = [r.fundingTime for r in rows]
    assert times == sorted(times)
    assert all(t % (8 * 3600 * 1000) == 0 for t in times)
    assert times[-1] <= now
