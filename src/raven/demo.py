"""`raven demo`: the simulator, the server and a live client, on loopback.

Starts `raven sim` and `raven serve` as child processes on free ports (their
logs go to files so the terminal view stays clean), waits until the server
answers, shows `raven tail` for the given duration, then stops both
children with SIGINT and waits for them. Ctrl-C stops all three.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from raven.types import Kind

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
KINDS = (Kind.TRADE, Kind.QUOTE, Kind.BOOK, Kind.CANDLE)
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DemoError(RuntimeError):
    """A child failed to start; the message says why, in one line."""


def _die_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGTERM if the demo dies, even by
    SIGKILL, so no simulator or server outlives it. A no-op elsewhere."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _spawn(args: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "raven", *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # we forward Ctrl-C ourselves, once
            preexec_fn=_die_with_parent,
        )


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM / SIGHUP (terminal closed): stop like Ctrl-C


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"{name} exited with code {proc.returncode}: {_last_line(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise DemoError(f"{name} did not start listening on port {port} in 30 s; see {log}")


def run_demo(duration: float, rate: float) -> None:
    from raven.client.tail import run_tail

    console = Console()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    logs = Path(tempfile.mkdtemp(prefix="raven-demo-"))
    sim_port, grpc_port = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        {
            "RAVEN__EXCHANGES__BINANCE_FUTURES__WS_URL": f"ws://127.0.0.1:{sim_port}",
            "RAVEN__EXCHANGES__BINANCE_FUTURES__REST_URL": f"http://127.0.0.1:{sim_port}",
            "RAVEN__EXCHANGES__BINANCE_FUTURES__SYMBOLS": '["BTCUSDT", "ETHUSDT"]',
            "RAVEN__SERVER__PORT": str(grpc_port),
            "RAVEN__MONITORING__METRICS_PORT": str(free_port()),
            "RAVEN__MONITORING__HEALTH_CHECK_PORT": str(free_port()),
        }
    )
    console.print(f"[bold]Raven demo[/]: logs in {logs}")
    sim = _spawn(["sim", "--port", str(sim_port), "--rate", str(rate)], logs / "sim.log", env)
    server = None
    try:
        _wait_for_port(sim_port, sim, "simulator", logs / "sim.log")
        console.print(f"simulator on ws://127.0.0.1:{sim_port}")
        server = _spawn(["serve"], logs / "server.log", env)
        _wait_for_port(grpc_port, server, "server", logs / "server.log")
        console.print(f"server on 127.0.0.1:{grpc_port}; streaming for {duration:g} s")
        target = f"127.0.0.1:{grpc_port}"
        view = asyncio.run(run_tail(target, SYMBOLS, KINDS, duration=duration))
        console.print(f"received {view.events} events through gRPC")
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        codes = [_stop(p) for p in (server, sim) if p is not None]
        console.print(f"simulator and server stopped (exit codes {codes})")
