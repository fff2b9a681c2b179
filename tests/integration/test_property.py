"""Property: whatever the market does and whatever faults hit the feed, the
connector's book equals the simulator's truth after every event it emits,
and every book ends live and caught up with the truth.

Hypothesis draws a seed (the market's events), one to three symbols, a diff
depth speed, whether books are refreshed periodically and connections
replaced (the 24-hour rollover, compressed), and a plan: rounds of market
transactions (windows closed at drawn points) each followed by a fault -
a gap, a dropped or expired connection, a malformed / unknown / oversized /
invalid UTF-8 frame, a stall, a late REST answer - and sometimes a wait for
the books to recover before the next round. The market is driven by hand
(`Market`), so an example is the same events whatever the machine's speed.
"""

from __future__ import annotations

import asyncio

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raven.connectors.binance.book_sync import BookState
from raven.sim.faults import Form
from raven.sim.server import Simulator
from tests.connectors.binance.running import make_connector, running
from tests.helpers import wait_until
from tests.integration.conftest import new_sim
from tests.integration.market import SPEEDS, Market
from tests.integration.truth import TruthBooks

POOL = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
FORMS: list[Form] = ["truncated", "not_json", "unknown_event", "invalid_utf8", "oversized"]


class Fault(msgspec.Struct, frozen=True):
    kind: str  # none, gap, drop, expire, malformed, stall, rest_delay
    symbol: str = ""
    form: Form = "truncated"
    seconds: float = 0.0


class Round(msgspec.Struct, frozen=True):
    steps: int  # market transactions
    tick_every: int  # a window closes after this many of them
    fault: Fault
    recover: bool  # wait for every book to be live and caught up before going on


def faults(symbols: list[str]) -> st.SearchStrategy[Fault]:
    symbol = st.sampled_from(symbols)
    return st.one_of(
        st.just(Fault("none")),
        st.builds(Fault, st.just("gap"), symbol),
        st.just(Fault("drop")),
        st.just(Fault("expire")),
        st.builds(Fault, st.just("malformed"), symbol, st.sampled_from(FORMS)),
        st.builds(Fault, st.just("stall"), symbol, seconds=st.sampled_from([0.02, 0.1])),
        st.builds(Fault, st.just("rest_delay"), seconds=st.sampled_from([0.01, 0.1])),
    )


def inject(sim: Simulator, market: Market, fault: Fault) -> None:
    faults = sim.faults
    match fault.kind:
        case "gap":
            faults.gap(fault.symbol, market.speed)
        case "drop":
            faults.drop_connections()
        case "expire":
            faults.expire_connections()
        case "malformed":
            faults.malformed(market.name(fault.symbol), fault.form)
        case "stall":
            faults.stall(fault.seconds, [market.name(fault.symbol)])
        case "rest_delay":
            faults.rest_delay(fault.seconds, count=1)


class Example(msgspec.Struct, frozen=True):
    seed: int
    symbols: list[str]
    stream: str
    refresh_s: float  # periodic book refresh; 0: off
    max_age_s: float  # connections replaced after this long
    plan: list[Round]


@st.composite
def examples(draw: st.DrawFn) -> Example:
    symbols = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=3, unique=True))
    rounds = st.builds(Round, st.integers(1, 40), st.integers(1, 8), faults(symbols), st.booleans())
    return Example(
        seed=draw(st.integers(0, 2**31)),
        symbols=symbols,
        stream=draw(st.sampled_from(sorted(SPEEDS))),
        refresh_s=draw(st.sampled_from([0.0, 0.03, 0.2])),
        max_age_s=draw(st.sampled_from([1000.0, 0.15, 0.4])),
        plan=draw(st.lists(rounds, min_size=3, max_size=25)),
    )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(example=examples())
async def test_books_stay_true_through_random_events_and_faults(example: Example) -> None:
    sim = await new_sim(paused=True, seed=example.seed, symbols=tuple(example.symbols),
                        book_depth=40)  # fmt: skip
    try:
        await run(sim, example)
    finally:
        await sim.stop()


async def run(sim: Simulator, example: Example) -> None:
    symbols = example.symbols
    books = TruthBooks(sim.truth)
    connector = make_connector(
        sim.ws_url, sim.rest_url, symbols, [example.stream], books,
        book_refresh_s=example.refresh_s, max_connection_age_s=example.max_age_s,
    )  # fmt: skip
    market = Market(sim, example.stream)
    stats = connector.books.stats

    def caught_up() -> bool:
        return all(
            stats[s].state is BookState.LIVE
            and stats[s].last_update_id == sim.truth.last_update_id(s)
            for s in symbols
        )

    async def recover() -> None:
        """Keep the market moving (a live book learns of a lost event only from
        the next one) until every book is live at the truth's latest update id."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while not caught_up():
            assert loop.time() < deadline, f"books never caught up: {stats}"
            market.run(1)
            for _ in range(5):  # let the event arrive before making another
                await asyncio.sleep(0.005)
                if caught_up():
                    return

    async with running(connector):
        await wait_until(lambda: all(c.connected for c in connector.connections), what="connected")
        await recover()
        for round_ in example.plan:
            market.run(round_.steps, round_.tick_every)
            inject(sim, market, round_.fault)
            await asyncio.sleep(0.003)  # paces the plan only
            if round_.recover:
                await recover()
        sim.faults.clear()
        await recover()
    books.assert_ok()
    for symbol in symbols:
        assert books.checks[symbol] > 0
        assert books.books[symbol].top(0) == sim.truth.book(symbol)
