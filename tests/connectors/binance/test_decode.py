"""Decoding of every Binance USD-M payload into the normalized model."""

from __future__ import annotations

import pytest

from raven.connectors.binance import wire
from raven.connectors.binance.decode import FrameDecoder
from raven.connectors.binance.streams import make_stream
from raven.model import BookDelta, BookSnapshot, Candle, Event, Funding, Liquidation, Quote, Trade
from raven.sim.market import MarketModel
from raven.types import Side
from tests.helpers import CAPTURE
from tests.sim.reference import (  # the reference's example payloads, verbatim
    AGG_TRADE,
    BOOK_TICKER,
    DEPTH,
    FORCE_ORDER,
    KLINE,
    MARK_PRICE,
    TRADE,
)

EX = "binance_futures"
RECV = 1_791_382_992_500_000_123


def combined(stream: str, payload: bytes) -> bytes:
    return b'{"stream":"' + stream.encode() + b'","data":' + payload + b"}"


def decode_one(suffix: str, symbol: str, payload: bytes) -> object:
    stream = make_stream(symbol, suffix)
    decoder = FrameDecoder(EX, [stream], 1 << 20)
    out = decoder.decode(combined(stream.name, payload), RECV)
    assert isinstance(out, tuple)
    assert len(out) == 1, decoder.last_error
    return out[0]


def test_agg_trade() -> None:
    assert decode_one("aggTrade", "BTCUSDT", AGG_TRADE) == Trade(
        EX, "BTCUSDT", "83091.70", "0.022", Side.BUY, 3477868433,
        1791382992338 * 1_000_000, RECV, 8153634393, 8153634394,
    )  # fmt: skip


def test_raw_trade_buyer_maker_means_seller_aggressor() -> None:
    event = decode_one("trade", "ETHUSDT", TRADE)
    assert event == Trade(
        EX, "ETHUSDT", "2366.55", "0.070", Side.SELL, 73701056, 1596034530235 * 1_000_000, RECV
    )


def test_book_ticker() -> None:
    assert decode_one("bookTicker", "BTCUSDT", BOOK_TICKER) == Quote(
        EX, "BTCUSDT", "83091.60", "4.215", "83091.70", "3.763", 11757092630476,
        1791382994657 * 1_000_000, RECV,
    )  # fmt: skip


def test_diff_depth() -> None:
    assert decode_one("depth@0ms", "BTCUSDT", DEPTH) == BookDelta(
        EX, "BTCUSDT", (), (("64346.70", "589.8041"),), 359220619477, 359220619477,
        359220613550, 1785048482718 * 1_000_000, RECV,
    )  # fmt: skip


def test_partial_depth_is_a_snapshot() -> None:
    event = decode_one("depth5@100ms", "BTCUSDT", DEPTH)
    assert isinstance(event, BookSnapshot)
    assert event.asks == (("64346.70", "589.8041"),)
    assert event.update_id == 359220619477


def test_kline() -> None:
    assert decode_one("kline_1m", "SUSHIUSDT", KLINE) == Candle(
        EX, "SUSHIUSDT", "1m", 1626992700000 * 1_000_000, 1626992760000 * 1_000_000,
        "7.6080", "7.6180", "7.6070", "7.6170", "3005", "22875.8590", 113, True, False,
        1626992760203 * 1_000_000, RECV,
    )  # fmt: skip


def test_mark_price() -> None:
    assert decode_one("markPrice@1s", "BTCUSDT", MARK_PRICE) == Funding(
        EX, "BTCUSDT", "83084.30000000", "83123.65891304", "83195.15881449", "0.00000078",
        1791388800000 * 1_000_000, 1791382993000 * 1_000_000, RECV,
    )  # fmt: skip


