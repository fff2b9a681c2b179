"""What every benchmark scenario shares: the run mode and the result shape.

A scenario is a module with `scenario(mode: Mode) -> Result`. It measures,
never judges: rows carry the figure, its same-run baseline where one makes
sense, and the target as text; nothing fails on a number.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

import msgspec

from raven.bench.report import Row


class Mode(msgspec.Struct, frozen=True):
    quick: bool = False  # a few seconds per scenario instead of the full runs

    @property
    def name(self) -> str:
        return "quick" if self.quick else "full"

    def pick(self, quick: float, full: float) -> float:
        return quick if self.quick else full


class Result(msgspec.Struct):
    rows: list[Row]
    notes: list[str] = []


class Progress:
    """A line per step of a scenario, stamped with the time since it began.

    A full `make bench` takes about 25 minutes, most of it load windows that
    print nothing until their scenario ends; these lines say where it is."""

    def __init__(
        self, out: TextIO | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.out = out
        self.clock = clock
        self.started = clock()

    def begin(self) -> None:
        """A scenario starts: the stamps count from now."""
        self.started = self.clock()

    def step(self, text: str) -> None:
        minutes, seconds = divmod(int(self.clock() - self.started), 60)
        out = self.out if self.out is not None else sys.stdout
        print(f"  [{minutes:02d}:{seconds:02d}] {text}", file=out, flush=True)


progress = Progress()  # the runner begins it per scenario; scenarios report steps
