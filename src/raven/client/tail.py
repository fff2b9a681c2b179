"""`raven tail`: a live terminal view of quotes and trades, built on the client."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from raven.client.aio import AsyncRavenClient
from raven.client.format import clock, format_event
from raven.model import Event, Quote, Trade
from raven.types import Kind, Side

RECENT_TRADES = 12  # rows in the "recent trades" panel


class SymbolView:
    __slots__ = ("latency_ms", "quote", "quotes", "trade", "trades")

    def __init__(self) -> None:
        self.quote: Quote | None = None
        self.trade: Trade | None = None
        self.quotes = 0
        self.trades = 0
        self.latency_ms = 0.0  # server receive -> client receive, smoothed


class TailView:
    """What the terminal shows, updated event by event."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self.symbols = {s: SymbolView() for s in symbols}
        self.recent: collections.deque[Trade] = collections.deque(maxlen=RECENT_TRADES)
        self.events = 0
        self.started = time.monotonic()

    def update(self, event: Event, now_ns: int) -> None:
        self.events += 1
        view = self.symbols.setdefault(event.symbol, SymbolView())
        latency = (now_ns - event.receive_time) / 1e6
        view.latency_ms = latency if view.latency_ms == 0 else 0.9 * view.latency_ms + 0.1 * latency
        if isinstance(event, Quote):
            view.quote = event
            view.quotes += 1
        elif isinstance(event, Trade):
            view.trade = event
            view.trades += 1
            self.recent.appendleft(event)

    def render(self) -> Group:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        markets = Table(title=f"Raven: {self.events} events, {self.events / elapsed:.0f}/s")
        for name, justify in (
            ("symbol", "left"),
            ("bid size", "right"),
            ("bid", "right"),
            ("ask", "right"),
            ("ask size", "right"),
            ("last", "right"),
            ("trades", "right"),
            ("quotes", "right"),
            ("latency", "right"),
        ):
            markets.add_column(name, justify=justify)  # type: ignore[arg-type]
        for symbol, v in self.symbols.items():
            q, t = v.quote, v.trade
            last = Text("-")
            if t is not None:
                last = Text(t.price, style="green" if t.side is Side.BUY else "red")
            markets.add_row(
                symbol,
                q.bid_quantity if q else "-",
                Text(q.bid_price, style="bold green") if q else "-",
                Text(q.ask_price, style="bold red") if q else "-",
                q.ask_quantity if q else "-",
                last,
                str(v.trades),
                str(v.quotes),
                f"{v.latency_ms:.2f} ms",
            )
        trades = Table(title="recent trades")
        for name in ("time", "symbol", "side", "quantity", "price", "id"):
            trades.add_column(name)
        for t in self.recent:
            side = Text("BUY", style="green") if t.side is Side.BUY else Text("SELL", style="red")
            trades.add_row(clock(t.exchange_time), t.symbol, side, t.quantity, t.price,
                           str(t.trade_id))  # fmt: skip
        return Group(markets, trades)


async def run_tail(
    target: str,
    symbols: Sequence[str],
    kinds: Sequence[Kind] = (Kind.TRADE, Kind.QUOTE),
    duration: float | None = None,
    console: Console | None = None,
) -> TailView:
    """Show live data until `duration` seconds pass (or forever)."""
    console = console or Console()
    view = TailView(symbols)
    async with AsyncRavenClient(target) as client, client.stream(symbols, kinds) as stream:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_show(stream.events(), view, console), duration)
    return view


async def _show(events: AsyncIterator[Event], view: TailView, console: Console) -> None:
    if not console.is_terminal:  # piped: one plain line per event
        async for event in events:
            view.update(event, time.time_ns())
            console.print(format_event(event), highlight=False)
        return
    # Live calls view.render at each refresh; events only update the view.
    with Live(console=console, refresh_per_second=8, get_renderable=view.render):
        async for event in events:
            view.update(event, time.time_ns())
