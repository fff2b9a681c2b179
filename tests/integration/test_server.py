"""The whole path: simulator -> connector -> pipeline -> gRPC server -> client.

A client subscribes mid-stream to a symbol's book at depth N, gets a top-N
snapshot then deltas, every delta chaining to the last, and the top N it
rebuilds equals the simulator's true top N after every snapshot and every
read, over thousands of events; across a gap it sees BOOK_STALE, a fresh
snapshot and BOOK_LIVE, and stays true after it.
"""

from __future__ import annotations

import msgspec

from raven.app import RavenApp
from raven.config import RavenConfig
from raven.core.book import OrderBook
from raven.model import BookDelta, BookSnapshot, Event, Status
from raven.sim.server import Simulator
from raven.types import Kind, StatusKind
from tests.api.conftest import Stream, connect, open_stream
from tests.conftest import server_config
from tests.helpers import wait_until
from tests.integration.conftest import StartSim

EXCHANGE = "binance_futures"
DEPTH = 10
BEFORE_GAP = 1500  # book events the client follows before the gap, and again after it


def app_config(sim: Simulator, streams: tuple[str, ...]) -> RavenConfig:
    # The test's client sends nothing while it checks thousands of events
    # against the truth; on a loaded machine that can outlast the default 60 s
    # client timeout, which would end the stream (not what is tested here).
    config = server_config(sim, server={"client_timeout_s": 600.0})
    binance = msgspec.structs.replace(config.exchanges.binance_futures, streams=streams)
    exchanges = msgspec.structs.replace(config.exchanges, binance_futures=binance)
    return msgspec.structs.replace(config, exchanges=exchanges)


class Client:
    """The client's top-N book, checked against the truth after each snapshot and
    after each read (a read takes every event that has arrived). A check rebuilds
    the truth backwards from the simulator's newest update to the client's, so it
    costs more the further the client lags: checking every delta, a loaded machine
    made the client lag, each check slower, and the lag grow past the test's timeout.
    Checking per read lets a lagging client catch up (its reads get bigger)."""

    def __init__(self, sim: Simulator, symbol: str) -> None:
        self.sim = sim
        self.symbol = symbol
        self.book = OrderBook(symbol)
        self.synced = False
        self.events: list[Event] = []
        self.checked = 0  # checks against the truth
        self.followed = 0  # book events applied

    def apply(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, Status) and event.status is StatusKind.BOOK_STALE:
            self.synced = False  # what a client must do: deltas may be missing
        elif isinstance(event, BookSnapshot):
            assert event.depth == DEPTH
            self.book.load(event.bids, event.asks, event.update_id)
            self.synced = True
            self.followed += 1
            self.check()
        elif isinstance(event, BookDelta):
            assert self.synced, f"a delta ({event.update_id}) while out of sync"
            assert event.prev_update_id == self.book.update_id, "the deltas do not chain"
            self.book.apply(event.bids, event.asks, event.update_id)
            self.followed += 1

    def check(self) -> None:
        bids, asks = self.sim.truth.book_at(self.symbol, self.book.update_id)
        assert self.book.top(DEPTH) == (bids[:DEPTH], asks[:DEPTH]), (
            f"top {DEPTH} differs from the truth at {self.book.update_id}"
        )
        self.checked += 1

    async def follow(self, stream: Stream, count: int) -> None:
        """Read until `count` more book events were applied; check after each read."""
        until = self.followed + count
        while self.followed < until:
            for event in await stream.events_until(lambda got: bool(got)):
                self.apply(event)
            if self.synced:
                self.check()

    def kinds(self) -> list[str]:
        """The stream's events, statuses by name, runs of deltas as one "deltas"."""
        out: list[str] = []
        for e in self.events:
            name = e.status.name if isinstance(e, Status) else type(e).__name__
            name = "deltas" if name == "BookDelta" else name
            if not out or out[-1] != name or name != "deltas":
                out.append(name)
        return out


async def test_a_mid_stream_book_subscriber_holds_the_true_top_n(start_sim: StartSim) -> None:
    sim = await start_sim(rate=3000.0, symbols=("BTCUSDT", "ETHUSDT"), book_depth=60)
    app = RavenApp(app_config(sim, ("depth@0ms", "aggTrade")))
    await app.start()
    try:
        await wait_until(
            lambda: (r := app.state.get(EXCHANGE, "BTCUSDT")) is not None and r.book_live,
            what="a live book",
        )
        ingested = app.pipeline.ingested
        await wait_until(lambda: app.pipeline.ingested > ingested + 1000, what="the feed running")
        client = Client(sim, "BTCUSDT")
        async with connect(f"127.0.0.1:{app.grpc.port}") as stub, open_stream(stub) as stream:
            await stream.subscribe(
                exchange=EXCHANGE, symbols=["BTCUSDT"], kinds=[Kind.BOOK], book_depth=DEPTH
            )
            await client.follow(stream, BEFORE_GAP)
            assert sim.faults.gap("BTCUSDT", "0ms") == ["btcusdt@depth@0ms"]
            while StatusKind.BOOK_LIVE.name not in client.kinds():
                await client.follow(stream, 1)
            await client.follow(stream, BEFORE_GAP)
            assert stream.gaps == 0, "no event was dropped for this client"
    finally:
        await app.stop()
    kinds = client.kinds()
    assert kinds[:2] == ["BookSnapshot", "deltas"], "a snapshot, then deltas"
    assert kinds.count("BOOK_STALE") == kinds.count("BOOK_LIVE") == 1
    stale, live = kinds.index("BOOK_STALE"), kinds.index("BOOK_LIVE")
    assert kinds[stale + 1] == "BookSnapshot", "after BOOK_STALE, a fresh snapshot"
    assert set(kinds[stale + 2 : live]) <= {"deltas"}, "then its deltas, then BOOK_LIVE"
    assert client.followed >= 2 * BEFORE_GAP
    # both snapshots and the reads after them (~1,200 checks on an idle machine)
    assert client.checked >= 4, client.checked
    assert app.binance is not None
    assert app.binance.books.stats["BTCUSDT"].resyncs == 1
    assert app.binance.books.stats["ETHUSDT"].resyncs == 0
