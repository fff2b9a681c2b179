"""Each networked scenario's machinery, end to end with tiny parameters.

These check that the harness works (rows exist, hold finite numbers, the
report writes), never what the numbers are: benchmarks don't fail on a number.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import msgspec
import pytest

from raven.bench import fanout, latency, livestore, memory, storage
from raven.bench.base import Result
from raven.bench.report import Report, Row, markdown, new_report, write

pytestmark = pytest.mark.slow


def check_rows(result: Result, scenario: str, positive: tuple[str, ...]) -> dict[str, Row]:
    """Every row finite, non-negative but for a growth; those whose metric starts with
    `positive`, > 0."""
    assert result.rows
    rows = {r.metric: r for r in result.rows}
    for row in result.rows:
        assert row.scenario == scenario
        assert math.isfinite(row.value), row
        assert row.value >= 0 or "growth" in row.metric, row
        if row.baseline is not None:
            assert math.isfinite(row.baseline), row
            assert row.baseline > 0, row
            assert row.baseline_label
        if row.metric.startswith(positive):
            assert row.value > 0, row
    return rows


def check_report(result: Result, tmp_path: Path) -> None:
    report = new_report(tmp_path, "quick", "test")
    report.rows.extend(result.rows)
    report.notes.extend(result.notes)
    json_path, md_path = tmp_path / "out" / "report.json", tmp_path / "BENCHMARKS.md"
    write(report, json_path, md_path)
    back = msgspec.json.decode(json_path.read_bytes(), type=Report)
    assert back.rows == result.rows
    text = md_path.read_text()
    assert all(f"| {r.metric} |" in text for r in result.rows)
    assert markdown(report) in text


def test_latency(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = latency.run((200,), (1, 2), warmup=0.3, window=1.5, echo_calls=30, n_symbols=3)
    rows = check_rows(result, "latency", ("latency p50", "events received", "input rate",
                                          "loopback"))  # fmt: skip
    for name in ("p50", "p90", "p99", "p99.9", "max"):
        assert f"latency {name}, 200 ev/s, 2 clients" in rows
    assert "drops, 200 ev/s, 1 client" in rows
    assert rows["server CPU per delivery, 200 ev/s, 2 clients"].value > 0
    assert rows["latency p50, 200 ev/s, 1 client"].baseline_label == "bare gRPC round trip p50"
    # Who used the cores: the simulator's CPU is read from /proc by the load client.
    note = rows["input rate achieved, 200 ev/s, 1 client"].note
    assert re.search(r"simulator \d+%, load client \d+%", note), note
    # The server's gRPC write waits, from its own histogram over the window.
    note = rows["latency p99, 200 ev/s, 2 clients"].note
    assert re.search(
        r"gRPC write of a frame waited p99 <= [\d.]+ ms for its completion \([\d,]+ writes\)", note
    ), note
    # /metrics timed after the windows: every scrape answered, sizes and times reported.
    scrape = rows["/metrics scrape p50, 200 ev/s in"]
    assert 0 < scrape.value < 60_000
    assert re.search(r"max [\d.]+ ms over 20 scrapes of [\d,]+ B", scrape.note), scrape.note
    check_report(result, tmp_path)
    # A progress line per window, as it ends.
    out = capsys.readouterr().out
    for label in ("200 ev/s, 1 client", "200 ev/s, 2 clients"):
        assert re.search(rf"\[\d\d:\d\d\] {label}: p50 [\d.]+ ms, p99 [\d.]+ ms, 0 drops", out), out


def test_fanout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = fanout.run((200,), (1, 3), warmup=0.3, window=1.5, baseline_s=0.5, n_symbols=3)
    rows = check_rows(result, "fanout", ("deliveries",))
    assert set(rows) == {
        "highest sustained input rate, 1 client", "deliveries across clients, 1 client",
        "highest sustained input rate, 3 clients", "deliveries across clients, 3 clients",
        "server CPU per delivery, 1 client", "server CPU per delivery, 3 clients",
    }  # fmt: skip
    assert rows["server CPU per delivery, 3 clients"].value > 0
    assert rows["deliveries across clients, 3 clients"].baseline_label.startswith("bare gRPC")
    assert any("3 clients, steps asked" in n for n in result.notes)
    check_report(result, tmp_path)
    out = capsys.readouterr().out
    for who in ("1 client", "3 clients"):
        assert f"step 1/1, 200 events/s asked, {who}: sustained" in out, out


def test_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = memory.run(seconds=3.0, every=0.5, rate=200, n_symbols=3, clients=2)
    rows = check_rows(result, "memory", ("server RSS after", "server RSS with"))
    assert "server RSS growth per minute (second half)" in rows
    assert any("client queue depth at the samples: peak" in n for n in result.notes)
    check_report(result, tmp_path)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.search(r"\] 3 of 3 s: server [\d.]+ MB resident, [\d,]+ events queued", last), last


def test_slope_is_least_squares() -> None:
    points = [(0.0, 100), (30.0, 130), (60.0, 160), (90.0, 190)]
    assert memory.slope_per_minute(points) == pytest.approx(60.0)
    assert memory.slope_per_minute(points[:1]) == 0.0


def test_live_store_cost_and_write_cadence() -> None:
    off, on = livestore.measure(2.0, rate=1000, n_symbols=3)
    assert (off.backend, on.backend) == ("none", "embedded")
    assert off.writes_per_s == 0.0
    assert on.written_per_s > 0
    # A partial batch waits for the 1 s flush interval: about one write a second,
    # not one per write (the bug this scenario watches made ~100 a second).
    assert on.writes_per_s <= 3.0, on
    row = storage.live_row((off, on))
    assert row.value > 0
    assert row.baseline is not None
    assert row.baseline > 0
