"""The command line: helpful --help, one-line errors with exit code 2, `raven tail`."""

from __future__ import annotations

import argparse
import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from raven.app import RavenApp
from raven.cli import build_parser, main
from raven.client.tail import TailView, run_tail
from raven.model import BookDelta, BookSnapshot, Candle, Quote, Trade
from raven.sim.server import Simulator
from raven.types import Kind, Side
from tests.helpers import wait_until


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "sim", "tail", "demo"):
        assert command in out
    assert "RAVEN_LOG" in out


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_option_explains_itself(command: str) -> None:
    parser = subcommands()[command]
    assert parser.description or parser.format_help()
    for action in parser._actions:
        assert action.help, f"raven {command} {action.option_strings}: no help text"


def one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    errors = [line for line in lines if line.startswith(f"raven {command}: error: ")]
    assert len(errors) == 1, err
    return errors[0]


def test_a_misspelt_option_is_usage_and_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["serve", "--confg", "raven.toml"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    line = one_error_line(err, "serve")
    assert "unrecognized arguments: --confg raven.toml" in line
    assert err.startswith("usage: raven serve")


def test_a_missing_config_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.toml"
    assert main(["serve", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == f"raven serve: error: config file not found: {missing}\n"


def test_a_bad_config_key_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "raven.toml"
    path.write_text("[monitoring]\nmetrics_prot = 1\n")
    assert main(["serve", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"raven serve: error: {path}: unknown key 'monitoring.metrics_prot'\n"


def test_a_port_in_use_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = tmp_path / "raven.toml"
        path.write_text(
            f"[server]\nport = {port}\n[monitoring]\nmetrics_port = 0\nhealth_check_port = 0\n"
            '[database]\nbackend = "none"\n'
        )
        assert main(["serve", "--config", str(path)]) == 2
    line = one_error_line(capsys.readouterr().err, "serve")
    assert f"cannot listen on 127.0.0.1:{port}" in line


def test_a_bad_raven_log_is_one_line() -> None:
    env = dict(os.environ, RAVEN_LOG="info,raven.api=chatty")
    result = subprocess.run(
        [sys.executable, "-m", "raven", "serve", "--config", "/nonexistent.toml"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == (
        "raven serve: error: RAVEN_LOG: unknown log level 'chatty' in 'raven.api=chatty'; "
        "expected one of: trace, debug, info, warn, warning, error, off\n"
    )


def test_a_bad_kind_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tail", "--kinds", "trade,trades"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("raven tail: error: unknown data kind 'trades'; expected one of: trade")


def render(view: TailView) -> str:
    console = Console(file=io.StringIO(), width=240, record=True)
    console.print(view.render())
    return console.export_text()


def test_tail_shows_book_and_candle_columns_once_they_flow() -> None:
    view = TailView(["BTCUSDT"])
    ex = "binance_futures"
    view.update(Quote(ex, "BTCUSDT", "99.5", "2", "100.5", "3", 1, 10, 20), 30)
    view.update(Trade(ex, "BTCUSDT", "100.1", "0.5", Side.BUY, 7, 10, 20), 30)
    text = render(view)
    assert "99.5" in text
    assert "100.1" in text
    assert "book bid" not in text
    assert "candles" not in text
    view.update(BookSnapshot(ex, "BTCUSDT", (("99.4", "8"),), (("100.6", "9"),), 5, 10, 20), 30)
    view.update(BookDelta(ex, "BTCUSDT", (("99.45", "1"),), (), 6, 6, 5, 10, 20), 30)
    candle = Candle(ex, "BTCUSDT", "1m", 0, 60, "100", "101", "99", "100.1", "5", "500", 9,
                    False, True, 10, 20)  # fmt: skip
    view.update(candle, 30)
    text = render(view)
    assert "book bid" in text
    assert "1 @ 99.45" in text
    assert "9 @ 100.6" in text
    candle_row = next(line for line in text.splitlines() if " 1m " in line)
    cells = [cell.strip() for cell in candle_row.split("│")]
    assert cells[1:9] == ["BTCUSDT", "1m", "100", "101", "99", "100.1", "5", "9"]


async def test_tail_prints_one_line_per_event_when_piped(sim: Simulator, app: RavenApp) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200)
    sim.feed_enabled.set()
    try:
        await wait_until(lambda: app.pipeline.ingested > 10, what="events")
        view = await run_tail(
            f"127.0.0.1:{app.grpc.port}", ["BTCUSDT"], (Kind.TRADE, Kind.QUOTE), 0.5, console
        )
    finally:
        sim.feed_enabled.clear()
    lines = out.getvalue().splitlines()
    assert view.events > 0
    assert len([line for line in lines if "BTCUSDT" in line]) == view.events
    assert all(" trade " in line or " quote " in line for line in lines if "BTCUSDT" in line)
