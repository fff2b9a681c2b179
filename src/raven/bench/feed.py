"""A fixed, seeded Binance USD-M feed for benchmarks: frames in memory.

The simulator's own market model and payload code make the frames (so they
are byte-for-byte what `raven sim` sends), driven by hand on a synthetic
clock: no sockets, no wall time, the same frames for the same seed. The mix
is Binance-like: diff depth at @0ms on every book change, bookTicker when
the touch moves, aggTrade per trade, klines every 250 ms and mark price
every second for every symbol.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from raven.config import SimulatorConfig
from raven.connectors.binance import wire
from raven.connectors.binance.streams import Route, Stream, make_stream, route_of
from raven.sim.hub import SimConnection
from raven.sim.server import Simulator

STEP_MS = 1  # synthetic time between two market transactions
WINDOW_STEPS = 200  # transactions merged into one aggregated diff window (~15 levels an event)
# The mix asks for diff depth events of 10-20 levels. The simulator's
# @0ms events carry one transaction (1-5 levels), so the default mix takes its
# @100ms stream, which merges ~100 transactions per window over 20 symbols
# into events of that size; the frames have the same shape either way.
DEFAULT_STREAMS = ("aggTrade", "bookTicker", "depth@100ms", "markPrice@1s", "kline_1m")


def symbols(count: int) -> tuple[str, ...]:
    base = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
    extra = tuple(f"SYM{i:02d}USDT" for i in range(max(0, count - len(base))))
    return (base + extra)[:count]


class Feed(msgspec.Struct):
    """Frames in delivery order, with the snapshots a book sync needs first."""

    symbols: tuple[str, ...]
    streams: tuple[str, ...]
    frames: list[bytes]
    snapshots: dict[str, wire.DepthSnapshot]  # per symbol, taken before the first frame
    tick_sizes: dict[str, tuple[str, str]]  # symbol -> (tick size, step size)

    def stream_names(self) -> list[str]:
        return [f"{s.lower()}@{t}" for t in self.streams for s in self.symbols]


def build_feed(
    n_symbols: int = 20,
    transactions: int = 20_000,
    seed: int = 42,
    book_depth: int = 200,
    streams: tuple[str, ...] = DEFAULT_STREAMS,
) -> Feed:
    """About `transactions` market transactions' worth of frames (each makes one or
    more frames) plus the timed streams over the same synthetic time span."""
    names = symbols(n_symbols)
    config = SimulatorConfig(
        port=0, symbols=names, seed=seed, book_depth=book_depth, truth_history=1000,
        record_frames=0, queue_frames=1 << 30,
    )  # fmt: skip
    sim = Simulator(config)
    feed = sim.feed
    if feed is None or sim.model is None:
        raise RuntimeError("the simulator has no live market model")
    conns = {route: _connection(route) for route in Route}
    for stream in (f"{s.lower()}@{t}" for t in streams for s in names):
        route = route_of(stream)
        assert route is not None, stream
        sim.hub.add(conns[route])
        sim.hub.subscribe(conns[route], [stream])
    now_ms = 1_790_000_000_000
    # Warm up: let every book fill before the snapshots are taken.
    for _ in range(200 * n_symbols):
        sim.model.advance(now_ms)
    snapshots = {s: _snapshot(sim, s, now_ms) for s in names}
    frames: list[bytes] = []
    for i in range(transactions):
        now_ms += STEP_MS
        feed.step(now_ms)
        if i % WINDOW_STEPS == 0:
            feed.tick(100, now_ms)
        for period in (250, 1000):
            if now_ms % period == 0:
                feed.tick(period, now_ms)
        if i % 64 == 0:
            _collect(conns.values(), frames)
    _collect(conns.values(), frames)
    sizes = {s: (st.inst.tick_size, st.inst.step_size) for s, st in sim.model.states.items()}
    return Feed(names, streams, frames, snapshots, sizes)


def _connection(route: Route) -> SimConnection:
    return SimConnection(route, True, 1 << 30, 0, 0.0, 10)


def _collect(conns: Iterable[SimConnection], frames: list[bytes]) -> None:
    for conn in conns:
        frames.extend(conn.queue)
        conn.queue.clear()


def _snapshot(sim: Simulator, symbol: str, now_ms: int) -> wire.DepthSnapshot:
    assert sim.model is not None
    state = sim.model.states[symbol]
    inst = state.inst
    bids, asks = state.book.top(1000)
    return wire.DepthSnapshot(
        lastUpdateId=sim.truth.last_update_id(symbol),
        E=now_ms,
        T=now_ms,
        bids=[(inst.price(p), inst.qty(q)) for p, q in bids],
        asks=[(inst.price(p), inst.qty(q)) for p, q in asks],
    )


def stream_objects(feed: Feed) -> list[Stream]:
    return [make_stream(s, t) for t in feed.streams for s in feed.symbols]
