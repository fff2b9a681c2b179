"""Scenario 1, ingest: frames -> decoded -> validated -> books applied -> state ->
encoded once for the bus, in one process, no clients.

The same code path as a live connection (`FrameDecoder` + the book sync +
`Pipeline.ingest`), fed from memory. The baseline is the decode-only rate of
the same frames (msgspec into the typed wire structs), measured in the same
run, so the ratio compares across machines. Both are single-threaded CPU
work, timed with the process's CPU clock so a busy neighbour on a shared
machine doesn't count against them.
"""

from __future__ import annotations

import gc
import time

from raven import codec, fastproto
from raven.bench.base import Mode, Result
from raven.bench.feed import Feed, build_feed, stream_objects
from raven.bench.report import Row
from raven.config import ValidationConfig
from raven.connectors.binance import parse, wire
from raven.connectors.binance.book_sync import BookState, BookSync
from raven.connectors.binance.connection import EXCHANGE, _deliverer
from raven.connectors.binance.decode import FrameDecoder
from raven.core.bus import Bus
from raven.core.citadel import Citadel
from raven.core.pipeline import Pipeline
from raven.core.state import MarketState

SCENARIO = "ingest"
CANDLE_INTERVALS = ("1s", "1m", "5m", "1h")
YEAR_S = 365 * 86400.0


def decode_only(frames: list[bytes]) -> float:
    """Seconds to decode every frame into its typed wire struct."""
    decode = wire.combined_decoder.decode
    gc.collect()
    start = time.process_time()
    for frame in frames:
        decode(frame)
    return time.process_time() - start


class Ingest:
    """The server's ingest path with nothing attached downstream."""

    def __init__(self, feed: Feed) -> None:
        self.state = MarketState(CANDLE_INTERVALS)
        self.bus = Bus()
        sizes = feed.tick_sizes
        # The feed runs on a synthetic clock, so the time rules get a window wide
        # enough to pass (they still run: their cost is part of the measure).
        rules = ValidationConfig(max_future_s=YEAR_S, max_past_s=YEAR_S)
        self.citadel = Citadel(rules, lambda ex, sym: sizes.get(sym))
        self.pipeline = Pipeline(self.state, self.bus, self.citadel)
        sink = self.pipeline.ingest
        self.books = BookSync(EXCHANGE, feed.symbols, sink, lambda symbol: None)
        self.decoder = FrameDecoder(EXCHANGE, stream_objects(feed), 1 << 22)
        self.deliver = _deliverer(sink, self.books)
        now = time.time_ns()
        for symbol, snap in feed.snapshots.items():
            self.books.on_snapshot(parse.depth_snapshot(snap, symbol, EXCHANGE, now))

    def run(self, frames: list[bytes]) -> float:
        decode = self.decoder.decode
        deliver = self.deliver
        clock = time.time_ns
        gc.collect()
        start = time.process_time()
        for frame in frames:
            out = decode(frame, clock())
            for event in out:  # type: ignore[union-attr]
                deliver(event)
        return time.process_time() - start

    def check(self) -> str:
        """Sanity: every book live, nothing rejected or skipped; '' when fine."""
        problems = []
        stale = [s for s, st in self.books.stats.items() if st.state is not BookState.LIVE]
        if stale:
            problems.append(f"books not live: {stale}")
        if self.pipeline.stats.rejected:
            problems.append(f"{self.pipeline.stats.rejected} rejected: {self.citadel.rejected}")
        skipped = sum(self.decoder.stats.skipped.values())
        if skipped:
            problems.append(f"{skipped} frames skipped: {self.decoder.last_error}")
        return "; ".join(problems)


def scenario(mode: Mode) -> Result:
    transactions = int(mode.pick(20_000, 150_000))
    rows, notes = run(build_feed(n_symbols=20, transactions=transactions))
    return Result(rows, notes)


def encode_both(feed: Feed) -> tuple[float, float, int]:
    """CPU seconds to encode the feed's events with the generated protobuf classes
    and with Raven's hand encoder (`raven.fastproto`), and the event count."""
    decoder = FrameDecoder(EXCHANGE, stream_objects(feed), 1 << 22)
    events = [e for frame in feed.frames for e in decoder.decode(frame, 1)]  # type: ignore[union-attr]
    generated, by_hand = codec.chunk, fastproto.encode
    to_proto = codec.to_proto
    gc.collect()
    start = time.process_time()
    for e in events:
        generated(to_proto(e))
    middle = time.process_time()
    for e in events:
        by_hand(e)
    return middle - start, time.process_time() - middle, len(events)


def run(feed: Feed) -> tuple[list[Row], list[str]]:
    frames = feed.frames
    base_s = min(decode_only(frames) for _ in range(3))
    ingest = Ingest(feed)
    full_s = ingest.run(frames)
    events = ingest.pipeline.stats.ingested
    notes = []
    problem = ingest.check()
    if problem:
        notes.append(f"ingest check: {problem}")
    n = len(frames)
    base_rate = n / base_s
    rows = [
        Row(SCENARIO, "frames decoded only (baseline)", base_rate, "frames/s",
            note=f"{n} frames, {base_s / n * 1e6:.2f} µs/frame"),
        Row(SCENARIO, "ingest rate", events / full_s, "events/s", target=">= 200,000",
            note=f"{events} events from {n} frames"),
        Row(SCENARIO, "ingest cost per frame", full_s / n * 1e6, "µs/frame",
            baseline=base_s / n * 1e6, baseline_label="decode only", target="<= 3x decode"),
        Row(SCENARIO, "ingest cost per event", full_s / events * 1e6, "µs/event"),
    ]  # fmt: skip
    generated_s, by_hand_s, encoded = encode_both(feed)
    rows.append(Row(SCENARIO, "encode per event, raven.fastproto", by_hand_s / encoded * 1e6,
                    "µs/event", baseline=generated_s / encoded * 1e6,
                    baseline_label="generated protobuf classes",
                    note=f"{encoded} events of the same feed, each encoded both ways"))  # fmt: skip
    return rows, notes