def test_force_order() -> None:
    assert decode_one("forceOrder", "BTCUSDT", FORCE_ORDER) == Liquidation(
        EX, "BTCUSDT", Side.BUY, "4793.91", "0.014", "4706.04", "0.014", "FILLED",
        1584059031421 * 1_000_000, RECV,
    )  # fmt: skip


def test_unknown_keys_are_ignored() -> None:
    payload = AGG_TRADE[:-1] + b',"zz":{"new":[1,2]},"ap2":"1"}'
    event = decode_one("aggTrade", "BTCUSDT", payload)
    assert isinstance(event, Trade)
    assert event.price == "83091.70"


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1', "malformed"),
        (b"not json", "malformed"),
        (b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":"x"}}', "malformed"),
        (b'{"stream":"btcusdt@aggTrade","data":{"e":"newThing","E":1}}', "unknown_event"),
        (combined("btcusdt@aggTrade", BOOK_TICKER), "malformed"),
        (combined("solusdt@aggTrade", AGG_TRADE), "unknown_stream"),
        (combined("btcusdt@aggTrade", AGG_TRADE[:-1] + b',"pad":"' + b"x" * 600 + b'"}'),
         "oversized"),
    ],
)  # fmt: skip
def test_bad_frames_are_counted_and_skipped(frame: bytes, reason: str) -> None:
    decoder = FrameDecoder(EX, [make_stream("BTCUSDT", "aggTrade")], max_frame_bytes=500)
    assert decoder.decode(frame, RECV) == ()
    assert decoder.stats.skipped[reason] == 1
    assert sum(decoder.stats.skipped.values()) == 1
    # and the decoder keeps working
    after = decoder.decode(combined("btcusdt@aggTrade", AGG_TRADE), RECV)
    assert isinstance(after, tuple)
    assert len(after) == 1


def test_replies_are_not_events() -> None:
    decoder = FrameDecoder(EX, [], 1 << 20)
    assert decoder.decode(b'{"result":null,"id":1}', RECV) == wire.Reply(id=1)
    listed = decoder.decode(b'{"result":["btcusdt@aggTrade"],"id":3}', RECV)
    assert listed == wire.Reply(id=3, result=["btcusdt@aggTrade"])
    err = decoder.decode(b'{"error":{"code":2,"msg":"Invalid request"},"id":4}', RECV)
    assert isinstance(err, wire.Reply)
    assert decoder.stats.skipped["error_reply"] == 1


def test_every_simulator_payload_decodes_to_what_it_encodes() -> None:
    model = MarketModel(("BTCUSDT", "ETHUSDT"), seed=3)
    streams = [make_stream(s, t) for s in model.symbols for t in ("aggTrade", "bookTicker")]
    decoder = FrameDecoder(EX, streams, 1 << 20)
    seen = set()
    for step in range(500):
        for emission in model.step(1_700_000_000_000 + step):
            name = f"{emission.symbol.lower()}@{emission.suffix}"
            frame = combined(name, wire.encoder.encode(emission.payload))
            (event,) = decoder.decode(frame, RECV)  # type: ignore[misc]
            p = emission.payload
            if isinstance(p, wire.AggTrade):
                assert isinstance(event, Trade)
                assert (event.price, event.quantity, event.trade_id) == (p.p, p.q, p.a)
                assert event.side is (Side.SELL if p.m else Side.BUY)
            else:
                assert isinstance(p, wire.BookTicker)
                assert isinstance(event, Quote)
                assert (event.bid_price, event.ask_price, event.update_id) == (p.b, p.a, p.u)
            seen.add(type(event))
    assert seen == {Trade, Quote}
    assert sum(decoder.stats.skipped.values()) == 0


def test_simulator_payloads_are_byte_compatible_with_the_reference() -> None:
    for raw in (AGG_TRADE, BOOK_TICKER):
        decoded = wire.payload_decoder.decode(raw)
        assert wire.encoder.encode(decoded) == raw


@pytest.mark.skipif(not CAPTURE.exists(), reason=f"shared capture not found at {CAPTURE}")
def test_real_capture_decodes_without_a_skip() -> None:
    lines = (CAPTURE / "ws.txt").read_bytes().splitlines()
    url = lines[0].split(b" <-> ")[0].decode()
    names = url.split("streams=")[1].split("/")
    streams = [make_stream(n.split("@")[0].upper(), n.split("@", 1)[1]) for n in names]
    decoder = FrameDecoder(EX, streams, 1 << 20)
    events: list[Event] = []
    for line in lines[1:]:
        received, _, frame = line.partition(b": ")
        out = decoder.decode(frame, int(float(received) * 1e9))
        assert isinstance(out, tuple)
        events.extend(out)
    assert decoder.stats.skipped == dict.fromkeys(decoder.stats.skipped, 0)
    assert len(events) == len(lines) - 1
    kinds = {type(e) for e in events}
    assert kinds == {Trade, BookDelta, Candle, Quote}


def test_partial_depth_takes_n_from_the_stream_name() -> None:
    event = decode_one("depth20@100ms", "BTCUSDT", DEPTH)
    assert isinstance(event, BookSnapshot)
    assert event.depth == 20, "one ask level in the frame, but it is a top-20 stream"


def test_a_frame_seen_before_on_its_stream_is_dropped_once() -> None:
    stream = make_stream("BTCUSDT", "aggTrade")
    decoder = FrameDecoder(EX, [stream], 1 << 20)
    frame = combined(stream.name, AGG_TRADE)
    first = decoder.decode(frame, RECV)
    assert isinstance(first, tuple)
    assert len(first) == 1
    assert decoder.decode(frame, RECV + 1) == ()
    assert decoder.dedup.duplicates == 1
    assert decoder.last_seen == {stream.name: RECV + 1}, "a repeat still proves the stream alive"


@pytest.mark.parametrize(
    ("suffix", "payload", "ident"),
    [
        ("aggTrade", AGG_TRADE, 3477868433),
        ("trade", TRADE, 73701056),
        ("bookTicker", BOOK_TICKER, 11757092630476),
        ("depth@100ms", DEPTH, 359220619477),
        ("depth5", DEPTH, 359220619477),
        ("kline_1m", KLINE, 1626992760203),
        ("markPrice@1s", MARK_PRICE, 1791382993000),
        ("forceOrder", FORCE_ORDER, 1584059031426),
    ],
)
def test_held_frames_carry_the_streams_id_and_leave_the_cursor_alone(
    suffix: str, payload: bytes, ident: int
) -> None:
    symbol = "ETHUSDT" if suffix == "trade" else "SUSHIUSDT" if suffix == "kline_1m" else "BTCUSDT"
    stream = make_stream(symbol, suffix)
    decoder = FrameDecoder(EX, [stream], 1 << 20)
    held = decoder.decode_held(combined(stream.name, payload), RECV)
    assert isinstance(held, tuple)
    name, held_id, events = held
    assert (name, held_id, len(events)) == (stream.name, ident, 1)
    assert decoder.dedup.last(stream.name) == -1, "not delivered yet"
    assert decoder.dedup.accept(name, held_id)
    assert decoder.decode(combined(stream.name, payload), RECV) == ()


def test_mark_price_arrays_skip_delisted_rows() -> None:
    stream = make_stream("BTCUSDT", "markPrice")
    decoder = FrameDecoder(EX, [stream], 1 << 20)
    delisted = MARK_PRICE.replace(b'"T":1791388800000', b'"T":0').replace(b"BTCUSDT", b"OLDUSDT")
    frame = combined(stream.name, b"[" + MARK_PRICE + b"," + delisted + b"]")
    events = decoder.decode(frame, RECV)
    assert isinstance(events, tuple)
    assert [e.symbol for e in events] == ["BTCUSDT"]
    assert decoder.decode(frame, RECV) == (), "the same array again is a repeat"
