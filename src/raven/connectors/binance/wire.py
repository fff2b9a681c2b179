"""Binance USD-M Futures wire structs, with the venue's own field names.

One struct per payload of `binance-usdm-futures.md`. The event type `e` is
the tag of a tagged union, so one decoder built once handles every stream;
unknown keys are ignored (Binance adds fields over time). Field order is
the venue's, so the simulator encodes byte-compatible payloads from the
same structs. Optional fields that older payloads lack have defaults.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

_Levels: TypeAlias = list[tuple[str, str]]  # [[price, quantity], ...]


class _Wire(msgspec.Struct, tag_field="e", gc=False):
    pass


class AggTrade(_Wire, tag="aggTrade"):
    E: int  # event time, ms
    a: int  # aggregate trade id
    s: str  # symbol
    p: str  # price
    q: str  # quantity
    nq: str = ""  # quantity without RPI orders (added 2025)
    f: int = 0  # first trade id
    l: int = 0  # last trade id  # noqa: E741 - the venue's name
    T: int = 0  # trade time, ms
    m: bool = False  # buyer is the maker: the aggressor sold
    st: int = 0  # symbol type


class RawTrade(_Wire, tag="trade"):
    E: int  # event time, ms
    T: int  # trade time, ms
    s: str  # symbol
    t: int  # trade id
    p: str  # price
    q: str  # quantity
    X: str  # MARKET, INSURANCE_FUND or ADL
    m: bool  # buyer is the maker


class BookTicker(_Wire, tag="bookTicker"):
    u: int  # update id, in the id space of depth updates
    s: str  # symbol
    ps: str = ""  # pair
    b: str = ""  # best bid price
    B: str = ""  # best bid quantity
    a: str = ""  # best ask price
    A: str = ""  # best ask quantity
    T: int = 0  # transaction time, ms
    E: int = 0  # event time, ms
    st: int = 0  # symbol type


class DepthUpdate(_Wire, tag="depthUpdate"):
    """Diff depth (`@depth...`) or partial depth (`@depth5/10/20...`): only
    the stream name tells them apart."""

    E: int  # event time, ms
    T: int  # transaction time, ms
    s: str  # symbol
    ps: str = ""  # pair
    U: int = 0  # first update id in this event
    u: int = 0  # final update id in this event
    pu: int = 0  # final update id of the previous event of this stream
    b: _Levels = []  # bids: absolute quantities, "0" removes
    a: _Levels = []  # asks
    st: int = 0  # symbol type


class KlineBar(msgspec.Struct, gc=False):
    t: int  # bar open time, ms
    T: int  # bar close time, ms (open + interval - 1)
    s: str  # symbol
    i: str  # interval
    f: int  # first trade id
    L: int  # last trade id
    o: str  # open
    c: str  # close
    h: str  # high
    l: str  # low  # noqa: E741 - the venue's name
    v: str  # base volume
    n: int  # number of trades
    x: bool  # bar closed (final push)
    q: str  # quote volume
    V: str  # taker buy base volume
    Q: str  # taker buy quote volume
    B: str = "0"  # ignore


class Kline(_Wire, tag="kline"):
    E: int  # event time, ms
    s: str  # symbol
    k: KlineBar


class MarkPrice(_Wire, tag="markPriceUpdate"):
    E: int  # event time, ms
    s: str  # symbol
    p: str  # mark price
    ap: str = ""  # mark price moving average (added 2025)
    P: str = ""  # estimated settle price
    i: str = ""  # index price
    r: str = ""  # funding rate
    T: int = 0  # next funding time, ms (0 for delisted symbols)
    st: int = 0  # symbol type


class ForceOrderBody(msgspec.Struct, gc=False):
    s: str  # symbol
    S: str  # side: BUY or SELL
    o: str  # order type
    f: str  # time in force
    q: str  # original quantity
    p: str  # price
    ap: str  # average price
    X: str  # order status
    l: str  # last filled quantity  # noqa: E741 - the venue's name
    z: str  # filled accumulated quantity
    T: int  # trade time, ms


class ForceOrder(_Wire, tag="forceOrder"):
    E: int  # event time, ms
    o: ForceOrderBody


Payload: TypeAlias = AggTrade | RawTrade | BookTicker | DepthUpdate | Kline | MarkPrice | ForceOrder


class Combined(msgspec.Struct, gc=False):
    """A combined-stream frame: `{"stream": name, "data": payload}`."""

    stream: str
    data: Payload | list[MarkPrice]  # list: `!markPrice@arr`


class ErrorBody(msgspec.Struct):
    code: int
    msg: str


class Reply(msgspec.Struct):
    """Reply to SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY."""

    id: int | None = None
    result: list[str] | None = None
    error: ErrorBody | None = None


class Request(msgspec.Struct, omit_defaults=True):
    """A live subscription message sent to the venue."""

    method: str
    params: list[str | bool] = []
    id: int = 0


class DepthSnapshot(msgspec.Struct, gc=False):
    """`GET /fapi/v1/depth` response (no symbol field)."""

    lastUpdateId: int
    E: int  # message output time, ms
    T: int  # transaction time, ms
    bids: _Levels
    asks: _Levels


combined_decoder = msgspec.json.Decoder(Combined)
payload_decoder = msgspec.json.Decoder(Payload | list[MarkPrice])
reply_decoder = msgspec.json.Decoder(Reply)
depth_snapshot_decoder = msgspec.json.Decoder(DepthSnapshot)
encoder = msgspec.json.Encoder()


class SymbolFilter(msgspec.Struct, gc=False):
    """One of a symbol's `filters`; only the fields Raven reads (others ignored)."""

    filterType: str  # PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, MIN_NOTIONAL, ...
    tickSize: str = ""  # PRICE_FILTER: price increment
    minPrice: str = ""  # PRICE_FILTER
    stepSize: str = ""  # LOT_SIZE: quantity increment
    minQty: str = ""  # LOT_SIZE


class SymbolInfo(msgspec.Struct, gc=False):
    symbol: str
    status: str = ""  # TRADING, SETTLING, ...
    filters: list[SymbolFilter] = []


class RateLimit(msgspec.Struct, gc=False):
    rateLimitType: str  # REQUEST_WEIGHT, ORDERS
    interval: str  # SECOND, MINUTE, DAY
    intervalNum: int
    limit: int


class ExchangeInfo(msgspec.Struct, gc=False):
    """`GET /fapi/v1/exchangeInfo`, the parts Raven reads."""

    rateLimits: list[RateLimit] = []
    symbols: list[SymbolInfo] = []


class RestError(msgspec.Struct, gc=False):
    """A REST error body: `{"code": -1003, "msg": "..."}`."""

    code: int = 0
    msg: str = ""


exchange_info_decoder = msgspec.json.Decoder(ExchangeInfo)
rest_error_decoder = msgspec.json.Decoder(RestError)
