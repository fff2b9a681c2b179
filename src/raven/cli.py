"""The `raven` command line: serve, sim, record, tail, demo, history, bench.

Every subcommand explains its options in `--help`. Errors a user can fix
(a missing config file, a bad key, a port in use) are one line, not a
traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import grpc
import msgspec

from raven import __version__
from raven.config import ConfigError, RavenConfig, config_from_dict, load_config
from raven.logs import setup_logging
from raven.storage.base import StoreError
from raven.types import Kind

log = logging.getLogger("raven.cli")


class UsageError(Exception):
    """A problem with the command line or its inputs, shown as one line."""


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


KINDS = ", ".join(k.name.lower() for k in Kind)
FORMATTER = argparse.RawDescriptionHelpFormatter


def _rate(text: str) -> float:
    """A positive number, or "max" (as fast as the machine can)."""
    return math.inf if text == "max" else float(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raven",
        description="Raven market data server: normalized exchange feeds over gRPC.",
        epilog="Each command has its own --help. Logging: RAVEN_LOG=info,raven.api=debug "
        "(RUST_LOG syntax), RAVEN_LOG_FORMAT=json for one JSON object per line.",
    )
    parser.add_argument("--version", action="version", version=f"raven {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the market data server",
        formatter_class=FORMATTER,
        description="Run the server: exchange feeds -> validation -> state -> gRPC clients,\n"
        "with Prometheus /metrics and /health, /ready on their own ports.",
        epilog="examples:\n  raven serve --config config/development.toml\n"
        "  RAVEN__SERVER__PORT=50052 raven serve",
    )
    serve.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (default: $RAVEN_CONFIG, else built-in defaults); "
        "RAVEN__SECTION__KEY environment variables override it",
    )

    sim = commands.add_parser(
        "sim",
        help="run the Binance USD-M Futures simulator on loopback",
        description="Serve the Binance USD-M Futures WebSocket and REST protocol on loopback, "
        "driven by a seeded market model. Options override the [simulator] config section.",
    )
    sim.add_argument("--config", metavar="FILE", help="TOML config file with a [simulator] section")
    sim.add_argument("--host", help="listen address (default 127.0.0.1)")
    sim.add_argument("--port", type=int, help="listen port (default 8800; 0 picks a free one)")
    sim.add_argument("--seed", type=int, help="market model seed (default 7)")
    sim.add_argument("--rate", type=_rate, help="market events per second, all symbols, or max")
    sim.add_argument("--symbols", type=_csv, help="comma-separated symbols, e.g. BTCUSDT,ETHUSDT")
    sim.add_argument(
        "--replay", metavar="FILE", help="serve a capture file instead of the market model"
    )
    sim.add_argument(
        "--speed", type=_rate, metavar="X|max", help="replay speed (default 1); max: flat out"
    )
    sim.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:K=V,...]",
        help="inject a fault, e.g. gap:symbol=BTCUSDT,every=10 or stall:seconds=5,after=30 "
        "(repeatable; see README)",
    )

    record = commands.add_parser("record", help="save a live feed to a capture file for replay")
    record.add_argument("--url", help="WebSocket base URL, e.g. ws://127.0.0.1:8800")
    record.add_argument("--rest-url", help="REST base URL for depth snapshots")
    record.add_argument(
        "--streams", type=_csv, default=[], help="comma-separated stream types, e.g. aggTrade,depth"
    )
    record.add_argument("--symbols", type=_csv, default=[], help="comma-separated symbols")
    record.add_argument("--duration", type=float, help="seconds to record (default: until Ctrl-C)")
    record.add_argument("--max-frames", type=int, default=0, help="stop after this many frames")
    record.add_argument("--out", required=True, metavar="FILE", help="capture file to write")
    record.add_argument(
        "--convert", metavar="DIR", help="convert DIR/ws.txt (+ rest.txt) to FILE instead"
    )

    tail = commands.add_parser(
        "tail",
        help="live terminal view of a running server",
        formatter_class=FORMATTER,
        description="Show quotes, last trades and, when those kinds flow, the top of the\n"
        "order book and the newest candle. Piped, it prints one line per event.",
        epilog="example:\n  raven tail --symbols BTCUSDT --kinds trade,quote,book,candle",
    )
    tail.add_argument("--target", default="localhost:50051", help="server host:port")
    tail.add_argument("--symbols", type=_csv, default=["BTCUSDT", "ETHUSDT"],
                      help="comma-separated symbols (default BTCUSDT,ETHUSDT)")  # fmt: skip
    tail.add_argument(
        "--kinds",
        type=_csv,
        default=["trade", "quote"],
        help=f"comma-separated data kinds (default trade,quote; any of: {KINDS})",
    )
    tail.add_argument("--duration", type=float, help="stop after this many seconds")
    tail.add_argument(
        "--token",
        default=os.environ.get("RAVEN_TOKEN", ""),
        help="bearer token for a server with auth on (default $RAVEN_TOKEN)",
    )
    tail.add_argument("--tls", action="store_true", help="connect with TLS (system roots)")
    tail.add_argument("--tls-ca", metavar="FILE",
                      help="PEM root certificate to trust (implies --tls)")  # fmt: skip

    demo = commands.add_parser(
        "demo", help="simulator + server + live terminal view, all on loopback"
    )
    demo.add_argument("--duration", type=float, default=20.0, help="seconds to run (default 20)")
    demo.add_argument("--rate", type=float, default=40.0, help="simulated events per second")
    _add_history_parser(commands)
    _add_bench_parser(commands)
    return parser


def _add_history_parser(commands: Any) -> None:
    history = commands.add_parser(
        "history",
        help="query stored history: print a table or write CSV / Parquet",
        description="Stored events between two times, in time order (GetHistoricalData). "
        "Reads from a running server (--target, the default) or straight from the "
        "embedded store file (--db, when no server has it open).",
    )
    add = history.add_argument
    add("--symbols", type=_csv, required=True, help="comma-separated symbols ('*': all)")
    add("--kinds", type=_csv, default=["trade"],
        help="comma-separated kinds: trade, quote, book, candle, funding, liquidation, status "
        "(default trade)")  # fmt: skip
    add("--start", help="ISO 8601 time (UTC unless an offset is given) or ns")
    add("--end", help="ISO 8601 time or ns (default: now)")
    add("--last", default="1h", help="without --start: this long before --end (default 1h)")
    add("--intervals", type=_csv, default=[],
        help="candle intervals, e.g. 1m,15m (built from trades when not stored)")  # fmt: skip
    history.add_argument("--book-at", help="also the order book as it stood at this time")
    history.add_argument("--depth", type=int, default=20, help="book levels per side (0: all)")
    history.add_argument("--limit", type=int, default=0, help="at most this many events")
    history.add_argument("--exchange", default="binance_futures", help="exchange name")
    source = history.add_mutually_exclusive_group()
    source.add_argument("--target", default="localhost:50051", help="server host:port")
    source.add_argument("--db", metavar="FILE", help="read this embedded store file directly")
    out = history.add_mutually_exclusive_group()
    out.add_argument("--csv", metavar="FILE", help="write CSV to FILE")
    out.add_argument("--parquet", metavar="FILE", help="write Parquet to FILE")
    history.add_argument("--config", metavar="FILE",
                         help="config for --db ([history] limits); default: built-in")  # fmt: skip


def _add_bench_parser(commands: Any) -> None:
    bench = commands.add_parser(
        "bench",
        help="run the benchmark scenarios; append the results to BENCHMARKS.md",
        description="Scenarios: ingest, latency, fanout, memory, storage (default: all). "
        "Benchmarks report numbers next to same-run baselines; they never fail on a number.",
    )
    bench.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                       help="scenarios to run (default: all)")  # fmt: skip
    bench.add_argument("--quick", action="store_true",
                       help="a few seconds per scenario instead of the full runs")  # fmt: skip
    bench.add_argument("--out", default="bench-results", metavar="DIR",
                       help="folder for the JSON reports (default bench-results)")  # fmt: skip
    bench.add_argument("--markdown", default="BENCHMARKS.md", metavar="FILE",
                       help="file the result table is appended to; '' for none")  # fmt: skip


def cmd_bench(args: argparse.Namespace) -> None:
    from pathlib import Path

    from raven.bench.base import Mode
    from raven.bench.runner import run

    command = "raven bench " + " ".join([*args.scenarios, *(["--quick"] if args.quick else [])])
    path = run(
        args.scenarios,
        Mode(quick=args.quick),
        Path.cwd(),
        Path(args.out),
        Path(args.markdown) if args.markdown else None,
        command.strip(),
    )
    print(f"report: {path}" + (f"; table appended to {args.markdown}" if args.markdown else ""))


def _config(path: str | None) -> RavenConfig:
    return load_config(path or os.environ.get("RAVEN_CONFIG") or None)


def _run(coro_factory: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run on uvloop (when available) until done or SIGINT/SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await coro_factory(stop)

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(main())


def cmd_serve(args: argparse.Namespace) -> None:
    from raven.app import RavenApp
    from raven.ops.gcwatch import freeze_startup_heap

    config = _config(args.config)
    setup_logging(config.logging.level, config.logging.format)
    app = RavenApp(config)
    # Everything built so far lives as long as the process: out of the
    # collector's reach, a full collection no longer walks it (raven.ops.gcwatch).
    freeze_startup_heap()

    async def serve(stop: asyncio.Event) -> None:
        try:
            await app.run(stop)
        except OSError as exc:  # a port in use, an address not allowed
            raise UsageError(str(exc)) from None

    _run(serve)


def cmd_sim(args: argparse.Namespace) -> None:
    from raven.sim.server import Simulator

    overrides = {
        "host": args.host,
        "port": args.port,
        "seed": args.seed,
        "rate": args.rate,
        "symbols": args.symbols,
        "replay_file": args.replay,
        "replay_speed": 0.0 if args.speed == math.inf else args.speed,
    }
    raw = msgspec.to_builtins(_config(args.config))
    raw["simulator"].update({k: v for k, v in overrides.items() if v is not None})
    raw["simulator"]["faults"] = [*raw["simulator"].get("faults", []), *args.fault]
    config = config_from_dict(raw, "command line").simulator

    async def serve(stop: asyncio.Event) -> None:
        try:
            sim = Simulator(config)
        except OSError as exc:
            raise UsageError(f"cannot read {config.replay_file}: {exc.strerror}") from None
        try:
            await sim.start()
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {config.host}:{config.port}: {exc.strerror}"
            ) from None
        print(f"simulator: ws {sim.ws_url}  rest {sim.rest_url}", flush=True)
        try:
            await stop.wait()
        finally:
            await sim.stop()

    _run(serve)


def cmd_record(args: argparse.Namespace) -> None:
    from pathlib import Path

    from raven.sim.capture import convert_text_capture
    from raven.sim.record import Recorder, RecordError, stream_names

    if args.convert:
        try:
            count = convert_text_capture(args.convert, args.out)
        except OSError as exc:
            raise UsageError(f"cannot convert {args.convert}: {exc}") from None
        print(f"wrote {count} records to {args.out}", flush=True)
        return
    if not (args.url and args.rest_url and args.streams):
        raise UsageError("--url, --rest-url and --streams are required (or use --convert)")
    names = stream_names([s.upper() for s in args.symbols], args.streams)
    recorder = Recorder(args.url, args.rest_url, names, Path(args.out))

    async def record(stop: asyncio.Event) -> None:
        task = asyncio.create_task(recorder.run(args.duration, args.max_frames))
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
        recorder.stop()
        waiter.cancel()
        try:
            stats = await task
        except RecordError as exc:
            raise UsageError(str(exc)) from None
        print(f"recorded {stats.frames} frames, {stats.snapshots} snapshots to {args.out}")

    _run(record)


def cmd_tail(args: argparse.Namespace) -> None:
    from raven.client.aio import AsyncRavenClient
    from raven.client.tail import run_tail

    try:
        kinds = [Kind.parse(k) for k in args.kinds]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    symbols = [s.upper() for s in args.symbols]
    if args.tls_ca and not os.path.isfile(args.tls_ca):
        raise UsageError(f"--tls-ca: no such file: {args.tls_ca}")

    async def tail(stop: asyncio.Event) -> None:
        client = AsyncRavenClient(
            args.target, token=args.token, tls=args.tls, root_certificates=args.tls_ca
        )
        task = asyncio.create_task(
            run_tail(args.target, symbols, kinds, args.duration, None, client)
        )
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        task.cancel()
        (result,) = await asyncio.gather(task, return_exceptions=True)
        if isinstance(result, TimeoutError):
            raise UsageError(f"{result} at {args.target}")
        if isinstance(result, grpc.aio.AioRpcError):
            raise UsageError(f"{result.code().name}: {result.details()}")
        if isinstance(result, Exception):
            raise result

    _run(tail)


def cmd_demo(args: argparse.Namespace) -> None:
    from raven.demo import DemoError, run_demo

    try:
        run_demo(args.duration, args.rate)
    except DemoError as exc:
        raise UsageError(str(exc)) from None


def cmd_history(args: argparse.Namespace) -> None:
    from raven.storage.history_cli import run_history

    async def history(stop: asyncio.Event) -> None:
        task = asyncio.create_task(run_history(args))
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait((task, waiter), return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not task.done():
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            raise UsageError("interrupted") from None
        except RuntimeError as exc:  # a server or store error, already worded for people
            raise UsageError(str(exc)) from None

    _run(history)


COMMANDS: dict[str, Callable[[argparse.Namespace], None]] = {
    "serve": cmd_serve,
    "sim": cmd_sim,
    "record": cmd_record,
    "tail": cmd_tail,
    "demo": cmd_demo,
    "history": cmd_history,
    "bench": cmd_bench,
}


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub: argparse.ArgumentParser = action.choices[command]
            return sub
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # report it with the subcommand's usage, not the top level's
        _subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        setup_logging()
        COMMANDS[args.command](args)
    except (ConfigError, UsageError, StoreError, ValueError) as exc:
        print(f"raven {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
