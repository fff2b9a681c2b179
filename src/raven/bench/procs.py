"""Child processes for the networked benchmarks: `raven sim` and `raven serve`.

Each runs as `python -m raven ...` on free loopback ports, configured by
`RAVEN__...` environment overrides (as `raven demo` does), with its output
in a log file. `Cluster` owns the children: leaving its `with` block (a
normal end, an error, Ctrl-C) stops each one with SIGINT, then SIGKILL
after a timeout, newest first, so no child outlives a run.

Readiness is asked of the server, never slept on: /ready (every feed
connected), then `GetSnapshot` for every symbol until each has a live book.

Also here: scraping Prometheus text into numbers and reading a process's
resident memory from /proc (Linux only).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
import msgspec

from raven.v1 import market_data_pb2 as pb

HOST = "127.0.0.1"  # benchmarks never leave loopback
STOP_TIMEOUT_S = 10.0  # SIGINT, then SIGKILL after this long
START_TIMEOUT_S = 60.0  # generous: a loaded 2-core machine starts slowly
SNAPSHOT_METHOD = "/raven.v1.MarketDataService/GetSnapshot"


class BenchError(RuntimeError):
    """A benchmark could not run (a child failed to start, a timeout); says where to look."""


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Child:
    """One child process with its log file."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,  # a terminal's Ctrl-C reaches only us; we stop it
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self) -> None:
        """Raise if the child has exited."""
        if not self.alive():
            raise BenchError(f"{self.name} exited with code {self.proc.returncode}; see {self.log}")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGINT (the clean shutdown), then SIGKILL after `timeout`."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Cluster:
    """Owns child processes and a folder for their logs; stops them all on exit and
    removes the logs unless the block failed."""

    def __init__(self, name: str = "raven-bench-") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=name))
        self.children: list[Child] = []

    def __enter__(self) -> Cluster:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()
        if kind is None:  # after a failure the logs stay: the error names them
            shutil.rmtree(self.dir, ignore_errors=True)

    def spawn(self, name: str, args: Sequence[str], env: Mapping[str, str] | None = None) -> Child:
        """`python <args>` (this interpreter) with `env` added to ours."""
        full = dict(os.environ)
        full.update(env or {})
        full.setdefault("PYTHONUNBUFFERED", "1")
        log = self.dir / f"{name}-{len(self.children)}.log"
        child = Child(name, [sys.executable, *args], full, log)
        self.children.append(child)
        return child

    def stop(self, child: Child) -> int:
        code = child.stop()
        if child in self.children:
            self.children.remove(child)
        return code

    def stop_all(self) -> None:
        """Newest first; interrupted again (a second Ctrl-C), kill the rest outright."""
        while self.children:
            child = self.children.pop()
            try:
                child.stop()
            except BaseException:
                for rest in [child, *self.children]:
                    rest.proc.kill()
                    rest.proc.wait()
                self.children.clear()
                raise


class Market(msgspec.Struct, frozen=True):
    """What the simulator makes and what the server subscribes to."""

    symbols: tuple[str, ...]
    streams: tuple[str, ...]  # Binance stream types, e.g. "aggTrade", "depth@0ms"
    rate: float  # simulator transactions per second (not events: see README "Rate")
    seed: int = 42
    book_depth: int = 1000  # levels per side of the simulator's books


class Sim(msgspec.Struct):
    child: Child
    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def stats_url(self) -> str:
        return f"{self.rest_url}/_sim/stats"


class Server(msgspec.Struct):
    child: Child
    port: int
    metrics_port: int
    health_port: int

    @property
    def target(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}/metrics"

    @property
    def ready_url(self) -> str:
        return f"http://{HOST}:{self.health_port}/ready"


def start_sim(cluster: Cluster, market: Market) -> Sim:
    """`raven sim` on a free port, listening when this returns."""
    port = free_port()
    env = {
        "RAVEN__SIMULATOR__BOOK_DEPTH": str(market.book_depth),
        "RAVEN__SIMULATOR__RECORD_FRAMES": "0",  # nothing kept for tests
        "RAVEN__SIMULATOR__TRUTH_HISTORY": "1000",  # the truth is for tests; keep it small
    }
    args = ["-m", "raven", "sim", "--host", HOST, "--port", str(port), "--seed", str(market.seed),
            "--rate", repr(float(market.rate)), "--symbols", ",".join(market.symbols)]  # fmt: skip
    child = cluster.spawn("sim", args, env)
    wait_for_port(child, port)
    return Sim(child, port)


