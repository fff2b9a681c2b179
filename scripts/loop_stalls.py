"""What blocks the Raven server's event loop: every loop callback over a threshold.

Runs the latency benchmark's setup (a seeded `raven sim`, `raven serve` with
storage off, one load-client process subscribed to everything) with the
server instrumented from inside:

- every asyncio callback (`Handle._run`) is timed, wall and thread CPU; the
  ones over `--threshold-ms` are kept with what ran (a task's coroutine, a
  transport's protocol) and, for the long ones, the stack a watchdog thread
  saw while the callback was still running;
- every garbage collection is timed (`gc.callbacks`), by generation.

The server runs on the standard asyncio loop here (uvloop's C handles can't
be wrapped); the callbacks are the same Python code either way.

Only the window counts: the driver signals the server (SIGUSR1) after the
load client's warm-up to reset, and again (SIGUSR2) at the end to write its
numbers. Usage:

    .venv/bin/python scripts/loop_stalls.py --rate 1000 --clients 1 --duration 60
    .venv/bin/python scripts/loop_stalls.py ... --env RAVEN__SOME__KEY=value
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import resource
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

OUT_ENV = "RAVEN_LOOP_STALLS_OUT"
THRESHOLD_ENV = "RAVEN_LOOP_STALLS_THRESHOLD_MS"


# ---- inside the server process ---------------------------------------------


class Recorder:
    def __init__(self, threshold_s: float) -> None:
        self.threshold = threshold_s
        self.reset()
        self.current_start = 0.0  # perf_counter of the running callback; 0 when idle
        self.current_stack: list[str] | None = None
        self.gc_start = 0.0
        self.gc_cpu = 0.0
        self.in_gc: list[tuple[int, float]] = []  # collections inside the running callback

    def reset(self) -> None:
        self.t0 = time.perf_counter()
        self.cpu0 = time.process_time()
        self.callbacks = 0
        self.busy = 0.0
        self.slow: list[dict[str, Any]] = []
        self.gcs: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.gen2_objects: list[int] = []
        self.gc_cpus: dict[int, list[float]] = {0: [], 1: [], 2: []}

    def dump(self, path: str) -> None:
        out = {
            "window_s": time.perf_counter() - self.t0,
            "process_cpu_s": time.process_time() - self.cpu0,
            "callbacks": self.callbacks,
            "busy_s": self.busy,
            "threshold_ms": self.threshold * 1000,
            "slow": self.slow,
            "gc": {str(g): v for g, v in self.gcs.items()},
            "gc_cpu": {str(g): v for g, v in self.gc_cpus.items()},
            "gc_counts": gc.get_count(),
            "gen2_objects": self.gen2_objects,
            "gc_threshold": gc.get_threshold(),
            "gc_objects": len(gc.get_objects()),
            "gc_frozen": gc.get_freeze_count(),
        }
        Path(path).write_text(json.dumps(out))


def label(handle: asyncio.Handle) -> str:
    cb = handle._callback  # type: ignore[attr-defined]
    owner = getattr(cb, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        return f"task {owner.get_name()} {getattr(coro, '__qualname__', coro)}"
    if owner is not None:
        protocol = getattr(owner, "_protocol", None)
        extra = f" [{type(protocol).__qualname__}]" if protocol is not None else ""
        return f"{type(owner).__qualname__}.{getattr(cb, '__name__', '?')}{extra}"
    return getattr(cb, "__qualname__", repr(cb))[:200]


def install(rec: Recorder, handles: bool) -> None:
    install_gc(rec)
    if handles:
        install_handles(rec)


def install_handles(rec: Recorder) -> None:
    original = asyncio.events.Handle._run

    sched = os.open("/proc/thread-self/schedstat", os.O_RDONLY)  # this (the loop's) thread

    def _run(self: asyncio.Handle) -> None:
        rec.in_gc = []
        rec.current_stack = None
        s0 = os.pread(sched, 100, 0)
        r0 = resource.getrusage(resource.RUSAGE_THREAD)
        c0 = time.thread_time()
        t0 = rec.current_start = time.perf_counter()
        try:
            original(self)
        finally:
            t1 = time.perf_counter()
            rec.current_start = 0.0
            dt = t1 - t0
            rec.callbacks += 1
            rec.busy += dt
            if dt >= rec.threshold:
                r1 = resource.getrusage(resource.RUSAGE_THREAD)
                s1 = os.pread(sched, 100, 0)
                rec.slow.append({
                    "ms": dt * 1000, "cpu_ms": (time.thread_time() - c0) * 1000,
                    # waiting for a CPU (runnable, not running): the machine's other work
                    "runq_ms": (int(s1.split()[1]) - int(s0.split()[1])) / 1e6,
                    "vcsw": r1.ru_nvcsw - r0.ru_nvcsw,  # blocked: the GIL, a lock, a syscall
                    "ivcsw": r1.ru_nivcsw - r0.ru_nivcsw,  # preempted
                    "what": label(self), "at": t0 - rec.t0,
                    "gc": rec.in_gc, "stack": rec.current_stack,
                })  # fmt: skip

    asyncio.events.Handle._run = _run  # type: ignore[method-assign]
    start_watchdog(rec)


def install_gc(rec: Recorder) -> None:
    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            if info["generation"] == 2:  # how big the heap it walks is
                rec.gen2_objects.append(sum(len(gc.get_objects(g)) for g in range(3)))
            rec.gc_start = time.perf_counter()
            rec.gc_cpu = time.thread_time()
        else:
            dt = time.perf_counter() - rec.gc_start
            rec.gcs[info["generation"]].append(dt * 1000)
            rec.gc_cpus[info["generation"]].append((time.thread_time() - rec.gc_cpu) * 1000)
            if rec.current_start:
                rec.in_gc.append((info["generation"], dt * 1000))

    gc.callbacks.append(on_gc)


def start_watchdog(rec: Recorder) -> None:
    main = threading.main_thread().ident

    def watchdog() -> None:
        # Wakes every ms; a callback still running after 1.5 ms gets its stack taken once
        # (the GIL lets this thread in only at a switch interval: see --sample-stacks).
        while True:
            time.sleep(0.001)
            start = rec.current_start
            if start and rec.current_stack is None and time.perf_counter() - start > 0.0015:
                frame = sys._current_frames().get(main)  # type: ignore[arg-type]
                if frame is not None and rec.current_start == start:
                    rec.current_stack = traceback.format_stack(frame, limit=14)

    threading.Thread(target=watchdog, daemon=True, name="stall-watchdog").start()


def serve_instrumented() -> None:
    rec = Recorder(float(os.environ.get(THRESHOLD_ENV, "1")) / 1000)
    out = os.environ[OUT_ENV]
    tuning = os.environ.get("RAVEN_LOOP_STALLS_GC", "")  # "freeze" and/or "threshold=a,b,c"

    def start_window(*_: Any) -> None:
        for part in filter(None, tuning.split(";")):
            if part == "freeze":
                gc.freeze()
            elif part.startswith("threshold="):
                gc.set_threshold(*map(int, part.partition("=")[2].split(",")))
        rec.reset()

    signal.signal(signal.SIGUSR1, start_window)
    signal.signal(signal.SIGUSR2, lambda *_: rec.dump(out))
    handles = os.environ.get("RAVEN_LOOP_STALLS_UVLOOP") != "1"
    install(rec, handles)
    if os.environ.get("RAVEN_LOOP_STALLS_SWITCH"):
        sys.setswitchinterval(float(os.environ["RAVEN_LOOP_STALLS_SWITCH"]))
    if handles:  # the asyncio loop, whose handles we can wrap
        sys.modules["uvloop"] = None  # type: ignore[assignment]
    from raven.cli import main

    sys.exit(main(["serve"]))


# ---- the driver --------------------------------------------------------------


def drive(args: argparse.Namespace) -> dict[str, Any]:
    from raven.bench import netmix
    from raven.bench.loadclient import LoadConfig
    from raven.bench.procs import Cluster, start_server, start_sim

    market = netmix.market_for(args.rate, 20)
    out = Path(f"/tmp/loop-stalls-{os.getpid()}.json")
    extra = dict(kv.split("=", 1) for kv in args.env)
    if args.sample_stacks:  # the watchdog gets the GIL sooner (perturbs the server a little)
        extra["RAVEN_LOOP_STALLS_SWITCH"] = "0.0005"
    if args.gc:
        extra["RAVEN_LOOP_STALLS_GC"] = args.gc
    if args.uvloop:
        extra["RAVEN_LOOP_STALLS_UVLOOP"] = "1"
    extra.update({OUT_ENV: str(out), THRESHOLD_ENV: str(args.threshold_ms)})
    with Cluster() as cluster:
        sim = start_sim(cluster, market)
        # start_server spawns `-m raven serve`; swap in this script as the server
        original = cluster.spawn

        def spawn(name: str, argv: Any, env: Any = None) -> Any:
            if name == "server":
                argv = [__file__, "--serve-instrumented"]
            return original(name, argv, env)

        cluster.spawn = spawn  # type: ignore[method-assign]
        server = start_server(cluster, sim, market, extra)
        cluster.spawn = original  # type: ignore[method-assign]
        warm = 3.0
        every = max(1, args.rate * args.clients // 10_000)
        config = LoadConfig(server.target, args.clients, 0, warm, args.duration, latency=True,
                            probes=(server.metrics_url,), latency_every=every)  # fmt: skip
        load = netmix.start_load(cluster, config)
        time.sleep(warm + 0.5)  # the streams are open and warmed up
        os.kill(server.child.pid, signal.SIGUSR1)
        time.sleep(args.duration - 1.0)
        os.kill(server.child.pid, signal.SIGUSR2)
        result = netmix.finish_load(cluster, load, args.duration + 120)
        time.sleep(0.5)
        data: dict[str, Any] = json.loads(out.read_text())
        out.unlink()
    data["latency_ms"] = {k: getattr(result.latency, k) / 1000
                          for k in ("p50", "p90", "p99", "p999", "max")}  # fmt: skip
    data["events"] = result.events
    return data


def summary(data: dict[str, Any], top: int) -> str:
    slow = data["slow"]
    top_ms = max((s["ms"] for s in slow), default=0)
    switches = (sum(s["vcsw"] for s in slow), sum(s["ivcsw"] for s in slow))
    lines = [
        f"window {data['window_s']:.1f} s, server CPU {data['process_cpu_s']:.2f} s, "
        f"{data['callbacks']:,} callbacks, loop busy {data['busy_s']:.2f} s",
        f"callbacks >= {data['threshold_ms']:g} ms: {len(slow)}, total "
        f"{sum(s['ms'] for s in slow):.1f} ms, max {top_ms:.2f} ms",
        f"  of which on the CPU {sum(s['cpu_ms'] for s in slow):.1f} ms, waiting for a CPU "
        f"{sum(s['runq_ms'] for s in slow):.1f} ms, blocked (GIL, locks, I/O) "
        f"{sum(s['ms'] - s['cpu_ms'] - s['runq_ms'] for s in slow):.1f} ms; "
        f"{switches[0]} voluntary, {switches[1]} forced switches",
    ]
    for lo, hi in ((1, 2), (2, 5), (5, 10), (10, 1e9)):
        n = sum(1 for s in slow if lo <= s["ms"] < hi)
        lines.append(f"  [{lo}, {hi if hi < 1e9 else 'inf'}) ms: {n}")
    for gen, times in data["gc"].items():
        if times:
            cpu = data["gc_cpu"][gen]
            lines.append(f"gc gen {gen}: {len(times)} collections, total {sum(times):.1f} ms "
                         f"(CPU {sum(cpu):.1f} ms), max {max(times):.2f} ms (CPU {max(cpu):.2f}), "
                         f"mean {sum(times) / len(times):.3f} ms")  # fmt: skip
    lines.append(f"objects tracked at each gen-2 collection: {data['gen2_objects']}")
    with_gc = [s for s in slow if any(g == 2 for g, _ in s["gc"])]
    lines.append(f"slow callbacks containing a gen-2 collection: {len(with_gc)}")
    lines.append(f"gc objects tracked at the end: {data['gc_objects']:,}; "
                 f"frozen {data['gc_frozen']:,}; threshold {data['gc_threshold']}")  # fmt: skip
    by: dict[str, list[float]] = collections.defaultdict(list)
    for s in slow:
        by[s["what"].split(" ", 2)[-1] if s["what"].startswith("task ") else s["what"]].append(
            s["ms"]
        )
    lines.append("by callback (count, total ms, max ms):")
    for what, ms in sorted(by.items(), key=lambda kv: -sum(kv[1]))[:top]:
        lines.append(f"  {len(ms):5d} {sum(ms):9.1f} {max(ms):7.2f}  {what}")
    if "latency_ms" in data:
        lat = data["latency_ms"]
        lines.append("client latency ms: " + ", ".join(f"{k} {v:.2f}" for k, v in lat.items()))
    return "\n".join(lines)


def main() -> None:
    if "--serve-instrumented" in sys.argv:
        serve_instrumented()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--threshold-ms", type=float, default=1.0)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="keep uvloop (callbacks not timed: garbage collections only)",
    )
    parser.add_argument(
        "--gc",
        default="",
        help='at the window\'s start: "freeze", '
        '"threshold=a,b,c", both joined by ";" (experiments)',
    )
    parser.add_argument(
        "--sample-stacks",
        action="store_true",
        help="0.5 ms GIL switch interval, so stacks of 1.5 ms callbacks are caught",
    )
    parser.add_argument("--json", help="write the raw numbers here")
    parser.add_argument("--stacks", type=int, default=0, help="print this many slow stacks")
    args = parser.parse_args()
    data = drive(args)
    if args.json:
        Path(args.json).write_text(json.dumps(data))
    print(summary(data, 15))
    stacks = sorted((s for s in data["slow"] if s["stack"]), key=lambda s: -s["cpu_ms"])
    for s in stacks[: args.stacks]:
        print(f"\n--- {s['ms']:.2f} ms (cpu {s['cpu_ms']:.2f}) {s['what']} gc={s['gc']}")
        print("".join(s["stack"]))


if __name__ == "__main__":
    main()
