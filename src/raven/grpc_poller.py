"""grpc.aio's completion wake-ups, read in one go per event-loop turn.

grpc.aio (its `PollerCompletionQueue`) hands finished operations (a message
written, a message read) from a poller thread to the event loop: per
completion, the thread queues the event and writes one byte to a socket pair;
the loop's reader for that socket reads *one* byte, then handles every queued
event. Under load the loop turns less often than completions arrive, so the
bytes pile up. A Unix socket's send buffer holds about 277 one-byte writes
(768 bytes of buffer each, 208 KB), after which the poller thread blocks in
`write()` until the loop has read about three quarters of them back, one per
turn: for tens of milliseconds no completion reaches Python and every stream
waits for its last write. Measured on the development machine at 10,000
events/s to 10 clients: the socket held 277 bytes; grpc core had completed
each write within the write call, but the completion reached Python up to
66 ms later (p99.9 39 ms), while the client already had the frame; the
latency p99 was 32-97 ms over five 20 s windows, 8-15 ms with the wake-ups
drained every turn (BENCHMARKS.md, fourth session).

`drain_wakeups(loop)` swaps grpc's reader for one that first reads all but
one of the waiting bytes, then calls grpc's own handler, which reads the last
and handles every queued event. Nothing is lost: the poller queues an event
before it writes its byte, so every event whose byte was read here is in the
queue the handler empties, and a byte written after the read stays for the
next turn.

grpc's attributes are private to its Cython code, so the socket and handler
are found through the garbage collector. When they are not there (another
grpc version; nothing of grpc.aio created on this loop yet), nothing changes
and the call returns False. The server calls it once it listens; a client
once its channel exists.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import functools
import gc
import logging
import socket
import termios
import weakref
from collections.abc import Callable

log = logging.getLogger("raven.grpc")

HANDLER = "_handle_events"  # PollerCompletionQueue's reader, bound per loop with functools.partial

_drained: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def drain_wakeups(loop: asyncio.AbstractEventLoop) -> bool:
    """Install the draining reader on `loop` (once); True when it is in place."""
    if loop in _drained:
        return True
    found = _find(loop)
    if found is None:
        log.debug("grpc.aio's completion socket not found on this loop; left as it is")
        return False
    sock, _, handler = found
    loop.remove_reader(sock)
    loop.add_reader(sock, _reader(sock, handler))
    _drained.add(loop)
    return True


def is_drained(loop: asyncio.AbstractEventLoop) -> bool:
    """True once `drain_wakeups` is in place on `loop`."""
    return loop in _drained


def waiting_bytes(sock: socket.socket) -> int:
    """Bytes ready to read on `sock` (FIONREAD)."""
    out = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, out)
    return out[0]


def poller_sockets(loop: asyncio.AbstractEventLoop) -> tuple[socket.socket, socket.socket] | None:
    """grpc's (read, write) wake-up sockets bound to `loop`, if any (tests use them)."""
    found = _find(loop)
    return None if found is None else (found[0], found[1])


def _reader(sock: socket.socket, handler: Callable[[], None]) -> Callable[[], None]:
    def read() -> None:
        waiting = waiting_bytes(sock)
        if not waiting:  # every event with a byte read is handled: nothing to do
            return
        if waiting > 1:
            sock.recv(waiting - 1)  # grpc's handler reads the last one itself
        handler()

    return read


def _find(
    loop: asyncio.AbstractEventLoop,
) -> tuple[socket.socket, socket.socket, Callable[[], None]] | None:
    """grpc's reader for `loop` (a partial of `_handle_events` bound to it) and
    the (read, write) socket pair of its poller."""
    for obj in gc.get_objects():
        if type(obj) is not functools.partial or getattr(obj.func, "__name__", "") != HANDLER:
            continue
        if obj.args[:1] != (loop,):
            continue
        poller = obj.func.__self__  # type: ignore[attr-defined]
        # grpc makes the read end non-blocking; the poller thread writes to the other.
        pair = [s for s in gc.get_referents(poller) if isinstance(s, socket.socket)]
        reads = [s for s in pair if not s.getblocking()]
        writes = [s for s in pair if s.getblocking()]
        if len(reads) == 1 and len(writes) == 1:
            return reads[0], writes[0], obj
    return None