def server_env(sim: Sim, market: Market, port: int, metrics: int, health: int) -> dict[str, str]:
    """The server's config for the benchmarks: storage off, validation on (the default)."""
    binance = "RAVEN__EXCHANGES__BINANCE_FUTURES__"
    return {
        "RAVEN__SERVER__HOST": HOST,
        "RAVEN__SERVER__PORT": str(port),
        "RAVEN__SERVER__SHUTDOWN_GRACE_S": "1",
        "RAVEN__MONITORING__HOST": HOST,
        "RAVEN__MONITORING__METRICS_PORT": str(metrics),
        "RAVEN__MONITORING__HEALTH_CHECK_PORT": str(health),
        "RAVEN__DATABASE__BACKEND": "none",
        binance + "WS_URL": sim.ws_url,
        binance + "REST_URL": sim.rest_url,
        binance + "SYMBOLS": json.dumps(list(market.symbols)),
        binance + "STREAMS": json.dumps(list(market.streams)),
        "RAVEN_LOG": "warning",  # a line per stream opened would only cost time
    }


def start_server(
    cluster: Cluster, sim: Sim, market: Market, extra_env: Mapping[str, str] | None = None
) -> Server:
    """`raven serve` fed by `sim`; returns once it is ready and every book is live."""
    port, metrics, health = free_port(), free_port(), free_port()
    env = server_env(sim, market, port, metrics, health)
    env.update(extra_env or {})
    child = cluster.spawn("server", ["-m", "raven", "serve"], env)
    server = Server(child, port, metrics, health)
    has_books = any(s.startswith("depth") for s in market.streams)
    wait_ready(server, market.symbols if has_books else ())
    return server


def wait_for_port(child: Child, port: int, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check()
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
            return
        time.sleep(0.05)
    raise BenchError(f"{child.name} not listening on port {port} in {timeout:g} s; see {child.log}")


def wait_ready(server: Server, symbols: Sequence[str], timeout: float = START_TIMEOUT_S) -> None:
    """Until /ready says 200 and the book of every one of `symbols` is live (GetSnapshot)."""
    deadline = time.monotonic() + timeout
    child = server.child
    while not _http_ok(server.ready_url):
        child.check()
        if time.monotonic() > deadline:
            raise BenchError(f"server not ready in {timeout:g} s; see {child.log}")
        time.sleep(0.05)
    waiting = list(symbols)
    with grpc.insecure_channel(server.target) as channel:
        snapshot: Any = channel.unary_unary(SNAPSHOT_METHOD)  # raw bytes both ways
        while waiting:
            child.check()
            if time.monotonic() > deadline:
                raise BenchError(f"books not live in {timeout:g} s: {waiting}; see {child.log}")
            request = pb.GetSnapshotRequest(symbol=waiting[0], book_depth=1).SerializeToString()
            reply = pb.GetSnapshotResponse.FromString(snapshot(request, timeout=5.0))
            if _book_live(reply):
                waiting.pop(0)
            else:
                time.sleep(0.05)


def _book_live(reply: pb.GetSnapshotResponse) -> bool:
    has_book = any(e.WhichOneof("payload") == "book_snapshot" for e in reply.events)
    stale = any(e.WhichOneof("payload") == "status" for e in reply.events)
    return has_book and not stale


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def http_get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def parse_prometheus(text: str) -> dict[str, float]:
    """Sample name with its labels (as written) -> value; comments skipped."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            out[name] = float(value)
    return out


def scrape(url: str) -> dict[str, float]:
    """Numbers from a Prometheus endpoint, or from a flat JSON object (the sim's stats)."""
    body = http_get(url)
    if body.lstrip().startswith(b"{"):
        raw = json.loads(body)
        return {k: float(v) for k, v in raw.items() if isinstance(v, int | float)}
    return parse_prometheus(body.decode())


def rss_bytes(pid: int) -> int:
    """Resident memory of `pid` from /proc/<pid>/status (Linux only)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # the kernel reports kB
    raise BenchError(f"no VmRSS in /proc/{pid}/status")


@contextlib.contextmanager
def sim_and_server(
    market: Market, extra_env: Mapping[str, str] | None = None
) -> Iterator[tuple[Cluster, Sim, Server]]:
    """A simulator and a server fed by it, both stopped on exit."""
    with Cluster() as cluster:
        sim = start_sim(cluster, market)
        server = start_server(cluster, sim, market, extra_env)
        yield cluster, sim, server
