"""Test helpers shared by the suite (no mocks: real parts on loopback)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path


def _shared_fixtures() -> Path:
    """`shared/fixtures` beside the checkout, or beside a folder above it (worktrees)."""
    here = Path(__file__).resolve()
    for parent in here.parents[1:]:
        candidate = parent / "shared" / "fixtures"
        if candidate.is_dir():
            return candidate
    return here.parents[2] / "shared" / "fixtures"


FIXTURES = _shared_fixtures()
CAPTURE = FIXTURES / "binance-usdm-2021-07"


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Yield to the loop until `predicate()` holds; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(0.01)


def free_port() -> int:
    """A loopback port that was free a moment ago (for tests that need a fixed port)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
