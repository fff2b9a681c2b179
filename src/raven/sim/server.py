"""The simulator's network face: Binance USD-M WebSocket and REST on loopback.

WebSocket paths, as on the venue: `/<route>/ws/<stream>[/<stream>...]` (raw
payloads), `/<route>/stream?streams=a/b` (combined `{"stream","data"}`
frames), and the same without a route (which only carries `/public`
streams). Live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY
messages get the venue's replies. REST serves `/fapi/v1/exchangeInfo`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from raven.config import SimulatorConfig
from raven.connectors.binance.streams import Route
from raven.sim.hub import Hub, SimConnection
from raven.sim.instruments import instrument
from raven.sim.market import MarketModel

log = logging.getLogger("raven.sim")

QUEUE_LIMIT = 100_000  # frames queued per connection before it is closed as too slow
RECORD_LIMIT = 1_000_000  # frames remembered per connection for tests


class _Result(msgspec.Struct):
    result: list[str] | None
    id: Any


class _ErrorBody(msgspec.Struct):
    code: int
    msg: str


class _Error(msgspec.Struct):
    error: _ErrorBody
    id: Any = None


_encode = msgspec.json.encode
_request_decoder = msgspec.json.Decoder(dict[str, Any])


class Simulator:
    """Owns the web server, the market model and the feed task."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.model = MarketModel(config.symbols, config.seed)
        self.hub = Hub()
        self.feed_enabled = asyncio.Event()
        self.feed_enabled.set()
        self.emitted = 0
        self._runner: web.AppRunner | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self.port = config.port

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        routes = [
            web.get("/fapi/v1/exchangeInfo", self._exchange_info),
            web.get("/{route:public|market}/ws/{streams:.*}", self._ws),
            web.get("/{route:public|market}/ws", self._ws),
            web.get("/{route:public|market}/stream", self._ws),
            web.get("/ws/{streams:.*}", self._ws),
            web.get("/ws", self._ws),
            web.get("/stream", self._ws),
        ]
        app.add_routes(routes)
        return app

    async def start(self) -> None:
        sock = bind_socket(self.config.host, self.config.port)
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(self.app(), handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self._feed_task = asyncio.create_task(self._feed(), name="sim-feed")
        log.info("simulator listening on %s (%d symbols)", self.ws_url, len(self.config.symbols))

    async def stop(self) -> None:
        if self._feed_task is not None:
            self._feed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feed_task
        if self._runner is not None:
            await self._runner.cleanup()

    async def _feed(self) -> None:
        """Emit `rate` events per second, in bursts when the loop falls behind."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.config.rate
        due = loop.time()
        while True:
            await self.feed_enabled.wait()
            now = loop.time()
            if due < now - 1.0:
                due = now  # resumed after a pause: don't replay the missed second
            burst = 0
            while due <= now and burst < 5_000:
                self.step()
                due += interval
                burst += 1
            await asyncio.sleep(max(0.0, due - loop.time()))

    def step(self) -> None:
        now_ms = time.time_ns() // 1_000_000
        for emission in self.model.step(now_ms):
            self.hub.publish(emission)
            self.emitted += 1

    # --- WebSocket ---------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        route_name = request.match_info.get("route")
        route = Route(route_name) if route_name else None
        combined = request.path.endswith("/stream")
        names = (
            request.query.get("streams", "") if combined else request.match_info.get("streams", "")
        )
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = SimConnection(route, combined, QUEUE_LIMIT, RECORD_LIMIT)
        self.hub.add(conn)
        self.hub.subscribe(conn, [n for n in names.split("/") if n])
        writer = asyncio.create_task(self._writer(ws, conn), name="sim-ws-writer")
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    reply = self._handle_request(conn, msg.data)
                    conn.queue.append(reply)
                    conn.wakeup.set()
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self.hub.remove(conn)
        return ws

    async def _writer(self, ws: web.WebSocketResponse, conn: SimConnection) -> None:
        queue = conn.queue
        while not ws.closed:
            await conn.wakeup.wait()
            conn.wakeup.clear()
            if conn.overflowed:
                await ws.close(code=1008, message=b"Slow consumer")
                return
            while queue:
                await ws.send_frame(queue.popleft(), WSMsgType.TEXT)

    def _handle_request(self, conn: SimConnection, text: str) -> bytes:
        try:
            request = _request_decoder.decode(text)
        except msgspec.DecodeError as exc:
            return _encode(_Error(_ErrorBody(3, f"Invalid JSON: {exc}")))
        req_id = request.get("id")
        method = request.get("method")
        params = request.get("params", [])
        if not isinstance(params, list):
            return _encode(_Error(_ErrorBody(1, "Invalid value type: expected list"), req_id))
        if method == "SUBSCRIBE":
            self.hub.subscribe(conn, [str(p) for p in params])
        elif method == "UNSUBSCRIBE":
            self.hub.unsubscribe(conn, [str(p) for p in params])
        elif method == "LIST_SUBSCRIPTIONS":
            return _encode(_Result(list(conn.subscriptions), req_id))
        elif method == "SET_PROPERTY":
            if len(params) != 2 or params[0] != "combined":
                return _encode(_Error(_ErrorBody(0, "Unknown property"), req_id))
            if not isinstance(params[1], bool):
                return _encode(_Error(_ErrorBody(1, "Invalid value type"), req_id))
            conn.combined = params[1]
        else:
            return _encode(_Error(_ErrorBody(2, f"Invalid request: method {method!r}"), req_id))
        return _encode(_Result(None, req_id))

    # --- REST --------------------------------------------------------------

    async def _exchange_info(self, request: web.Request) -> web.Response:
        symbols = [_symbol_info(s) for s in self.config.symbols]
        body = {
            "timezone": "UTC",
            "serverTime": time.time_ns() // 1_000_000,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 2400,
                },
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }
        return web.Response(
            body=_encode(body),
            content_type="application/json",
            headers={"X-MBX-USED-WEIGHT-1M": "1"},
        )


def _symbol_info(symbol: str) -> dict[str, Any]:
    inst = instrument(symbol)
    return {
        "symbol": symbol,
        "pair": symbol,
        "contractType": "PERPETUAL",
        "status": "TRADING",
        "baseAsset": symbol.removesuffix("USDT"),
        "quoteAsset": "USDT",
        "pricePrecision": inst.price_decimals,
        "quantityPrecision": inst.qty_decimals,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": inst.tick_size,
                "maxPrice": inst.price(10 ** (inst.price_decimals + 7)),
                "tickSize": inst.tick_size,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": inst.step_size,
                "maxQty": inst.qty(10 ** (inst.qty_decimals + 6)),
                "stepSize": inst.step_size,
            },
            {"filterType": "MIN_NOTIONAL", "notional": "5"},
        ],
    }


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one (read it back from the socket)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock
