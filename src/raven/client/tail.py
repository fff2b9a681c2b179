"""`raven tail`: a live terminal view built on the client.

One row per symbol: best bid/ask from quotes, the last trade, and, once
those kinds flow, the top of the order book (rebuilt locally from snapshot
+ deltas) and the newest candle. Below it, the most recent trades. When
stdout is not a terminal, it prints one line per event instead. Gaps and
reconnects are counted in the title.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from raven.client.aio import AsyncRavenClient
from raven.client.book import LocalBook
from raven.client.format import clock, format_event
from raven.client.stream import Gap, MarketStream
from raven.model import BookDelta, BookSnapshot, Candle, Event, Quote, Trade
from raven.types import Kind, Side

RECENT_TRADES = 12  # rows in the "recent trades" panel
BASE_COLUMNS = ("symbol", "bid", "ask", "spread", "last", "trades", "quotes")


class SymbolView:
    __slots__ = ("book", "candles", "latency_ms", "quote", "quotes", "trade", "trades")

    def __init__(self, symbol: str) -> None:
        self.quote: Quote | None = None
        self.trade: Trade | None = None
        self.candles: dict[str, Candle] = {}  # newest update per interval
        self.book = LocalBook(symbol)
        self.quotes = 0
        self.trades = 0
        self.latency_ms = 0.0  # server receive -> client receive, smoothed


class TailView:
    """What the terminal shows, updated event by event."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self.symbols = {s: SymbolView(s) for s in symbols}
        self.recent: collections.deque[Trade] = collections.deque(maxlen=RECENT_TRADES)
        self.events = 0
        self.gaps = 0  # events missed
        self.reconnects = 0
        self.books = False  # a column appears once its kind flows
        self.candles = False
        self.started = time.monotonic()

    def update(self, item: Event | Gap, now_ns: int) -> None:
        if isinstance(item, Gap):
            self.gaps += item.dropped
            self.reconnects += item.reconnect
            for view in self.symbols.values():
                view.book.apply(item)
            return
        self.events += 1
        if item.symbol not in self.symbols:
            self.symbols[item.symbol] = SymbolView(item.symbol)
        view = self.symbols[item.symbol]
        latency = (now_ns - item.receive_time) / 1e6
        view.latency_ms = latency if view.latency_ms == 0 else 0.9 * view.latency_ms + 0.1 * latency
        if isinstance(item, Quote):
            view.quote = item
            view.quotes += 1
        elif isinstance(item, Trade):
            view.trade = item
            view.trades += 1
            self.recent.appendleft(item)
        elif isinstance(item, BookSnapshot | BookDelta):
            self.books = True
            view.book.apply(item)
        elif isinstance(item, Candle):
            self.candles = True
            view.candles[item.interval] = item

    def _columns(self) -> list[str]:
        columns = list(BASE_COLUMNS)
        if self.books:
            columns += ["book bid", "book ask"]
        return [*columns, "latency"]

    def _row(self, symbol: str, v: SymbolView) -> list[Any]:
        q, t = v.quote, v.trade
        last = Text("-")
        if t is not None:
            last = Text(t.price, style="green" if t.side is Side.BUY else "red")
        row: list[Any] = [
            symbol,
            Text(q.bid_price, style="bold green") if q else "-",
            Text(q.ask_price, style="bold red") if q else "-",
            _spread(q) if q else "-",
            last,
            str(v.trades),
            str(v.quotes),
        ]
        if self.books:
            row += [
                _level(v.book.best_bid(), v.book.synced),
                _level(v.book.best_ask(), v.book.synced),
            ]
        row.append(f"{v.latency_ms:.2f} ms")
        return row

    def render(self) -> Group:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        title = f"Raven: {self.events} events, {self.events / elapsed:.0f}/s"
        if self.gaps or self.reconnects:
            title += f", {self.gaps} missed, {self.reconnects} reconnects"
        markets = Table(title=title)
        for name in self._columns():
            markets.add_column(name, justify="left" if name == "symbol" else "right", no_wrap=True)
        for symbol, v in self.symbols.items():
            markets.add_row(*self._row(symbol, v))
        parts: list[Table] = [markets]
        if self.candles:
            parts.append(self._candle_table())
        trades = Table(title="recent trades")
        for name in ("time", "symbol", "side", "quantity", "price", "id"):
            trades.add_column(name)
        for t in self.recent:
            side = Text("BUY", style="green") if t.side is Side.BUY else Text("SELL", style="red")
            trades.add_row(clock(t.exchange_time), t.symbol, side, t.quantity, t.price,
                           str(t.trade_id))  # fmt: skip
        parts.append(trades)
        return Group(*parts)

    def _candle_table(self) -> Table:
        table = Table(title="candles")
        for name in ("symbol", "interval", "open", "high", "low", "close", "volume", "trades"):
            table.add_column(name, justify="left" if name == "symbol" else "right", no_wrap=True)
        for symbol, v in self.symbols.items():
            c = _shown_candle(v.candles)
            if c is not None:
                table.add_row(symbol, c.interval, c.open, c.high, c.low, c.close, c.volume,
                              str(c.trade_count))  # fmt: skip
        return table


def _spread(q: Quote) -> str:
    """Ask minus bid, with the prices' own number of decimals."""
    decimals = max(len(q.bid_price.partition(".")[2]), len(q.ask_price.partition(".")[2]))
    return f"{float(q.ask_price) - float(q.bid_price):.{decimals}f}"


SHOWN_INTERVALS = ("1m", "5m", "1h", "1s")  # the candle column shows the first that flows


def _shown_candle(candles: dict[str, Candle]) -> Candle | None:
    """One interval, always the same one, rather than whichever updated last."""
    for interval in SHOWN_INTERVALS:
        if interval in candles:
            return candles[interval]
    return next(iter(candles.values()), None)


def _level(level: tuple[str, str] | None, synced: bool) -> str:
    if level is None:
        return "-"
    text = f"{level[1]} @ {level[0]}"
    return text if synced else f"({text})"  # parenthesized: the book is resyncing


async def run_tail(
    target: str,
    symbols: Sequence[str],
    kinds: Sequence[Kind] = (Kind.TRADE, Kind.QUOTE),
    duration: float | None = None,
    console: Console | None = None,
    client: AsyncRavenClient | None = None,
) -> TailView:
    """Show live data until `duration` seconds pass (or forever). `client`, when
    given, carries connection options (token, TLS); else a plain one for `target`."""
    console = console or Console()
    view = TailView(symbols)
    client = client or AsyncRavenClient(target)
    with console.status(f"connecting to {client.target} ..."):
        await client.connect()
    try:
        async with client.stream(symbols, kinds) as stream:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_show(stream, view, console), duration)
    finally:
        await client.close()
    return view


async def _show(stream: MarketStream, view: TailView, console: Console) -> None:
    items: AsyncIterator[Event | Gap] = stream.items()
    if not console.is_terminal:  # piped: one plain line per event
        async for item in items:
            view.update(item, time.time_ns())
            if isinstance(item, Gap):
                console.print(f"gap: {item.dropped} missed ({item.reason})", highlight=False)
            else:
                console.print(format_event(item), highlight=False)
        return
    # Live calls view.render at each refresh; events only update the view.
    with Live(console=console, refresh_per_second=8, get_renderable=view.render):
        async for item in items:
            view.update(item, time.time_ns())
