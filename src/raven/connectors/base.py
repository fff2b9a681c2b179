"""The boundary between connectors and the rest of Raven."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from raven.model import Event

EventSink = Callable[[Event], None]  # called on the event loop, once per normalized event


class Connector(Protocol):
    """A venue feed: `run()` connects, keeps the feed alive, and hands each
    normalized event to the sink it was built with, until cancelled."""

    name: str

    async def run(self) -> None: ...

    def request_resync(self, symbol: str, reason: str) -> None:
        """Rebuild `symbol`'s book from a fresh snapshot (e.g. a later layer
        rejected one of its deltas). Returns at once; the connector emits
        Status BOOK_STALE now and a BookSnapshot + Status BOOK_LIVE when done."""
        ...
