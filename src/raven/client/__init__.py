"""The Python client for Raven's gRPC API.

`AsyncRavenClient` is the asyncio API; `RavenClient` wraps it for ordinary
blocking code. Both return Raven's normalized model (`raven.model`), not raw
protobuf, unless asked (`MarketStream.frames_raw()`, `client.stub`). Streams
reconnect and resubscribe after a server restart and report what they
missed as `Gap`s; `client.book(symbol)` keeps a local order book.
"""

from raven.client.aio import AsyncRavenClient
from raven.client.book import LiveBook, LocalBook
from raven.client.stream import Gap, MarketStream
from raven.client.sync import RavenClient, SyncBook

__all__ = [
    "AsyncRavenClient",
    "Gap",
    "LiveBook",
    "LocalBook",
    "MarketStream",
    "RavenClient",
    "SyncBook",
]
