"""REST request weight between the real connector and the real simulator: a
100-symbol cold start stays under the venue's limit, a 429 is backed off for
its Retry-After, a 418 ban stops every REST call until it ends."""

from __future__ import annotations

import time
from collections.abc import Iterable

from raven.connectors.binance.limits import DEPTH_WEIGHTS, WeightLimiter
from raven.sim.rest import RestRecord
from tests.connectors.binance.running import make_connector, running
from tests.helpers import wait_until
from tests.integration.conftest import StartSim, all_live
from tests.integration.market import FastMinutes
from tests.integration.truth import TruthBooks

MINUTE_S = 0.5  # the venue's weight minute, compressed: both sides count in half seconds


def depth_requests(requests: Iterable[RestRecord]) -> list[RestRecord]:
    return [r for r in requests if r.path == "/fapi/v1/depth"]


async def test_a_cold_start_of_100_books_stays_under_the_weight_limit(
    start_sim: StartSim,
) -> None:
    symbols = tuple(f"S{n:03d}USDT" for n in range(100))
    limit = 60  # weight per (compressed) minute; the cold start needs 201: 3.4 minutes' worth
    sim = await start_sim(
        symbols=symbols, book_depth=20, rate=1000.0, rest_weight_limit=limit,
        clock=FastMinutes(MINUTE_S),
    )  # fmt: skip
    books = TruthBooks(sim.truth)
    # The reserve covers what is in flight when a window turns (2 snapshot workers).
    limiter = WeightLimiter(limit, reserve=20, window_s=MINUTE_S, skew_s=0.02)
    connector = make_connector(
        sim.ws_url, sim.rest_url, list(symbols), ["depth@100ms"], books,
        limiter=limiter, snapshot_limit=50,  # the whole 20-level book, weight 2
    )  # fmt: skip
    async with running(connector):
        await wait_until(lambda: all_live(connector), what="100 books live", timeout=60)
    books.assert_ok()
    assert limiter.stats.weight_sent == 1 + 100 * DEPTH_WEIGHTS[50] > 3 * limit
    assert limiter.stats.waits > 0, "the snapshots were spread out"
    assert (sim.stats.rest_429, sim.stats.rest_418) == (0, 0), "never over the venue's limit"
    assert len(depth_requests(sim.rest.requests)) == 100
    assert all(connector.books.stats[s].snapshots == 1 for s in symbols)


async def test_a_429_holds_every_rest_call_for_its_retry_after(start_sim: StartSim) -> None:
    sim = await start_sim()
    books = TruthBooks(sim.truth)
    connector = make_connector(sim.ws_url, sim.rest_url, ["BTCUSDT", "ETHUSDT"], ["depth@0ms"],
                               books)  # fmt: skip
    limiter = connector.limiter.stats
    async with running(connector):
        await wait_until(lambda: all_live(connector), what="both books live")
        sim.faults.rest_error(429, count=1, seconds=1)
        sim.faults.gap("BTCUSDT", "0ms")  # BTCUSDT needs a snapshot: it gets the 429
        await wait_until(lambda: limiter.rate_limited == 1, what="the 429")
        sim.faults.gap("ETHUSDT", "0ms")  # ETHUSDT needs one during the back-off
        await wait_until(
            lambda: all_live(connector) and connector.books.stats["ETHUSDT"].resyncs == 1,
            what="both books live again",
        )
    books.assert_ok()
    depth = depth_requests(sim.rest.requests)
    refused = [r for r in depth if r.status == 429]
    assert [r.symbol for r in refused] == ["BTCUSDT"]
    after = depth[depth.index(refused[0]) + 1 :]
    assert sorted(r.symbol for r in after) == ["BTCUSDT", "ETHUSDT"]
    assert all(r.status == 200 for r in after)
    # The connector's back-off starts when the answer reaches it, after it arrived here.
    assert all(r.at >= refused[0].at + 1.0 for r in after), "a request inside Retry-After"
    assert connector.snapshots.stats.failures == 1


async def test_a_418_ban_stops_every_rest_call_until_it_ends(start_sim: StartSim) -> None:
    sim = await start_sim()
    books = TruthBooks(sim.truth)
    connector = make_connector(sim.ws_url, sim.rest_url, ["BTCUSDT", "ETHUSDT"], ["depth@0ms"],
                               books)  # fmt: skip
    limiter = connector.limiter.stats
    async with running(connector):
        await wait_until(lambda: all_live(connector), what="both books live")
        banned_at = time.time()
        sim.faults.rest_error(418, seconds=2)  # the ban ends 2 s after this, or later
        sim.faults.gap("BTCUSDT", "0ms")
        await wait_until(lambda: limiter.bans == 1, what="the 418")
        sim.faults.gap("ETHUSDT", "0ms")
        await wait_until(
            lambda: all_live(connector) and connector.books.stats["ETHUSDT"].resyncs == 1,
            what="both books live again",
        )
    books.assert_ok()
    # Any request during the ban would have been answered 418 (and counted) by the venue.
    assert sim.stats.rest_418 == 1
    depth = depth_requests(sim.rest.requests)
    banned = next(r for r in depth if r.status == 418)
    after = depth[depth.index(banned) + 1 :]
    assert sorted(r.symbol for r in after) == ["BTCUSDT", "ETHUSDT"]
    assert all(r.status == 200 and r.at >= banned_at + 2.0 for r in after)
    assert limiter.waits >= 1, "ETHUSDT's snapshot waited for the ban's end"
