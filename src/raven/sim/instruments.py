"""Simulated instruments: tick and step sizes, fixed-point price formatting.

Prices and quantities are integers in units of 10**-decimals, so the model
never meets a rounding error and formats exactly the text Binance would.
"""

from __future__ import annotations

import zlib

import msgspec


def fmt(units: int, decimals: int) -> str:
    """12345, 2 -> "123.45"; -5, 2 -> "-0.05"; exact, no float."""
    if decimals == 0:
        return str(units)
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


def units(text: str, decimals: int) -> int:
    """ "123.45", 2 -> 12345: the inverse of `fmt` (extra digits must be zeros)."""
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    if len(frac) > decimals:
        raise ValueError(f"{text!r} has more than {decimals} decimals")
    sign = -1 if whole.startswith("-") else 1
    scale: int = 10**decimals
    return sign * (abs(int(whole or "0")) * scale + int(frac.ljust(decimals, "0") or "0"))


class Instrument(msgspec.Struct, frozen=True):
    symbol: str
    price_decimals: int  # digits after the point in price text
    tick: int  # tick size, in units of 10**-price_decimals
    qty_decimals: int
    step: int  # step size, in units of 10**-qty_decimals
    start_price: int  # in price units

    def price(self, units: int) -> str:
        return fmt(units, self.price_decimals)

    def qty(self, units: int) -> str:
        return fmt(units, self.qty_decimals)

    @property
    def tick_size(self) -> str:
        return self.price(self.tick)

    @property
    def step_size(self) -> str:
        return self.qty(self.step)


_KNOWN = {
    "BTCUSDT": Instrument("BTCUSDT", 2, 10, 3, 1, 8_309_170),
    "ETHUSDT": Instrument("ETHUSDT", 2, 1, 3, 1, 318_455),
    "SOLUSDT": Instrument("SOLUSDT", 4, 100, 2, 1, 1_452_300),
    "BNBUSDT": Instrument("BNBUSDT", 3, 10, 2, 1, 612_340),
    "XRPUSDT": Instrument("XRPUSDT", 4, 1, 1, 1, 21_734),
}


def instrument(symbol: str) -> Instrument:
    """The instrument for a symbol; unknown symbols get a stable made-up spec."""
    known = _KNOWN.get(symbol)
    if known is not None:
        return known
    h = zlib.crc32(symbol.encode())
    decimals = 2 + h % 4
    start = (10 + h % 990) * 10**decimals // 10
    return Instrument(symbol, decimals, 1, 1 + h % 3, 1, max(start, 100))
