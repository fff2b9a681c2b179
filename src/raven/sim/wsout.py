"""Many WebSocket text frames in one socket write.

aiohttp writes each frame with its own `transport.write`, and on an idle
socket each write is a `send` system call: at 10,000 frames/s that was the
biggest single cost of the simulator after the market model (and each small
TCP segment is also a read wake-up for the client). The venue's frames are
unchanged: each event is still its own text frame, as on Binance; only
frames queued at the same moment share a TCP write.

Only for connections without permessage-deflate (a compressed frame needs
aiohttp's compressor); the server falls back to `send_frame` otherwise.
Flow control stays: after a write that fills the transport past its high
water mark, `send` waits until it has drained, as aiohttp's `send_frame`
does, so a slow client still backs frames up into the connection's bounded
queue (and is closed as a slow consumer when that is full).
"""

from __future__ import annotations

import asyncio
import collections
import struct

from aiohttp.base_protocol import BaseProtocol

BATCH_BYTES = 1 << 16  # at most this much payload per write (then the next write)
_TEXT = 0x81  # FIN + opcode 1 (text); server frames are never masked
_LEN16 = struct.Struct("!BBH").pack
_LEN64 = struct.Struct("!BBQ").pack
_SHORT = [bytes((_TEXT, n)) for n in range(126)]  # the 2-byte headers, made once


def header(length: int) -> bytes:
    """The header of an unmasked, final text frame of `length` payload bytes (RFC 6455 5.2)."""
    if length < 126:
        return _SHORT[length]
    if length < 65536:
        return _LEN16(_TEXT, 126, length)
    return _LEN64(_TEXT, 127, length)


class FrameWriter:
    """Writes queued text frames to one connection's transport, several per write."""

    def __init__(self, transport: asyncio.Transport, protocol: BaseProtocol) -> None:
        self.transport = transport
        self.protocol = protocol

    async def send(self, queue: collections.deque[bytes]) -> int:
        """Send frames from the left of `queue` (up to BATCH_BYTES) in one write;
        returns how many. Raises ConnectionResetError when the socket is closing."""
        transport = self.transport
        if transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        parts: list[bytes] = []
        size = 0
        while queue and size < BATCH_BYTES:
            frame = queue.popleft()
            parts.append(header(len(frame)))
            parts.append(frame)
            size += len(frame)
        transport.write(b"".join(parts))
        if self.protocol.writing_paused:
            # aiohttp's own wait for the transport's resume_writing (what
            # send_frame awaits); there is no public drain for a WebSocket.
            await self.protocol._drain_helper()
        return len(parts) // 2
