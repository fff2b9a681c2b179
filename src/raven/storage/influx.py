"""InfluxDB as a store: line protocol over HTTP, 1.x and 2.x APIs (aiohttp).

- 1.x (`api = "v1"`): `POST /write?db=&precision=ns` (with `u`/`p` when a
  user is set), reads with InfluxQL on `POST /query?db=&epoch=ns`. The
  database is created (`CREATE DATABASE`, a no-op when it exists) before the
  first write and again if a write finds it gone.
- 2.x (`api = "v2"`): `POST /api/v2/write?org=&bucket=&precision=ns` and
  Flux on `POST /api/v2/query?org=`, both with `Authorization: Token
  $INFLUX_TOKEN`. The bucket must exist.

What fails how (the writer acts on `StoreError.retryable`): connection
errors, timeouts, 5xx, 429, 401/403 (credentials can be fixed while Raven
keeps buffering) and a missing database are retryable; 400 (InfluxDB
refused the points, e.g. a field type conflict) and 413 are not. A 400 from
1.x is a *partial* write: the other points of the body are stored. The
writer's bisection writes them again, which is harmless: a point with the
same measurement, tags and timestamp overwrites the stored one with itself.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from raven.config import InfluxDBConfig
from raven.storage import flux, influxql
from raven.storage.base import ReadQuery, Record, StoreError, Table
from raven.storage.lineproto import LineEncoder

log = logging.getLogger("raven.storage")

TOKEN_ENV = "INFLUX_TOKEN"
_PERMANENT = frozenset({400, 413, 422})


class InfluxStore:
    def __init__(
        self, config: InfluxDBConfig, *, token: str | None = None, name: str = "influxdb"
    ) -> None:
        self.name = name
        self.config = config
        self.v2 = config.api == "v2"
        self.token = os.environ.get(TOKEN_ENV, "") if token is None else token
        if self.v2 and not self.token:
            raise StoreError(
                f"InfluxDB 2.x needs a token: set the {TOKEN_ENV} environment variable",
                retryable=False,
            )
        self.encoder = LineEncoder(config.float_fields)
        self._base = config.url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._database_ready = False

    # --- HTTP -------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            headers = {"Authorization": f"Token {self.token}"} if self.v2 else {}
            self._session = aiohttp.ClientSession(
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
            )
        return self._session

    def _v1_params(self, **extra: str) -> dict[str, str]:
        params = {"db": self.config.database, **extra}
        if self.config.username:
            params["u"] = self.config.username
            params["p"] = self.config.password
        return params

    async def _post(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        data: Any = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        url = self._base + path
        try:
            async with self._http().post(
                url, params=params, data=data, json=json, headers=headers
            ) as response:
                body = await response.read()
                if response.status >= 300:
                    raise self._error(path, response.status, body)
                return body
        except aiohttp.ClientError as exc:
            raise StoreError(f"{self.name} at {self._base}: {exc or type(exc).__name__}") from None
        except TimeoutError:
            raise StoreError(
                f"{self.name} at {self._base}: no answer in {self.config.timeout_s:g} s"
            ) from None

    def _error(self, path: str, status: int, body: bytes) -> StoreError:
        text = body.decode(errors="replace").strip()[:500]
        if status == 404 and "database not found" in text:
            self._database_ready = False
        return StoreError(
            f"{self.name} {path}: HTTP {status}: {text}", retryable=status not in _PERMANENT
        )

    # --- writes ---------------------------------------------------------------------

    async def write(self, batch: Sequence[Record]) -> None:
        try:
            bodies = list(self.encoder.bodies(batch, self.config.max_body_bytes))
        except (ValueError, TypeError, AttributeError) as exc:  # e.g. a tag it can't carry
            raise StoreError(f"{self.name}: {exc}", retryable=False) from None
        if not self.v2 and not self._database_ready:
            await self._query_v1(f"CREATE DATABASE {influxql.ident(self.config.database)}")
            self._database_ready = True
        for body in bodies:
            if self.v2:
                params = {"org": self.config.org, "bucket": self.config.bucket, "precision": "ns"}
                path = "/api/v2/write"
            else:
                params, path = self._v1_params(precision="ns"), "/write"
            await self._post(
                path,
                params,
                data=body,
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )

    # --- reads ------------------------------------------------------------------------

    async def _query_v1(self, q: str) -> list[influxql.Series]:
        body = await self._post("/query", self._v1_params(epoch="ns"), data={"q": q})
        return influxql.parse(body)

    async def _query_v2(self, q: str) -> str:
        request = {
            "query": q,
            "type": "flux",
            "dialect": {
                "header": True,
                "delimiter": ",",
                "annotations": ["datatype", "group", "default"],
            },
        }
        headers = {"Accept": "application/csv", "Content-Type": "application/json"}
        body = await self._post(
            "/api/v2/query", {"org": self.config.org}, json=request, headers=headers
        )
        return body.decode()

    async def read(self, query: ReadQuery) -> list[Record]:
        spec = self.encoder.specs[query.table]
        if self.v2:
            return flux.records(await self._query_v2(flux.select(self.config.bucket, query)), spec)
        return influxql.records(await self._query_v1(influxql.select(query)), spec)

    async def latest(self, table: Table, exchange: str, symbol: str, at: int) -> Record | None:
        spec = self.encoder.specs[table]
        if self.v2:
            q = flux.select_latest(self.config.bucket, table, exchange, symbol, at)
            found = flux.records(await self._query_v2(q), spec)
        else:
            q = influxql.select_latest(table, exchange, symbol, at)
            found = influxql.records(await self._query_v1(q), spec)
        return found[-1] if found else None

    async def candle_intervals(self, exchange: str, symbol: str) -> frozenset[str]:
        if self.v2:
            q = flux.show_intervals(self.config.bucket, exchange, symbol)
            return frozenset(str(row["_value"]) for row in flux.rows(await self._query_v2(q)))
        series = await self._query_v1(influxql.show_intervals(exchange, symbol))
        return frozenset(str(row[1]) for s in series for row in s.values)

    async def last_ts(self) -> int:
        if self.v2:
            q = flux.select_last_time(self.config.bucket, time.time_ns() + 86400 * 10**9)
            return max((int(r["_time"]) for r in flux.rows(await self._query_v2(q))), default=0)
        if not self._database_ready:
            await self._query_v1(f"CREATE DATABASE {influxql.ident(self.config.database)}")
            self._database_ready = True
        series = await self._query_v1(influxql.select_last_times())
        return max((int(row[0]) for s in series for row in s.values), default=0)

    async def ping(self) -> None:
        url = self._base + "/ping"
        try:
            async with self._http().get(url) as response:
                if response.status >= 300:
                    raise StoreError(f"{self.name} /ping: HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise StoreError(f"{self.name} at {self._base}: {exc or type(exc).__name__}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
