"""Line protocol, InfluxQL and Flux text, and the parsers of InfluxDB's answers (no I/O)."""

from __future__ import annotations

import pytest

from raven.model import Status, Trade
from raven.storage import flux, influxql
from raven.storage.base import ReadQuery, StoreError, Table
from raven.storage.lineproto import LineEncoder, escape_tag, parse_levels, quote_string
from raven.types import Side, StatusKind
from tests.storage.influx2 import annotated_csv, parse_lines


def test_escaping_follows_line_protocol() -> None:
    assert escape_tag("a b,c=d") == r"a\ b\,c\=d"
    assert quote_string('say "hi" \\ bye\n') == '"say \\"hi\\" \\\\ bye\n"'
    for bad in ("two\nlines", "ends with \\"):
        with pytest.raises(ValueError, match="can't be written"):
            escape_tag(bad)


def test_a_point_per_record_with_tags_fields_and_its_own_time() -> None:
    encoder = LineEncoder(float_fields=False)
    status = Status("ex 1", "", StatusKind.FEED_DISCONNECTED, 'lost "ws", retry=1', 5, 6)
    trade = Trade("ex", "BTC,USD", "1.50", "2", Side.BUY, 9, 1, 2)
    lines = list(encoder.lines([(10, status), (11, trade)]))
    assert lines == [
        'status,exchange=ex\\ 1 status="feed_disconnected",detail="lost \\"ws\\", retry=1",'
        "exchange_time=5i,receive_time=6i 10",  # no symbol tag: line protocol has no empty tags
        'trade,exchange=ex,symbol=BTC\\,USD,side=buy price="1.50",quantity="2",trade_id=9i,'
        "exchange_time=1i,receive_time=2i,first_trade_id=0i,last_trade_id=0i 11",
    ]
    # An independent parser reads back what was meant.
    (point, fields), _ = parse_lines("\n".join(lines))
    assert point == ("status", (("exchange", "ex 1"),), 10)
    assert fields["detail"] == ('lost "ws", retry=1', "string")


def test_batches_split_by_size_but_never_inside_a_point() -> None:
    encoder = LineEncoder()
    trade = Trade("ex", "S", "1", "2", Side.SELL, 1, 1, 1)
    bodies = list(encoder.bodies([(i, trade) for i in range(50)], max_bytes=600))
    assert len(bodies) > 1
    assert sum(len(b.split(b"\n")) for b in bodies) == 50
    assert all(len(b) <= 600 for b in bodies)


def test_levels_text() -> None:
    assert parse_levels("1.0:2,0.9:0") == (("1.0", "2"), ("0.9", "0"))
    assert parse_levels("") == ()


def test_influxql_quotes_identifiers_and_literals() -> None:
    q = influxql.select(ReadQuery(Table.CANDLE, "it's", ("A", ""), 5, 9, 10, ("1m",)))
    assert q == (
        'SELECT * FROM "candle" WHERE "exchange" = \'it\\\'s\' AND ("symbol" = \'A\' OR '
        "\"symbol\" = '') AND (\"interval\" = '1m') AND time >= 5 AND time < 9 "
        "ORDER BY time ASC LIMIT 10"
    )


def test_influxql_errors_are_store_errors() -> None:
    with pytest.raises(StoreError, match="error parsing query"):
        influxql.parse(b'{"results":[{"statement_id":0,"error":"error parsing query: x"}]}')
    with pytest.raises(StoreError, match="unreadable"):
        influxql.parse(b"<html>")


def test_flux_query_escapes_strings() -> None:
    q = flux.select("b", ReadQuery(Table.TRADE, 'x"${y}', ("A", ""), 5, 9, 10))
    assert 'r.exchange == "x\\"\\${y}"' in q
    assert '(r.symbol == "A" or not exists r.symbol)' in q
    assert "range(start: time(v: 5), stop: time(v: 9))" in q


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2021-07-01T00:00:00.5Z", 1_625_097_600_500_000_000),
        ("2021-07-01T00:00:00.123456789Z", 1_625_097_600_123_456_789),
        ("2021-07-01T02:00:00.000000001+02:00", 1_625_097_600_000_000_001),
    ],
)
def test_rfc3339_to_ns(text: str, ns: int) -> None:
    assert flux.rfc3339_ns(text) == ns


def test_annotated_csv_with_defaults_nulls_and_several_tables() -> None:
    body = (
        "#datatype,string,long,dateTime:RFC3339,string,long,boolean,double\r\n"
        "#group,false,false,false,true,false,false,false\r\n"
        "#default,_result,,,,,,\r\n"
        ",result,table,_time,symbol,n,ok,x\r\n"
        ',,0,2021-07-01T00:00:00.000000002Z,"A,B",7,true,1.5\r\n'
        ",,0,2021-07-01T00:00:00Z,,,,\r\n"
        "\r\n"
        "#datatype,string,long,string\r\n"
        "#group,false,false,false\r\n"
        "#default,_result,,\r\n"
        ",result,table,_value\r\n"
        ",,1,hello\r\n"
    )
    rows = list(flux.rows(body))
    assert rows[0] == {"result": "_result", "table": 0, "_time": 1_625_097_600_000_000_002,
                       "symbol": "A,B", "n": 7, "ok": True, "x": 1.5}  # fmt: skip
    assert rows[1]["n"] is None
    assert rows[1]["symbol"] == ""
    assert rows[2] == {"result": "_result", "table": 1, "_value": "hello"}


def test_a_flux_error_table_is_a_store_error() -> None:
    body = (
        "#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n"
        ",error,reference\r\n,boom,\r\n"
    )
    with pytest.raises(StoreError, match="boom"):
        list(flux.rows(body))


def test_the_2x_endpoint_writes_csv_the_parser_reads() -> None:
    rows = [{"_time": (1_625_097_600_000_000_100, "dateTime:RFC3339Nano"), "v": ("a\nb", "string")}]
    (row,) = flux.rows(annotated_csv(rows))
    assert row["v"] == "a\nb"
