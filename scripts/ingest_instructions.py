"""Helper of scripts/ingest-instructions.sh: the ingest scenario's fixed feed,
saved once and replayed, so callgrind can count the instructions per frame.

    dump PATH    build the feed (20 symbols, 20,000 transactions) into PATH (msgpack)
    load PATH    only load it (the baseline run, subtracted)
    run PATH     load it and run `Ingest(feed).run(frames)` (bench/ingest.py's call)
    load|run PATH TYPE   the same with only one stream type's frames (e.g. bookTicker)
    digest PATH  replay it on a fixed clock with a subscriber on every topic and
                 delta views on every book; print a SHA-256 of everything published,
                 the counters and the final books (equal digests: same behaviour)
"""

from __future__ import annotations

import hashlib
import sys

import msgspec

from raven.bench.feed import Feed, build_feed, stream_objects
from raven.bench.ingest import CANDLE_INTERVALS, YEAR_S, Ingest
from raven.config import ValidationConfig
from raven.connectors.binance import parse
from raven.connectors.binance.book_sync import BookSync
from raven.connectors.binance.connection import EXCHANGE, _deliverer
from raven.connectors.binance.decode import FrameDecoder
from raven.core.bus import Bus, Resnapshot, Subscriber, Topic
from raven.core.citadel import Citadel
from raven.core.pipeline import MemoryRecorder, Pipeline
from raven.core.state import MarketState
from raven.types import Kind

T0 = 1_790_000_000_000_000_000  # the replay's first receive time (the feed's clock)


def load(path: str, only: str = "") -> Feed:
    """The saved feed; with `only` (e.g. "bookTicker"), just that stream type's frames."""
    with open(path, "rb") as f:
        feed = msgspec.msgpack.decode(f.read(), type=Feed)
    if only:
        mark = f'@{only}"'.encode()
        feed.frames = [frame for frame in feed.frames if mark in frame[:64]]
    return feed


class HashingBus(Bus):
    """A bus that also hashes every publish (topic, bytes, keep) in order."""

    def __init__(self) -> None:
        super().__init__()
        self.digest = hashlib.sha256()

    def publish(
        self,
        topic: Topic,
        chunk: bytes,
        now_ns: int,
        keep: bool = False,
        resnapshot: Resnapshot | None = None,
    ) -> None:
        self.digest.update(repr((topic, keep, resnapshot is not None)).encode() + chunk)
        super().publish(topic, chunk, now_ns, keep, resnapshot)


def digest(feed: Feed, views: bool = True) -> str:
    """The replay's fingerprint (see the module docstring)."""
    state = MarketState(CANDLE_INTERVALS)
    bus = HashingBus()
    sizes = feed.tick_sizes
    rules = ValidationConfig(max_future_s=YEAR_S, max_past_s=YEAR_S)
    citadel = Citadel(rules, lambda ex, sym: sizes.get(sym))
    pipeline = Pipeline(state, bus, citadel)
    recorder = MemoryRecorder()
    pipeline.recorder = recorder
    books = BookSync(EXCHANGE, feed.symbols, pipeline.ingest, lambda s: None, clock=lambda: 7)
    decoder = FrameDecoder(EXCHANGE, stream_objects(feed), 1 << 22)
    deliver = _deliverer(pipeline.ingest, books)
    sub = Subscriber("all", 1 << 30)
    for symbol in feed.symbols:
        rec = state.record(EXCHANGE, symbol)
        for kind in Kind:
            bus.subscribe(sub, (kind, EXCHANGE, symbol, ""))
        for topic in rec.candle_topics:
            bus.subscribe(sub, topic)
        if views:
            for depth in (5, 20):
                bus.subscribe(sub, pipeline.views.delta_view(rec, depth).topic)
        books.on_snapshot(parse.depth_snapshot(feed.snapshots[symbol], symbol, EXCHANGE, T0))
    for i, frame in enumerate(feed.frames):
        for event in decoder.decode(frame, T0 + i * 1000):  # type: ignore[union-attr]
            deliver(event)
    h = bus.digest
    for event in recorder.events:
        h.update(msgspec.json.encode(event))
    for rec in state:
        h.update(msgspec.json.encode(rec.book.top(0)))
        h.update(repr((rec.received, rec.book_live, rec.book_crossed)).encode())
    counters = (pipeline.stats, pipeline.books.stats, decoder.stats, citadel.rejected,
                citadel.normalized, citadel.flagged, citadel.checked, sub.stats, bus.published,
                pipeline.latency_exchange_to_receive.count)  # fmt: skip
    h.update(repr(counters).encode())
    return h.hexdigest()


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    only = sys.argv[3] if len(sys.argv) > 3 else ""
    if mode == "dump":
        with open(path, "wb") as f:
            f.write(msgspec.msgpack.encode(build_feed(20, 20_000)))
    elif mode == "load":
        load(path, only)
    elif mode == "run":
        feed = load(path, only)
        ingest = Ingest(feed)
        ingest.run(feed.frames)
        problem = ingest.check()
        print(f"frames {len(feed.frames)} events {ingest.pipeline.stats.ingested} {problem}")
    elif mode == "digest":
        feed = load(path)
        print(digest(feed, views=True), digest(feed, views=False))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
