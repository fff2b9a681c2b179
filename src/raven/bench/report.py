"""Benchmark reports: a JSON file per run and a table appended to BENCHMARKS.md.

Every run records the date, the commit, the CPU model, the core count and
the Python version, so numbers from different machines are never mixed up;
machine-dependent figures are reported next to a baseline measured in the
same run, so runs compare by ratio.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import msgspec


class Machine(msgspec.Struct, frozen=True):
    cpu: str
    cores: int
    python: str
    platform: str
    commit: str


class Row(msgspec.Struct, frozen=True):
    """One measured figure: `value` in `unit`, and its baseline if it has one."""

    scenario: str
    metric: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    target: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return self.value / self.baseline


class Report(msgspec.Struct):
    started: str
    mode: str
    command: str
    machine: Machine
    rows: list[Row] = []
    notes: list[str] = []


def machine_info(root: Path) -> Machine:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        commit += "+dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return Machine(cpu, os.cpu_count() or 0, platform.python_version(), platform.platform(), commit)


def new_report(root: Path, mode: str, command: str) -> Report:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return Report(now, mode, command, machine_info(root))


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def markdown(report: Report) -> str:
    m = report.machine
    lines = [
        f"### {report.started} — {report.mode} run, commit `{m.commit}`",
        "",
        f"Machine: {m.cpu}, {m.cores} cores, Python {m.python}, {m.platform}.  ",
        f"Command: `{report.command}`",
        "",
        "| scenario | metric | value | unit | baseline (same run) | ratio | target | note |",
        "|---|---|---:|---|---|---:|---|---|",
    ]
    for r in report.rows:
        base = f"{_fmt(r.baseline)} ({r.baseline_label})" if r.baseline is not None else ""
        lines.append(
            f"| {r.scenario} | {r.metric} | {_fmt(r.value)} | {r.unit} | {base} | "
            f"{_fmt(r.ratio)} | {r.target} | {r.note} |"
        )
    for note in report.notes:
        lines.append(f"\n{note}")
    return "\n".join(lines) + "\n"


def write(report: Report, json_path: Path, markdown_path: Path | None) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=2))
    if markdown_path is None:
        return
    existing = markdown_path.read_text() if markdown_path.exists() else ""
    if not existing:
        existing = _HEADER
    markdown_path.write_text(existing.rstrip("\n") + "\n\n" + markdown(report))


_HEADER = """# Raven benchmarks

Produced by `make bench` (full) and `make bench-quick`; each run appends a
section below. Every machine-dependent figure sits next to a baseline
measured in the same run on the same machine, so compare runs by the ratio
column, not by raw numbers. Benchmarks never fail on a number.
"""


def as_dict(report: Report) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(report)
    return out
