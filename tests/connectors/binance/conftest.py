"""A scripted Binance-like peer on loopback for the connector's I/O tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.connectors.binance.venue import Venue


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    peer = Venue()
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()
