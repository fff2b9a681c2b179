"""`raven bench` / `make bench`: run scenarios, write the JSON report, append
the table to BENCHMARKS.md."""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from pathlib import Path

from raven.bench.base import Mode, Result, progress
from raven.bench.report import new_report, write

# Scenario name -> module with `scenario(mode) -> Result`; imported only when run.
SCENARIOS = {
    "ingest": "raven.bench.ingest",
    "latency": "raven.bench.latency",
    "fanout": "raven.bench.fanout",
    "memory": "raven.bench.memory",
    "storage": "raven.bench.storage",
}


def run(
    names: Sequence[str],
    mode: Mode,
    root: Path,
    out_dir: Path,
    markdown: Path | None,
    command: str,
) -> Path:
    """Run `names` (all when empty) in order; returns the JSON report's path."""
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    report = new_report(root, mode.name, command)
    for name in names or list(SCENARIOS):
        print(f"bench: {name} ({mode.name}) ...", flush=True)
        started = time.monotonic()
        progress.begin()
        module = importlib.import_module(SCENARIOS[name])
        result: Result = module.scenario(mode)
        report.rows.extend(result.rows)
        report.notes.extend(f"{name}: {note}" for note in result.notes)
        for row in result.rows:
            ratio = f"  (x{row.ratio:.2f} of {row.baseline_label})" if row.ratio else ""
            print(f"  {row.metric}: {row.value:,.2f} {row.unit}{ratio}", flush=True)
        print(f"  done in {time.monotonic() - started:.1f} s", flush=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = out_dir / f"bench-{stamp}-{mode.name}.json"
    write(report, json_path, markdown)
    return json_path
