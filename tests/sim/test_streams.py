"""Every stream over real WebSockets: payload shapes against the reference,
routes, URL forms and the live subscription messages."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec
import pytest

from raven.connectors.binance import wire
from raven.sim.capture import split_combined
from tests.sim import reference
from tests.sim.conftest import StartSim
from tests.sim.helpers import next_frame, read_events

_decode = msgspec.json.Decoder(dict[str, Any])
_decode_rows = msgspec.json.Decoder(list[dict[str, Any]])

PUBLIC = [
    "btcusdt@trade", "btcusdt@bookTicker", "btcusdt@depth@0ms", "btcusdt@depth@100ms",
    "btcusdt@depth", "btcusdt@depth@500ms", "btcusdt@depth5", "btcusdt@depth10@100ms",
    "btcusdt@depth20@500ms",
]  # fmt: skip
MARKET = [
    "btcusdt@aggTrade", "btcusdt@kline_1m", "btcusdt@markPrice@1s", "btcusdt@markPrice",
    "btcusdt@forceOrder", "!markPrice@arr@1s", "!forceOrder@arr",
]  # fmt: skip
REFERENCE = {
    "trade": reference.TRADE, "bookTicker": reference.BOOK_TICKER, "depth": reference.DEPTH,
    "aggTrade": reference.AGG_TRADE, "kline": reference.KLINE,
    "markPrice": reference.MARK_PRICE, "forceOrder": reference.FORCE_ORDER,
}  # fmt: skip


def shape(value: Any) -> Any:
    """Key order and value types, recursively; levels lists become "levels"."""
    if isinstance(value, dict):
        return [(k, shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        assert all(isinstance(x, list) and len(x) == 2 for x in value), value
        assert all(isinstance(p, str) and isinstance(q, str) for p, q in value), value
        return "levels"
    return type(value).__name__


def reference_for(stream: str) -> bytes:
    suffix = stream.partition("@")[2]
    for prefix, payload in REFERENCE.items():
        if suffix.startswith(prefix):
            return payload
    raise AssertionError(stream)


def test_reference_examples_round_trip_byte_for_byte() -> None:
    for payload in REFERENCE.values():
        assert wire.encoder.encode(wire.payload_decoder.decode(payload)) == payload
    snapshot = wire.depth_snapshot_decoder.decode(reference.DEPTH_SNAPSHOT)
    assert wire.encoder.encode(snapshot) == reference.DEPTH_SNAPSHOT


async def test_every_stream_has_the_reference_shape(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim(liquidation_share=0.3, rate=600.0)
    seen: dict[str, bytes] = {}
    async with (
        http.ws_connect(f"{sim.ws_url}/public/stream?streams={'/'.join(PUBLIC)}") as public,
        http.ws_connect(f"{sim.ws_url}/market/stream?streams={'/'.join(MARKET)}") as market,
    ):
        for ws, names in ((public, PUBLIC), (market, MARKET)):
            while set(names) - set(seen):
                msg = await next_frame(ws)
                stream, data = split_combined(msg.data.encode())
                seen.setdefault(stream, data)
    for stream, data in seen.items():
        # compact and in the venue's key order: our encoding of what we sent is what we sent
        payload = wire.payload_decoder.decode(data)
        assert wire.encoder.encode(payload) == data, stream
        if stream.startswith("!markPrice"):
            rows = _decode_rows.decode(data)
            assert rows
            assert {r["s"] for r in rows} == set(sim.config.symbols)
            assert all(shape(r) == shape(_decode.decode(reference.MARK_PRICE)) for r in rows)
        else:
            expected = shape(_decode.decode(reference_for(stream.replace("!", "x@"))))
            assert shape(_decode.decode(data)) == expected, stream


async def test_partial_depth_frames_are_top_n_snapshots(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim()
    url = f"{sim.ws_url}/public/stream?streams=ethusdt@depth5@100ms/ethusdt@depth20"
    async with http.ws_connect(url) as ws:
        for stream, data in await read_events(ws, 6):
            n = 5 if stream.endswith("@100ms") else 20
            assert len(data["b"]) == n
            assert len(data["a"]) == n
            bids = [float(p) for p, _ in data["b"]]
            asks = [float(p) for p, _ in data["a"]]
            assert bids == sorted(bids, reverse=True)
            assert asks == sorted(asks)
            assert bids[0] < asks[0]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/public/stream", {"btcusdt@bookTicker"}),  # aggTrade lives on /market: silent
        ("/market/stream", {"btcusdt@aggTrade"}),
        ("/stream", {"btcusdt@bookTicker"}),  # no route: /public streams only
    ],
)
async def test_routes(
    start_sim: StartSim, http: aiohttp.ClientSession, path: str, expected: set[str]
) -> None:
    sim = await start_sim(trade_share=0.5)
    names = "btcusdt@aggTrade/btcusdt@bookTicker/BTCUSDT@trade/nopeusdt@bookTicker"
    async with http.ws_connect(f"{sim.ws_url}{path}?streams={names}") as ws:
        events = await read_events(ws, 60)
        assert {stream for stream, _ in events} == expected
        await ws.send_str('{"method":"LIST_SUBSCRIPTIONS","id":9}')
        while (msg := await next_frame(ws)).data.startswith('{"stream"'):
            pass
        assert msg.data == '{"result":["' + names.replace("/", '","') + '"],"id":9}'


async def test_raw_form_sends_the_payload_alone(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim()
    async with http.ws_connect(f"{sim.ws_url}/public/ws/btcusdt@bookTicker/ethusdt@depth") as ws:
        kinds: set[str] = set()
        while kinds != {"bookTicker", "depthUpdate"}:
            body = _decode.decode((await next_frame(ws)).data)
            assert "stream" not in body
            kinds.add(body["e"])


async def test_live_subscription_messages(start_sim: StartSim, http: aiohttp.ClientSession) -> None:
    sim = await start_sim(max_incoming_per_s=100)  # more requests than the venue's 10/s
    async with http.ws_connect(f"{sim.ws_url}/public/ws") as ws:

        async def ask(request: str) -> str:
            await ws.send_str(request)
            while True:  # data frames of earlier subscriptions may come first
                text: str = (await next_frame(ws)).data
                if '"id"' in text and '"e":' not in text:
                    return text

        sub = '{"method":"SUBSCRIBE","params":["btcusdt@bookTicker","ethusdt@bookTicker"],"id":1}'
        assert await ask(sub) == '{"result":null,"id":1}'
        assert _decode.decode((await next_frame(ws)).data)["e"] == "bookTicker"
        listed = await ask('{"method":"LIST_SUBSCRIPTIONS","id":3}')
        assert listed == '{"result":["btcusdt@bookTicker","ethusdt@bookTicker"],"id":3}'
        unsub = '{"method":"UNSUBSCRIBE","params":["btcusdt@bookTicker"],"id":312}'
        assert await ask(unsub) == '{"result":null,"id":312}'
        for _ in range(20):  # the reply was queued after every earlier btc frame
            assert _decode.decode((await next_frame(ws)).data)["s"] == "ETHUSDT"
        combined = '{"method":"SET_PROPERTY","params":["combined",true],"id":5}'
        assert await ask(combined) == '{"result":null,"id":5}'
        assert (await next_frame(ws)).data.startswith('{"stream":"ethusdt@bookTicker","data":')
        assert await ask('{"method":"GET_PROPERTY","params":["combined"],"id":6}') == (
            '{"result":true,"id":6}'
        )
        errors = {
            '{"method":"SET_PROPERTY","params":["colour",true],"id":7}': (0, 7),
            '{"method":"SET_PROPERTY","params":["combined","yes"],"id":8}': (1, 8),
            '{"method":"SUBSCRIBE","params":"btcusdt@trade","id":9}': (1, 9),
            '{"method":"FLY","id":10}': (2, 10),
            '{"method":"SUBSCRIBE","params":[1],"id":11}': (2, 11),
        }
        for request, (code, req_id) in errors.items():
            reply = _decode.decode(await ask(request))
            assert reply["id"] == req_id
            assert reply["error"]["code"] == code, request
        await ws.send_str("{not json")
        while '"error"' not in (text := (await next_frame(ws)).data):
            pass
        assert _decode.decode(text)["error"]["code"] == 3


async def test_liquidations_at_most_one_per_symbol_per_second(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim(trade_share=0.8, liquidation_share=0.5)
    url = f"{sim.ws_url}/market/stream?streams=btcusdt@forceOrder/!forceOrder@arr"
    async with http.ws_connect(url) as ws:
        events = await read_events(ws, 6)
    single = [d for s, d in events if s == "btcusdt@forceOrder"]
    seconds = [d["E"] // 1000 for d in single]
    assert seconds == sorted(set(seconds)), "one push per symbol per wall-clock second at most"
    for data in single:
        body = data["o"]
        assert body["z"] == body["q"]
        assert (body["o"], body["f"], body["X"]) == ("LIMIT", "IOC", "FILLED")
        worse = (
            float(body["p"]) > float(body["ap"])
            if body["S"] == "BUY"
            else (float(body["p"]) < float(body["ap"]))
        )
        assert worse, "the bankruptcy price is beyond the average fill"
    everyone = [d for s, d in events if s == "!forceOrder@arr"]
    assert {d["o"]["s"] for d in everyone} <= set(sim.config.symbols)


async def test_kline_bars_close_with_a_final_push(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim(trade_share=0.6)
    async with http.ws_connect(f"{sim.ws_url}/market/ws/ethusdt@kline_1s") as ws:
        bars: list[dict[str, Any]] = []
        while not any(b["k"]["x"] for b in bars[1:]) or bars[-1]["k"]["x"]:
            bars.append((await next_frame(ws)).json())
    final_at = max(i for i, b in enumerate(bars) if b["k"]["x"])
    final, after = bars[final_at]["k"], bars[final_at + 1]["k"]
    assert after["t"] == final["T"] + 1  # the next bar opens where the final one closed
    assert not any(b["k"]["x"] for b in bars[:final_at] if b["k"]["t"] == final["t"])
    url = f"{sim.rest_url}/fapi/v1/klines?symbol=ETHUSDT&interval=1s&startTime={final['t']}&limit=1"
    async with http.get(url) as r:
        (row,) = await r.json()
    # the final push is the bar REST reports: same OHLC, volume, trades
    assert row[:9] == [final["t"], final["o"], final["h"], final["l"], final["c"], final["v"],
                       final["T"], final["q"], final["n"]]  # fmt: skip
