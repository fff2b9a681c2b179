"""Exact decimal text arithmetic for prices and quantities: no floats, no Decimal.

A decimal text such as "43250.10" is read as a scaled integer: mantissa
4325010 at scale 2. Grid checks (is this price on the tick?) and sums (candle
volumes) are then plain integer operations, exact whatever the magnitude, and
several times cheaper than `decimal.Decimal`.

Only plain positional decimals are accepted ("12", "12.5", "0.001"): no sign
unless asked for, no exponent, no spaces, no underscores, no "nan"/"inf".
That is how every supported exchange writes numbers, so anything else is
malformed input.
"""

from __future__ import annotations

from typing import TypeAlias

POW10: tuple[int, ...] = tuple(10**i for i in range(40))  # 10**scale, precomputed for the hot path


# (mantissa, scale): the value mantissa / 10**scale, exactly. A plain tuple,
# not a NamedTuple: candles build one per trade and interval on the hot path.
Scaled: TypeAlias = tuple[int, int]


def parse(text: str, signed: bool = False) -> Scaled | None:
    """The exact value of a plain decimal text; None when it isn't one."""
    body = text
    negative = False
    if signed and text[:1] == "-":
        body = text[1:]
        negative = True
    whole, dot, frac = body.partition(".")
    if not (whole.isascii() and whole.isdigit()):
        return None
    if dot and not (frac.isascii() and frac.isdigit()):
        return None
    if len(frac) >= len(POW10):
        return None
    mantissa = int(whole + frac) if frac else int(whole)
    return (-mantissa if negative else mantissa), len(frac)


def format_scaled(mantissa: int, scale: int) -> str:
    """Decimal text of mantissa / 10**scale with exactly `scale` decimals."""
    if scale == 0:
        return str(mantissa)
    sign = "-" if mantissa < 0 else ""
    digits = str(abs(mantissa)).rjust(scale + 1, "0")
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"


def rescale(value: Scaled, scale: int) -> int:
    """The mantissa of `value` at a scale >= its own."""
    return value[0] * POW10[scale - value[1]]


def add(a: Scaled, b: Scaled) -> Scaled:
    sa, sb = a[1], b[1]
    if sa == sb:
        return a[0] + b[0], sa
    if sa > sb:
        return a[0] + b[0] * POW10[sa - sb], sa
    return a[0] * POW10[sb - sa] + b[0], sb


def multiply(a: Scaled, b: Scaled) -> Scaled:
    return a[0] * b[0], a[1] + b[1]


class Increment:
    """A price tick or quantity step ("0.10", "0.001"): on-grid checks and snapping.

    `tolerance` is the fraction of one increment within which an off-grid value
    counts as a rounding error and is snapped to the nearest grid point (e.g. a
    venue that formats 0.1 + 0.2 as "0.30000000000000004"); further off, the
    value is off-grid and rejected.
    """

    __slots__ = ("step", "text", "tolerance")

    def __init__(self, text: str, tolerance: float = 0.001) -> None:
        step = parse(text)
        if step is None or step[0] <= 0:
            raise ValueError(f"increment {text!r} is not a positive decimal")
        self.text = text
        self.step = step
        self.tolerance = tolerance

    def snap(self, value: Scaled) -> Scaled | None:
        """`value` when on the grid, the nearest grid point when within
        tolerance, None when off the grid."""
        step = self.step
        # rescale() of both, written out: this runs for every new price and quantity.
        if value[1] >= step[1]:
            mantissa, unit = value[0], step[0] * POW10[value[1] - step[1]]
        else:
            mantissa, unit = value[0] * POW10[step[1] - value[1]], step[0]
        remainder = mantissa % unit
        if remainder == 0:
            return value
        distance = min(remainder, unit - remainder)
        # distance / unit <= tolerance, in integers: no float rounding at the edge.
        if distance * 1_000_000 > int(self.tolerance * 1_000_000) * unit:
            return None
        units = (mantissa + unit // 2) // unit
        return units * step[0], step[1]
