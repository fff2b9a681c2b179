"""HistoryReader paging and merging, with tiny pages and long quiet stretches."""

from __future__ import annotations

from raven.model import Candle, Event
from raven.storage.history import HistoryPlan, HistoryReader, decode_cursor, fingerprint
from raven.storage.memory import MemoryStore
from raven.types import S_NS, Kind
from tests.storage.events import EX, Market

HOUR = 3600 * S_NS


async def stored_market() -> tuple[MemoryStore, list[Event]]:
    """Three bursts of activity separated by hours of nothing."""
    market = Market(seed=12)
    events: list[Event] = []
    for _ in range(3):
        events += market.events(150)
        market.now += 3 * HOUR
    store = MemoryStore()
    await store.write([(e.receive_time, e) for e in events])
    return store, events


def plan(events: list[Event], kinds: tuple[Kind, ...], **extra: object) -> HistoryPlan:
    start, end = events[0].receive_time, events[-1].receive_time + 1
    fp = fingerprint(kinds, start, end)
    values: dict[str, object] = {"limit": 10**6, "fingerprint": fp}
    values.update(extra)
    return HistoryPlan(EX, ("BTCUSDT", "ETHUSDT"), kinds, start, end, **values)  # type: ignore[arg-type]


async def test_small_pages_over_quiet_hours_return_everything_in_order() -> None:
    store, events = await stored_market()
    reader = HistoryReader(store, page_size=7)
    kinds = (Kind.TRADE, Kind.QUOTE, Kind.BOOK, Kind.STATUS)
    got = [e async for batch, _ in reader.batches(plan(events, kinds), 10) for e in batch]
    assert got == [e for e in events if e.kind in kinds]


async def test_limits_and_cursors_across_pages() -> None:
    store, events = await stored_market()
    reader = HistoryReader(store, page_size=5)
    kinds = (Kind.TRADE, Kind.BOOK)
    p = plan(events, kinds, limit=33)
    collected: list[Event] = []
    while True:
        batches = [b async for b in reader.batches(p, 8)]
        collected += [e for batch, _ in batches for e in batch]
        assert sum(len(b) for b, _ in batches) <= 33
        cursor = batches[-1][1]
        if not cursor:
            break
        p = plan(events, kinds, limit=33, after=decode_cursor(cursor, p.fingerprint))
    assert collected == [e for e in events if e.kind in kinds]


async def test_built_candles_resume_after_the_cursor() -> None:
    store, events = await stored_market()
    reader = HistoryReader(store, page_size=9)
    kinds = (Kind.CANDLE,)
    full = [
        e async for b, _ in reader.batches(plan(events, kinds, intervals=("1s",)), 4) for e in b
    ]
    assert all(isinstance(c, Candle) for c in full)
    assert len([c for c in full if isinstance(c, Candle) and c.interval == "1s"]) > 20
    first = [b async for b in reader.batches(plan(events, kinds, intervals=("1s",), limit=10), 4)]
    after = decode_cursor(first[-1][1], plan(events, kinds).fingerprint)
    rest = [e async for b, _ in reader.batches(
        plan(events, kinds, intervals=("1s",), after=after), 4) for e in b]  # fmt: skip
    assert [e for b, _ in first for e in b] + rest == full
