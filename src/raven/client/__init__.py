"""The Python client for Raven's gRPC API.

`AsyncRavenClient` is the asyncio API; `RavenClient` wraps it for ordinary
blocking code. Both return Raven's normalized model (`raven.model`), not raw
protobuf, unless asked for frames.
"""

from raven.client.aio import AsyncRavenClient, MarketStream
from raven.client.sync import RavenClient

__all__ = ["AsyncRavenClient", "MarketStream", "RavenClient"]
