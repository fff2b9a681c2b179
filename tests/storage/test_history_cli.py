"""`raven history`: over gRPC against a real server, and straight from the store file."""

from __future__ import annotations

import asyncio
import csv
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from raven.api.history import HistoryService
from raven.cli import main
from raven.config import HistoryConfig
from raven.model import Event
from raven.storage.embedded import DuckDBStore
from raven.storage.export import NAMES, export_row, iso
from raven.storage.history import HistoryReader
from tests.storage.events import EX, Market
from tests.storage.grpc_history import history_server

EVENTS = Market(seed=4).events(2000)
START, END = iso(EVENTS[0].receive_time), str(EVENTS[-1].receive_time + 1)
ALL_KINDS = "trade,quote,book,candle,funding,liquidation,status"


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    path = tmp_path / "raven.duckdb"
    store = DuckDBStore(path)
    await store.write([(e.receive_time, e) for e in EVENTS])
    await store.close()
    return path


def as_text(event: Event) -> dict[str, str]:
    """A row as the CSV holds it (everything text, absent as empty)."""
    values = export_row(event)
    return {k: "" if v is None else str(v) for k, v in values.items()}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return [{k: v for k, v in r.items() if v != ""} for r in csv.DictReader(f)]


def expected_csv(events: list[Event]) -> list[dict[str, str]]:
    return [{k: v for k, v in as_text(e).items() if v != ""} for e in events]


def test_direct_from_the_file_to_csv(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    argv = ["history", "--db", str(db), "--symbols", "BTCUSDT,ETHUSDT", "--kinds", ALL_KINDS,
            "--start", START, "--end", END, "--csv", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert read_csv(out) == expected_csv(EVENTS)


def test_direct_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["history", "--db", str(tmp_path / "none.duckdb"), "--symbols", "BTCUSDT"]
    assert main(argv) == 2
    assert "no embedded store at" in capsys.readouterr().err
    assert main(["history", "--symbols", "BTCUSDT", "--start", "yesterday"]) == 2
    assert "bad time 'yesterday'" in capsys.readouterr().err


async def run_cli(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "raven", "history", *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, (out + err).decode()


async def test_over_grpc_to_parquet_following_cursors(db: Path, tmp_path: Path) -> None:
    store = DuckDBStore(db, read_only=True)
    # A server that caps each call at 300 events: the CLI must follow the cursor.
    config = HistoryConfig(max_events=300, batch_size=64)
    service = HistoryService(HistoryReader(store), {EX: frozenset({"BTCUSDT", "ETHUSDT"})}, config)
    out = tmp_path / "out.parquet"
    async with history_server(service) as target:
        code, text = await run_cli(
            "--target", target, "--symbols", "*", "--kinds", ALL_KINDS, "--start", START,
            "--end", END, "--parquet", str(out),
        )  # fmt: skip
        assert code == 0, text
        assert f"wrote {len(EVENTS):,} events" in text
        code, text = await run_cli("--target", target, "--symbols", "DOGEUSDT")
        assert code == 2
        assert "unknown symbol 'DOGEUSDT'" in text
    await store.close()
    assert service.requests > len(EVENTS) // 300
    rows = pq.read_table(out).to_pylist()
    assert rows == [{n: export_row(e).get(n) for n in NAMES} for e in EVENTS]


async def test_a_table_on_the_terminal(db: Path) -> None:
    code, text = await run_cli(
        "--db", str(db), "--symbols", "ETHUSDT", "--kinds", "trade", "--start", START,
        "--end", END, "--limit", "3",
    )  # fmt: skip
    assert code == 0, text
    trades = [e for e in EVENTS if e.kind.name == "TRADE" and e.symbol == "ETHUSDT"][:3]
    for trade in trades:
        assert iso(trade.receive_time) in text
    assert text.count("trade") >= 3
