"""What every benchmark scenario shares: the run mode and the result shape.

A scenario is a module with `scenario(mode: Mode) -> Result`. It measures,
never judges: rows carry the figure, its same-run baseline where one makes
sense, and the target as text; nothing fails on a number.
"""

from __future__ import annotations

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
