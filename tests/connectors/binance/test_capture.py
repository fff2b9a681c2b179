"""The real 2021-07 capture (ws.txt + rest.txt) through the decoder and the book sync.

Frames and REST snapshots are replayed in receive-time order; a snapshot is
handed over once the sync asked for it and its response time has passed,
as it would have been live. Every book must go live through the bridge the
capture's README describes, and then agree with the venue's own bookTicker
wherever the ticker's update id falls between two depth events.
"""

from __future__ import annotations

import itertools

import pytest

from raven.connectors.binance import parse, wire
from raven.connectors.binance.book_sync import BookState, BookSync
from raven.connectors.binance.decode import FrameDecoder
from raven.connectors.binance.streams import Stream, make_stream
from raven.model import BookDelta, BookSnapshot, Event, Level, Quote
from tests.connectors.binance.replica import Replica
from tests.helpers import CAPTURE

pytestmark = pytest.mark.skipif(
    not CAPTURE.exists(), reason=f"shared capture not found at {CAPTURE} (see tests/helpers.py)"
)

EX = "binance_futures"
Touch = tuple[Level | None, Level | None]


def capture_streams() -> tuple[list[Stream], list[tuple[float, bytes]]]:
    lines = (CAPTURE / "ws.txt").read_bytes().splitlines()
    url = lines[0].split(b" <-> ")[0].decode()
    names = url.split("streams=")[1].split("/")
    streams = [make_stream(n.split("@")[0].upper(), n.split("@", 1)[1]) for n in names]
    frames = []
    for line in lines[1:]:
        received, _, frame = line.partition(b": ")
        frames.append((float(received), frame))
    return streams, frames


def capture_snapshots() -> dict[str, tuple[float, BookSnapshot]]:
    out = {}
    for line in filter(None, (CAPTURE / "rest.txt").read_text().splitlines()):
        url, _, rest = line.partition(" -> ")
        received, _, body = rest.partition(": ")
        symbol = url.split("symbol=")[1].split("&")[0]
        raw = wire.depth_snapshot_decoder.decode(body)
        snap = parse.depth_snapshot(raw, symbol, EX, int(float(received) * 1e9))
        out[symbol] = (float(received), snap)
    return out


class Replay:
    def __init__(self) -> None:
        self.streams, self.frames = capture_streams()
        self.snapshots = capture_snapshots()
        self.symbols = sorted({s.symbol for s in self.streams})
        self.replica = Replica()
        self.wanted: list[str] = []
        self.sync = BookSync(EX, self.symbols, self.replica, self.wanted.append)
        self.decoder = FrameDecoder(EX, self.streams, 1 << 20)
        # per symbol: (U, u, best bid, best ask) after each book event emitted
        self.history: dict[str, list[tuple[int, int, Touch]]] = {s: [] for s in self.symbols}
        self.quotes: list[Quote] = []

    def run(self) -> None:
        for received, frame in self.frames:
            self._serve_snapshots(received)
            out = self.decoder.decode(frame, int(received * 1e9))
            assert isinstance(out, tuple)
            for event in out:
                self._event(event)

    def _serve_snapshots(self, now: float) -> None:
        for symbol in list(self.wanted):
            at, snap = self.snapshots[symbol]
            if at <= now:
                self.wanted.remove(symbol)
                self.sync.on_snapshot(snap)

    def _event(self, event: Event) -> None:
        if isinstance(event, Quote):
            self.quotes.append(event)
        if not isinstance(event, BookDelta):
            return
        seen = len(self.replica.events)
        self.sync.on_delta(event)
        for out in self.replica.events[seen:]:
            if isinstance(out, BookDelta | BookSnapshot):
                book = self.replica.books[out.symbol]
                first = out.first_update_id if isinstance(out, BookDelta) else out.update_id
                touch = (book.best_bid(), book.best_ask())
                self.history[out.symbol].append((first, out.update_id, touch))

    def touch_at(self, symbol: str, update_id: int) -> Touch | None:
        """The book's best levels as of `update_id`, when no depth event spans it."""
        history = self.history[symbol]
        for (_, u, touch), (next_first, _, _) in itertools.pairwise(history):
            if u <= update_id < next_first:
                return touch
        return None


@pytest.fixture(scope="module")
def replay() -> Replay:
    r = Replay()
    r.run()
    return r


def test_every_book_goes_live_once_without_a_gap(replay: Replay) -> None:
    assert replay.symbols == ["AKROUSDT", "CTKUSDT", "KEEPUSDT", "SUSHIUSDT"]
    for symbol in replay.symbols:
        stats = replay.sync.stats[symbol]
        assert stats.state is BookState.LIVE, symbol
        assert (stats.snapshots, stats.gaps, stats.resyncs, stats.stale_snapshots) == (1, 0, 0, 0)
    assert sum(replay.decoder.stats.skipped.values()) == 0


def test_bridges_hit_both_inclusive_edges(replay: Replay) -> None:
    first, lid, last = replay.sync.stats["SUSHIUSDT"].bridge
    assert first == lid < last, "SUSHIUSDT: U == lastUpdateId"
    for symbol in ("AKROUSDT", "KEEPUSDT", "CTKUSDT"):
        first, lid, last = replay.sync.stats[symbol].bridge
        assert first < lid == last, f"{symbol}: u == lastUpdateId"


def test_books_agree_with_the_venues_book_ticker(replay: Replay) -> None:
    compared = 0
    for quote in replay.quotes:
        touch = replay.touch_at(quote.symbol, quote.update_id)
        if touch is None:
            continue  # the ticker's id lies inside a 100 ms depth event
        bid = (quote.bid_price, quote.bid_quantity)
        ask = (quote.ask_price, quote.ask_quantity)
        assert touch == (bid, ask), f"{quote.symbol} at {quote.update_id}"
        compared += 1
    assert compared >= 40
    for symbol in replay.symbols:
        book = replay.replica.books[symbol]
        assert not book.crossed()
        assert book.update_id == replay.sync.stats[symbol].last_update_id
