"""One Binance USD-M connection: a fixed set of streams on one route, kept open forever.

`Connection.run` connects, subscribes (in the URL while it fits, then by
paced SUBSCRIBE messages), hands each decoded event on (diff depth to the
book sync, the rest to the sink), and reconnects with capped exponential
back-off and jitter whenever the socket is lost:

- closed by the venue or broken: reconnect;
- silent: a stream that should be busy sent nothing for `silence_timeout_s`:
  close and reconnect (the venue acknowledges even a dead subscription);
- old: before the venue's 24-hour close, open a replacement first, hold its
  events back until the old socket has caught up with it, then switch and
  close the old one (`raven.connectors.dedup.Handover`): no gap, no repeat.

Every attempt and outcome is logged and counted in `stats`. A failure here
only ever affects this connection: the connector runs each in its own task.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Iterable, Iterator

import aiohttp
import msgspec

from raven.config import BinanceFuturesConfig
from raven.connectors.backoff import exponential_backoff
from raven.connectors.base import EventSink
from raven.connectors.binance import wire
from raven.connectors.binance.book_sync import BookSync
from raven.connectors.binance.decode import FrameDecoder
from raven.connectors.binance.link import Link, LinkErrors, LinkMode
from raven.connectors.binance.streams import Route, Stream, StreamType, combined_url
from raven.connectors.dedup import Deduplicator, Handover
from raven.connectors.liveness import check_silence
from raven.connectors.pacing import SendPacer, split_subscriptions
from raven.model import BookDelta, Event, Status
from raven.ops import tracing
from raven.types import S_NS, StatusKind

log = logging.getLogger("raven.connectors.binance")

EXCHANGE = "binance_futures"
HANDOVER_LIMIT = 200_000  # events held from a replacement before switching regardless


class ConnectionStats(msgspec.Struct):
    """Counters and state for metrics and /health: plain values, updated in place."""

    connected: bool = False
    attempts: int = 0  # connection attempts, replacements included
    connects: int = 0  # attempts that opened a socket
    failures: int = 0  # attempts that failed to open or subscribe
    disconnects: int = 0  # connected sockets lost: closed by the venue, broken, silent
    silence_reconnects: int = 0  # of those, closed by Raven for a silent stream
    rollovers: int = 0  # replacements before the 24-hour limit completed
    forced_handovers: int = 0  # of those, switched without seeing the old one catch up
    subscribe_messages: int = 0
    subscribe_errors: int = 0  # error replies to SUBSCRIBE
    last_message_ns: int = 0  # receive time of the latest frame, any socket
    connected_since_ns: int = 0
    disconnected_ns: int = 0  # when the latest socket was lost (0: never)
    last_error: str = ""


def _deliverer(sink: EventSink, books: BookSync | None) -> EventSink:
    """Diff depth events to the book sync (which emits them in order), the rest to the sink."""
    on_delta = books.on_delta if books is not None else sink

    def deliver(event: Event) -> None:
        if type(event) is BookDelta:
            on_delta(event)
        else:
            sink(event)

    return deliver


class _End(enum.Enum):
    CLOSED = "closed"
    SILENT = "silent"
    OLD = "old"


class Connection:
    """One logical connection; see the module docstring."""

    def __init__(
        self,
        label: str,
        route: Route,
        streams: list[Stream],
        config: BinanceFuturesConfig,
        sink: EventSink,
        books: BookSync | None = None,
    ) -> None:
        self.label = label
        self.route = route
        self.streams = streams
        self.config = config
        self.sink = sink
        self.books = books
        self.stats = ConnectionStats()
        self.dedup = Deduplicator()
        self.decoder = FrameDecoder(EXCHANGE, streams, config.max_frame_bytes, self.dedup)
        base = combined_url(config.ws_url, route, [])
        in_url, self.batches = split_subscriptions(
            [s.name for s in streams],
            len(base) + len("?streams="),
            config.max_url_length,
            config.subscribe_batch_size,
        )
        self.url = combined_url(config.ws_url, route, in_url)
        busy = set(config.busy_streams)
        self.watched = [s.name for s in streams if s.type.value in busy]
        self.depth_symbols = [s.symbol for s in streams if s.type is StreamType.DEPTH_DIFF]
        self.active: Link | None = None
        self._handover: Handover[tuple[Event, ...]] | None = None
        self._wake = asyncio.Event()  # a link ended, or a handover became ready
        self._group: asyncio.TaskGroup | None = None
        self.deliver = _deliverer(sink, books)

    # Plain attributes the health layer and older tests read.
    @property
    def connected(self) -> bool:
        return self.stats.connected

    @property
    def connects(self) -> int:
        return self.stats.connects

    @property
    def failures(self) -> int:
        return self.stats.failures

    @property
    def last_message_ns(self) -> int:
        return self.stats.last_message_ns

    def unwatch(self, symbols: Iterable[str]) -> None:
        """Stop expecting traffic from `symbols` (e.g. not listed by the venue)."""
        gone = set(symbols)
        self.watched = [
            s.name for s in self.streams if s.name in self.watched and s.symbol not in gone
        ]

    async def run(self, session: aiohttp.ClientSession) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            await self._keep_connected(session)

    def _delays(self) -> Iterator[float]:
        return exponential_backoff(self.config.reconnect_initial_s, self.config.reconnect_max_s)

    async def _keep_connected(self, session: aiohttp.ClientSession) -> None:
        delays = self._delays()
        while True:
            self.dedup.reset()  # a fresh start: nothing can repeat
            link = await self._open(session, LinkMode.ACTIVE)
            if link is not None:
                end, healthy = await self._serve(session, link)
                self._lost(link, end)
                if healthy:
                    delays = self._delays()
            delay = next(delays)
            log.info("%s: reconnecting in %.2f s", self.label, delay)
            await asyncio.sleep(delay)

    async def _open(self, session: aiohttp.ClientSession, mode: LinkMode) -> Link | None:
        """Connect and subscribe; None (counted and logged) when that fails."""
        stats = self.stats
        stats.attempts += 1
        log.info("%s: connecting (attempt %d)", self.label, stats.attempts)
        try:
            # A span per connection attempt (no-op unless tracing is on).
            with tracing.span("connector.connect", connection=self.label, mode=mode.name):
                ws = await session.ws_connect(
                    self.url,
                    autoping=True,  # the venue pings every 3 minutes; pongs go out at once
                    heartbeat=self.config.ping_interval_s or None,
                    # No transport limit: a frame past it would end the connection (and
                    # resync every book on it). The decoder counts and skips a frame over
                    # max_frame_bytes without parsing it, whatever its size.
                    max_msg_size=0,
                    decode_text=False,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
                )
        except LinkErrors as exc:
            self._failed(f"connect failed: {exc or type(exc).__name__}")
            return None
        pacer = SendPacer(self.config.subscribe_messages_per_s)
        link = Link(ws, self.label, mode, pacer)
        if mode is LinkMode.HELD:
            self._handover = Handover(self.dedup, HANDOVER_LIMIT)
            self.dedup.watch = self._handover
        assert self._group is not None
        self._group.create_task(link.read(self._on_message, self._on_end), name=self.label)
        try:
            stats.subscribe_messages += await link.subscribe(self.batches)
        except LinkErrors as exc:
            await link.close("subscribe failed")
            self._failed(f"subscribe failed: {exc or type(exc).__name__}")
            return None
        stats.connects += 1
        log.info("%s: connected (%d streams, %s)", self.label, len(self.streams), mode.value)
        return link

    def _failed(self, reason: str) -> None:
        self.stats.failures += 1
        self.stats.last_error = reason
        log.warning("%s: %s", self.label, reason)

    async def _serve(self, session: aiohttp.ClientSession, link: Link) -> tuple[_End, bool]:
        """Run until the active link is gone; replace it when old. (end, healthy)"""
        stats = self.stats
        self.active = link
        stats.connected = True
        stats.connected_since_ns = since = time.time_ns()
        self._status(StatusKind.FEED_CONNECTED, f"{len(self.streams)} streams")
        replace_at = link.opened_ns + int(self.config.max_connection_age_s * S_NS)
        retries = self._delays()
        while True:
            end = await self._watch(link, since, replace_at)
            if end is not _End.OLD:
                break
            replacement = await self._replace(session, link)
            if replacement is None:
                if link.closed.is_set():
                    end = _End.CLOSED
                    break
                replace_at = time.time_ns() + int(next(retries) * S_NS)  # try again soon
                continue
            link = replacement
            replace_at = link.opened_ns + int(self.config.max_connection_age_s * S_NS)
            retries = self._delays()
        await link.close("silent" if end is _End.SILENT else "lost")
        return end, link.frames > 0 and end is _End.CLOSED

    async def _watch(self, link: Link, since: int, replace_at: int) -> _End:
        """Wait for the link to end, a watched stream to go silent, or replacement time."""
        timeout_ns = int(self.config.silence_timeout_s * S_NS)
        while not link.closed.is_set():
            now = time.time_ns()
            silence = check_silence(self.decoder.last_seen, self.watched, since, now, timeout_ns)
            if silence.silent:
                log.warning(
                    "%s: no data for %.1f s on %s; reconnecting", self.label,
                    self.config.silence_timeout_s, ", ".join(silence.silent[:10]),
                )  # fmt: skip
                return _End.SILENT
            if now >= replace_at:
                return _End.OLD
            wake_at = min(silence.deadline_ns, replace_at)
            try:
                async with asyncio.timeout((wake_at - now) / S_NS):
                    await link.closed.wait()
            except TimeoutError:
                pass
        return _End.CLOSED

    async def _replace(self, session: aiohttp.ClientSession, old: Link) -> Link | None:
        """Open a replacement for `old`, switch when safe; the new link, or None."""
        log.info("%s: replacing the connection before the venue's 24-hour limit", self.label)
        new = await self._open(session, LinkMode.HELD)
        handover = self._handover
        if new is None or handover is None:
            self._drop_handover()
            return None
        try:
            async with asyncio.timeout(self.config.handover_timeout_s):
                while not (handover.ready or old.closed.is_set() or new.closed.is_set()):
                    self._wake.clear()
                    await self._wake.wait()
        except TimeoutError:
            pass
        if new.closed.is_set():
            self._drop_handover()
            self._failed(f"replacement lost during the overlap: {new.end_reason}")
            return None
        forced = not handover.ready
        self._switch(old, new, handover)
        await old.close("replaced")
        self.stats.rollovers += 1
        self.stats.forced_handovers += forced
        log.info(
            "%s: switched to the replacement%s", self.label,
            " (forced: the old connection was not seen to catch up)" if forced else "",
        )  # fmt: skip
        return new

    def _switch(self, old: Link, new: Link, handover: Handover[tuple[Event, ...]]) -> None:
        """Synchronous, so no frame slips between the two sockets."""
        old.mode = LinkMode.RETIRED
        deliver = self.deliver
        for events in handover.release():
            for event in events:
                deliver(event)
        new.mode = LinkMode.ACTIVE
        self._handover = None
        self.active = new

    def _drop_handover(self) -> None:
        self._handover = None
        self.dedup.watch = None

    def _on_message(self, link: Link, msg: aiohttp.WSMessage) -> None:
        if msg.type is not aiohttp.WSMsgType.TEXT and msg.type is not aiohttp.WSMsgType.BINARY:
            return
        received = time.time_ns()
        self.stats.last_message_ns = received
        mode = link.mode
        if mode is LinkMode.ACTIVE:
            out = self.decoder.decode(msg.data, received)
            if isinstance(out, wire.Reply):
                self._reply(link, out)
                return
            link.frames += 1
            deliver = self.deliver
            for event in out:
                deliver(event)
            handover = self._handover
            if handover is not None and handover.ready:
                self._wake.set()
        elif mode is LinkMode.HELD:
            held = self.decoder.decode_held(msg.data, received)
            if isinstance(held, wire.Reply):
                self._reply(link, held)
            elif held is not None and self._handover is not None:
                link.frames += 1
                self._handover.hold(*held)
                if self._handover.ready:
                    self._wake.set()

    def _on_end(self, link: Link) -> None:
        self._wake.set()

    def _reply(self, link: Link, reply: wire.Reply) -> None:
        streams = link.acknowledged(reply)
        if reply.error is not None:
            self.stats.subscribe_errors += 1
            log.error(
                "%s: the venue refused a request (%d: %s) for %s", self.label,
                reply.error.code, reply.error.msg, ", ".join((streams or [])[:10]) or "?",
            )  # fmt: skip

    def _lost(self, link: Link, end: _End) -> None:
        stats = self.stats
        stats.connected = False
        stats.disconnected_ns = time.time_ns()
        stats.disconnects += 1
        stats.silence_reconnects += end is _End.SILENT
        stats.last_error = link.end_reason
        log.warning("%s: connection lost (%s: %s)", self.label, end.value, link.end_reason)
        self._status(StatusKind.FEED_DISCONNECTED, f"{end.value}: {link.end_reason}; reconnecting")
        if self.books is not None:
            for symbol in self.depth_symbols:
                self.books.mark_stale(symbol, f"connection lost: {link.end_reason}")

    def _status(self, kind: StatusKind, detail: str) -> None:
        now = time.time_ns()
        self.sink(Status(EXCHANGE, "", kind, f"{self.label}: {detail}", now, now))
