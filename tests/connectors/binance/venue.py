"""A small, scriptable Binance USD-M peer on 127.0.0.1 for connector I/O tests.

It is a real aiohttp WebSocket + HTTP server (port 0) whose every move the
test drives: push a frame to the sockets subscribed to a stream, close a
socket, answer the next REST call with a scripted status, count request
weight per window like the venue (429 past the limit). It records what
happened (sockets opened and closed in order, SUBSCRIBE messages, REST
calls with their arrival times) so tests assert on what the connector did.
The full simulator (`raven.sim`) is the long-term peer; tests written
against this one take URLs only, so they can be pointed at it.
"""

from __future__ import annotations

import collections
import contextlib
import math
import time
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from raven.connectors.binance import wire
from raven.connectors.binance.limits import DEPTH_WEIGHTS
from raven.sim.server import bind_socket
from tests.connectors.binance.depth_model import DepthModel

_request_decoder = msgspec.json.Decoder(dict[str, Any])


class VenueSocket:
    def __init__(
        self, index: int, ws: web.WebSocketResponse, route: str, streams: list[str]
    ) -> None:
        self.index = index
        self.ws = ws
        self.route = route
        self.streams = set(streams)
        self.url_streams = streams
        self.subscribe_messages: list[list[str]] = []
        self.pongs: list[bytes] = []  # seen only when the venue does not autoping
        self.closed = False


class Scripted(msgspec.Struct):
    status: int
    body: bytes = b"{}"
    headers: dict[str, str] = {}


class RestCall(msgspec.Struct):
    path: str
    symbol: str
    at: float  # time.time() on arrival
    status: int


class Venue:
    def __init__(
        self,
        symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
        seed: int = 1,
        weight_limit: int = 2400,
        weight_window_s: float = 60.0,
        autoping: bool = True,
    ) -> None:
        self.symbols = symbols
        self.autoping = autoping  # False: pongs reach the handler (and pings are not answered)
        self.model = DepthModel(symbols, seed)
        self.depth_stream = "depth@100ms"
        self.sockets: list[VenueSocket] = []
        self.log: list[tuple[str, int]] = []  # ("open" | "close", socket index), in order
        self.rest_calls: list[RestCall] = []
        self.rest_script: collections.deque[Scripted] = collections.deque()
        self.weight_limit = weight_limit
        self.weight_window_s = weight_window_s
        self.weight_used: dict[int, int] = collections.defaultdict(int)
        self.over_limit = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_sockets(self) -> list[VenueSocket]:
        return [s for s in self.sockets if not s.closed]

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(
            [
                web.get("/{route:public|market}/stream", self._ws),
                web.get("/fapi/v1/exchangeInfo", self._exchange_info),
                web.get("/fapi/v1/depth", self._depth),
            ]
        )
        sock = bind_socket("127.0.0.1", 0)
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        for s in self.open_sockets:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await s.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- pushing -----------------------------------------------------------

    async def send(self, stream: str, payload: bytes) -> int:
        """`payload` as a combined frame to every open socket subscribed to `stream`."""
        frame = b'{"stream":"' + stream.encode() + b'","data":' + payload + b"}"
        sent = 0
        for s in self.open_sockets:
            if stream in s.streams:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await s.ws.send_str(frame.decode())
                    sent += 1
        return sent

    async def send_depth(self, symbol: str | None = None, deliver: bool = True) -> wire.DepthUpdate:
        """The model's next diff event; `deliver=False` loses it (a gap)."""
        event = self.model.step(symbol)
        if deliver:
            await self.send(f"{event.s.lower()}@{self.depth_stream}", wire.encoder.encode(event))
        return event

    async def close(self, socket: VenueSocket, code: int = 1008) -> None:
        await socket.ws.close(code=code, message=b"closed by the test")

    # --- WebSocket ---------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        names = [n for n in request.query.get("streams", "").split("/") if n]
        ws = web.WebSocketResponse(autoping=self.autoping)
        await ws.prepare(request)
        sock = VenueSocket(len(self.sockets), ws, request.match_info["route"], names)
        self.sockets.append(sock)
        self.log.append(("open", sock.index))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await ws.send_str(self._request(sock, msg.data).decode())
                elif msg.type is WSMsgType.PONG:
                    sock.pongs.append(msg.data)
        finally:
            sock.closed = True
            self.log.append(("close", sock.index))
        return ws

    def _request(self, sock: VenueSocket, text: str) -> bytes:
        request = _request_decoder.decode(text)
        params = [str(p) for p in request.get("params", [])]
        if request.get("method") == "SUBSCRIBE":
            sock.subscribe_messages.append(params)
            sock.streams.update(params)
        return msgspec.json.encode({"result": None, "id": request.get("id")})

    # --- REST --------------------------------------------------------------

    def _count(self, weight: int) -> int:
        window = math.floor(time.time() / self.weight_window_s)
        self.weight_used[window] += weight
        return self.weight_used[window]

    def _respond(self, request: web.Request, weight: int, body: bytes) -> web.Response:
        symbol = request.query.get("symbol", "")
        used = self._count(weight)
        if self.rest_script:
            scripted = self.rest_script.popleft()
            headers = {"X-MBX-USED-WEIGHT-1M": str(used), **scripted.headers}
            status, body = scripted.status, scripted.body
        elif used > self.weight_limit:
            self.over_limit += 1
            headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
            status, body = 429, b'{"code":-1003,"msg":"Too many requests"}'
        else:
            headers = {"X-MBX-USED-WEIGHT-1M": str(used)}
            status = 200
        self.rest_calls.append(RestCall(request.path, symbol, time.time(), status))
        return web.Response(
            status=status, body=body, content_type="application/json", headers=headers
        )

    async def _exchange_info(self, request: web.Request) -> web.Response:
        info = {
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 2400,
                }
            ],
            "symbols": [
                {
                    "symbol": s,
                    "status": "TRADING",
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": "0.1",
                            "maxPrice": "1000000",
                            "tickSize": "0.1",
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": "0.001",
                            "maxQty": "1000",
                            "stepSize": "0.001",
                        },
                        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.01", "stepSize": "0.01"},
                    ],
                }
                for s in self.symbols
            ],
        }
        return self._respond(request, 1, msgspec.json.encode(info))

    async def _depth(self, request: web.Request) -> web.Response:
        symbol = request.query["symbol"]
        limit = int(request.query.get("limit", "500"))
        body = wire.encoder.encode(self.model.snapshot(symbol, limit=limit))
        return self._respond(request, DEPTH_WEIGHTS[limit], body)
