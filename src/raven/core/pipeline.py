"""The ingest path: a connector's event in, state updated, subscribers fed.

`Pipeline.ingest` is the sink every connector calls, on the event loop,
once per normalized event. It is a chain of plain function calls: encode
once, update the latest state, publish to the bus.
"""

from __future__ import annotations

from raven import codec
from raven.core.bus import Bus
from raven.core.state import MarketState
from raven.model import Event


class Pipeline:
    def __init__(self, state: MarketState, bus: Bus) -> None:
        self.state = state
        self.bus = bus
        self.ingested = 0

    def ingest(self, event: Event) -> None:
        self.ingested += 1
        chunk = codec.encode(event)
        self.state.apply(event, chunk)
        self.bus.publish((event.kind, event.exchange, event.symbol), chunk)
