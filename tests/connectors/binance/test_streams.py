"""Stream names, routes and how streams are spread over connections."""

from __future__ import annotations

import pytest

from raven.connectors.binance.streams import (
    Route,
    StreamType,
    combined_url,
    make_stream,
    plan_connections,
    plan_streams,
    route_of,
)

ROUTED = [
    ("aggTrade", StreamType.AGG_TRADE, Route.MARKET),
    ("trade", StreamType.TRADE, Route.PUBLIC),
    ("bookTicker", StreamType.BOOK_TICKER, Route.PUBLIC),
    ("depth", StreamType.DEPTH_DIFF, Route.PUBLIC),
    ("depth@100ms", StreamType.DEPTH_DIFF, Route.PUBLIC),
    ("depth@500ms", StreamType.DEPTH_DIFF, Route.PUBLIC),
    ("depth@0ms", StreamType.DEPTH_DIFF, Route.PUBLIC),
    ("depth5", StreamType.DEPTH_PARTIAL, Route.PUBLIC),
    ("depth10@100ms", StreamType.DEPTH_PARTIAL, Route.PUBLIC),
    ("depth20@500ms", StreamType.DEPTH_PARTIAL, Route.PUBLIC),
    ("kline_1m", StreamType.KLINE, Route.MARKET),
    ("kline_1M", StreamType.KLINE, Route.MARKET),
    ("markPrice", StreamType.MARK_PRICE, Route.MARKET),
    ("markPrice@1s", StreamType.MARK_PRICE, Route.MARKET),
    ("forceOrder", StreamType.FORCE_ORDER, Route.MARKET),
]


@pytest.mark.parametrize(("suffix", "kind", "route"), ROUTED)
def test_each_stream_has_its_type_and_route(suffix: str, kind: StreamType, route: Route) -> None:
    stream = make_stream("BTCUSDT", suffix)
    assert (stream.name, stream.symbol) == (f"btcusdt@{suffix}", "BTCUSDT")
    assert (stream.type, stream.route) == (kind, route)
    assert route_of(stream.name) is route


def test_partial_depth_knows_its_n() -> None:
    assert make_stream("X", "depth20@100ms").depth == 20
    assert make_stream("X", "depth5").depth == 5
    assert make_stream("X", "depth@100ms").depth == 0


@pytest.mark.parametrize("suffix", ["depth15", "kline_2m", "ticker", "depth@250ms", "AGGTRADE"])
def test_unsupported_streams_are_named(suffix: str) -> None:
    with pytest.raises(ValueError, match=f"unsupported Binance stream '{suffix}'"):
        make_stream("BTCUSDT", suffix)


def test_streams_are_spread_over_connections_by_route_and_limit() -> None:
    symbols = tuple(f"S{i:04d}USDT" for i in range(1100))
    streams = plan_streams(symbols, ("aggTrade", "bookTicker", "depth@100ms"))
    plan = plan_connections(streams, 1024)
    shape = [(route, len(chunk)) for route, chunk in plan]
    assert shape == [
        (Route.PUBLIC, 1024), (Route.PUBLIC, 1024), (Route.PUBLIC, 152),
        (Route.MARKET, 1024), (Route.MARKET, 76),
    ]  # fmt: skip
    for route, chunk in plan:
        assert all(s.route is route for s in chunk)
    assert sorted(s.name for _, chunk in plan for s in chunk) == sorted(s.name for s in streams)
    assert len(plan_connections(plan_streams(("BTCUSDT",), ("aggTrade",)), 1024)) == 1


def test_urls() -> None:
    assert combined_url("wss://127.0.0.1:8800/", Route.MARKET, ["a@aggTrade", "b@aggTrade"]) == (
        "wss://127.0.0.1:8800/market/stream?streams=a@aggTrade/b@aggTrade"
    )
    assert combined_url("ws://h:1", Route.PUBLIC, []) == "ws://h:1/public/stream"
