"""The simulator's network face: Binance USD-M WebSocket and REST on loopback.

WebSocket paths, as on the venue: `/<route>/ws/<stream>[/<stream>...]` (raw
payloads), `/<route>/stream?streams=a/b` (combined `{"stream","data"}`
frames), and the same without a route (which only carries `/public`
streams). REST: see `rest.py`. Control (not on the venue):
`POST /_sim/fault` (a JSON fault spec, see `faults.py`), `GET /_sim/stats`,
`GET /_sim/truth?symbol=&update_id=` (the true book at an update id).

`Simulator` owns every task: the feed (live market model or a replayed
capture), the keeper of connection clocks, the fault schedule, and one
reader + one writer per connection. `stop()` cancels them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import msgspec
from aiohttp import WSMessage, WSMsgType, web

from raven.config import SimulatorConfig
from raven.connectors.binance.streams import Route
from raven.sim.capture import Capture, read_capture
from raven.sim.faults import Faults, parse_fault, spec_decoder
from raven.sim.feed import LiveFeed
from raven.sim.hub import CLOSE_POLICY, Hub, SimConnection
from raven.sim.limits import Clock, RestLimiter, SystemClock
from raven.sim.market import MarketModel, Truth
from raven.sim.names import parse_name
from raven.sim.protocol import Keeper, Requests
from raven.sim.replay import ReplayFeed, ReplayRest
from raven.sim.rest import LiveRest, RestApi, RestSource
from raven.sim.stats import SimStats
from raven.sim.wsout import FrameWriter

log = logging.getLogger("raven.sim")

CLOSE_WAIT_S = 5.0  # how long a closing handshake may take before the socket is dropped
MAX_INCOMING_BYTES = 1 << 20


class Simulator:
    """Owns the web server, the feed and every task; see the module docstring."""

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        rest_clock: Clock | None = None,
        capture: Capture | None = None,
    ) -> None:
        self.config = config
        self.stats = SimStats()
        self.feed_enabled = asyncio.Event()
        self.feed_enabled.set()
        self.port = config.port
        if capture is None and config.replay_file:
            capture = read_capture(config.replay_file)
        self.model: MarketModel | None = None
        self.feed: LiveFeed | None = None
        self.replay: ReplayFeed | None = None
        self.hub = Hub(lambda name: frozenset(), self.stats, config.record_frames)
        source = self._replay(capture) if capture is not None else self._live()
        self.limiter = RestLimiter(
            config.rest_weight_limit,
            config.rest_ban_s,
            config.rest_429s_before_ban,
            rest_clock or SystemClock(),
        )
        self.rest = RestApi(source, self.limiter, self.stats, config.rest_weight_limit)
        self.faults = Faults(self.hub, self.rest.faults, self.limiter, self.stats)
        self.requests = Requests(self.hub, config.max_streams_per_connection, self.stats)
        self.keeper = Keeper(self.hub, config, self.stats)
        self.schedule = [parse_fault(text) for text in config.faults]
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def _live(self) -> RestSource:
        """Serve the market model: its truth, its feed, its REST answers."""
        config = self.config
        self.model = MarketModel(
            config.symbols,
            config.seed,
            config.trade_share,
            depth=config.book_depth,
            history=config.truth_history,
            liquidation_share=config.liquidation_share,
        )
        self.hub.router = _live_router(frozenset(config.symbols))
        self.feed = LiveFeed(self.model, self.hub, config, self.stats, self.feed_enabled)
        return LiveRest(self.model)

    def _replay(self, capture: Capture) -> RestSource:
        """Serve a capture: its streams, its REST answers."""
        config = self.config
        replay = ReplayFeed(
            capture,
            self.hub,
            config.replay_speed,
            config.replay_start_grace_s,
            self.feed_enabled,
            self.stats,
        )
        self.replay = replay
        self.hub.router = replay.router
        return ReplayRest(capture, lambda: replay.position_ns)

    @property
    def truth(self) -> Truth:
        """The true books (live mode only)."""
        if self.model is None:
            raise RuntimeError("a replayed capture has no truth book: run the market model")
        return Truth(self.model)

    @property
    def ws_url(self) -> str:
        return f"ws://{_url_host(self.config.host)}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{_url_host(self.config.host)}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(self.rest.routes())
        app.add_routes(
            [
                web.get("/{route:public|market}/ws/{streams:.*}", self._ws),
                web.get("/{route:public|market}/ws", self._ws),
                web.get("/{route:public|market}/stream", self._ws),
                web.get("/ws/{streams:.*}", self._ws),
                web.get("/ws", self._ws),
                web.get("/stream", self._ws),
                web.post("/_sim/fault", self._fault),
                web.get("/_sim/stats", self._stats),
                web.get("/_sim/truth", self._truth),
            ]
        )
        return app

    async def start(self) -> None:
        sock = bind_socket(self.config.host, self.config.port)
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(
            self.app(), handle_signals=False, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        if self.replay is not None:
            self._spawn(self.replay.run(), "sim-replay")
        if self.feed is not None:
            self._spawn(self.feed.run(), "sim-feed")
        self._spawn(self.keeper.run(), "sim-keeper")
        if self.schedule:
            self._spawn(self.faults.run_schedule(self.schedule), "sim-faults")
        what = "replaying a capture" if self.replay else f"{len(self.config.symbols)} symbols"
        log.info("simulator listening on %s (%s)", self.ws_url, what)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_log_failure)
        self._tasks.append(task)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for conn in list(self.hub.connections):
            conn.abort()
        if self._runner is not None:
            await self._runner.cleanup()

    def step(self) -> None:
        """Make one market transaction now and send its real-time events (live mode)."""
        if self.feed is None:
            raise RuntimeError("a replaying simulator has no market model to step")
        self.feed.step()

    # --- WebSocket ---------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(
            autoping=False, max_msg_size=MAX_INCOMING_BYTES, timeout=CLOSE_WAIT_S
        )
        await ws.prepare(request)
        conn = self._connect(request)
        frames = None  # several frames per socket write, unless the frames are compressed
        if request.transport is not None and not ws.compress:
            frames = FrameWriter(request.transport, request.protocol)
        writer = asyncio.create_task(self._writer(ws, conn, frames), name="sim-ws-writer")
        try:
            await self._read(ws, conn)
        finally:
            if conn.close_request is not None or conn.overflowed:
                await asyncio.wait({writer}, timeout=CLOSE_WAIT_S)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self.hub.remove(conn)
        return ws

    def _connect(self, request: web.Request) -> SimConnection:
        """A new connection on the request's route and URL form, with its URL's streams."""
        route_name = request.match_info.get("route")
        combined = request.path.endswith("/stream")
        text = request.query.get("streams", "") if combined else request.match_info.get("streams")
        names = [n for n in (text or "").split("/") if n]
        now = asyncio.get_running_loop().time()
        config = self.config
        route = Route(route_name) if route_name else None
        conn = SimConnection(
            route,
            combined,
            config.queue_frames,
            config.record_frames,
            now,
            config.max_incoming_per_s,
        )
        if request.transport is not None:
            conn.abort = request.transport.abort
        self.stats.connections += 1
        self.hub.add(conn)
        self.keeper.admit(conn, now)
        if len(set(names)) > config.max_streams_per_connection:
            self.requests.too_many(conn)
        else:
            self.hub.subscribe(conn, names)
        return conn

    async def _read(self, ws: web.WebSocketResponse, conn: SimConnection) -> None:
        loop = asyncio.get_running_loop()
        async for msg in ws:
            if conn.closing or not self._incoming(conn, msg, loop.time()):
                return

    def _incoming(self, conn: SimConnection, msg: WSMessage, now: float) -> bool:
        """Handle one incoming message; False when the connection must close."""
        if not conn.allow_incoming(now):
            self.stats.rate_closes += 1
            conn.close(CLOSE_POLICY, "Too many requests")
            return False
        if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
            self.requests.handle(conn, msg.data)
        elif msg.type is WSMsgType.PING:
            conn.send_control(False, msg.data)
        elif msg.type is WSMsgType.PONG:
            conn.last_pong = now
        return not conn.closing

    async def _writer(
        self, ws: web.WebSocketResponse, conn: SimConnection, frames: FrameWriter | None
    ) -> None:
        """The only task that writes to `ws`: frames, pings/pongs, then the close."""
        queue, control = conn.queue, conn.control
        with contextlib.suppress(ConnectionError):
            while True:
                await conn.wakeup.wait()
                conn.wakeup.clear()
                while (control or queue) and not conn.overflowed:
                    while control:
                        ping, data = control.popleft()
                        await (ws.ping(data) if ping else ws.pong(data))
                    if queue and frames is not None:
                        conn.frames_sent += await frames.send(queue)
                    elif queue:
                        await ws.send_frame(queue.popleft(), WSMsgType.TEXT)
                        conn.frames_sent += 1
                if conn.overflowed:
                    self.stats.slow_closes += 1
                    await ws.close(code=CLOSE_POLICY, message=b"Slow consumer")
                    return
                conn.drained.set()
                if conn.close_request is not None:
                    code, reason = conn.close_request
                    await ws.close(code=code, message=reason.encode())
                    return

    # --- control endpoints -------------------------------------------------

    async def _fault(self, request: web.Request) -> web.Response:
        try:
            spec = spec_decoder.decode(await request.read())
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _json({"error": f"bad fault spec: {exc}"}, 400)
        affected = self.faults.apply(spec)
        return _json({"kind": type(spec).__name__.lower(), "affected": affected}, 200)

    async def _stats(self, request: web.Request) -> web.Response:
        return _json(msgspec.to_builtins(self.stats), 200)

    async def _truth(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "")
        try:
            truth = self.truth
            update_id = int(request.query.get("update_id") or truth.last_update_id(symbol))
            bids, asks = truth.book_at(symbol, update_id)
        except (RuntimeError, KeyError, LookupError, ValueError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"symbol": symbol, "updateId": update_id, "bids": bids, "asks": asks}, 200)


def _json(body: Any, status: int) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(body), status=status, content_type="application/json"
    )


def _live_router(symbols: frozenset[str]) -> Any:
    def router(name: str) -> frozenset[Route]:
        parsed = parse_name(name, symbols)
        return frozenset({parsed.route}) if parsed is not None else frozenset()

    return router


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("simulator task %s failed", task.get_name(), exc_info=task.exception())


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one (read it back from the socket)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock
