"""How the connector is put together from its config (no network)."""

from __future__ import annotations

import pytest

from raven.connectors.binance.connector import BinanceFuturesConnector
from raven.connectors.binance.streams import Route
from raven.model import Event
from tests.connectors.binance.running import connector_config

WS, REST = "ws://127.0.0.1:1", "http://127.0.0.1:1"


def build(symbols: list[str], streams: list[str], **overrides: object) -> BinanceFuturesConnector:
    events: list[Event] = []
    return BinanceFuturesConnector(
        connector_config(WS, REST, symbols, streams, **overrides), events.append
    )


def test_connections_by_route_and_stream_limit() -> None:
    symbols = [f"S{i}USDT" for i in range(5)]
    connector = build(
        symbols, ["aggTrade", "bookTicker", "depth@100ms"], max_streams_per_connection=4
    )
    labels = [(c.label, c.route, len(c.streams)) for c in connector.connections]
    assert labels == [
        ("binance_futures/public#0", Route.PUBLIC, 4),
        ("binance_futures/public#1", Route.PUBLIC, 4),
        ("binance_futures/public#2", Route.PUBLIC, 2),
        ("binance_futures/market#0", Route.MARKET, 4),
        ("binance_futures/market#1", Route.MARKET, 1),
    ]
    first = connector.connections[0]
    assert first.url == (
        "ws://127.0.0.1:1/public/stream?streams="
        "s0usdt@bookTicker/s1usdt@bookTicker/s2usdt@bookTicker/s3usdt@bookTicker"
    )
    assert first.watched == [s.name for s in first.streams], "bookTicker is busy by default"
    assert connector.connections[3].watched == [], "aggTrade may be quiet"
    assert sorted(connector.books.stats) == symbols, "a book per diff depth symbol"


def test_one_diff_depth_stream_per_book() -> None:
    with pytest.raises(ValueError, match="more than one diff depth stream"):
        build(["BTCUSDT"], ["depth@100ms", "depth@0ms"])
    assert build(["BTCUSDT"], ["depth@100ms", "depth5"]).books.stats


def test_unknown_stream_types_are_named() -> None:
    with pytest.raises(ValueError, match=r"busy_streams: unknown stream type.*'bookticker'"):
        build(["BTCUSDT"], ["aggTrade"], busy_streams=["bookticker"])
    with pytest.raises(ValueError, match="unsupported Binance stream 'depth7'"):
        build(["BTCUSDT"], ["depth7"])


def test_a_resync_of_a_symbol_without_a_book_changes_nothing() -> None:
    connector = build(["BTCUSDT"], ["aggTrade"])
    connector.request_resync("BTCUSDT", "test")
    assert connector.books.stats == {}
