"""An InfluxDB 2.x HTTP endpoint on loopback, strict about requests, for the 2.x tests.

The machines that run the tests have InfluxDB 1.x only, so the 2.x API is
checked against this endpoint instead. It checks each request as InfluxDB
2.x does: `Authorization: Token <token>` (401), `org` and `bucket` (404),
`precision`, and the body, parsed as line protocol by its own parser (400 on
anything malformed; 422 when a field changes type). Accepted points are
kept, keyed like InfluxDB (measurement, tag set, time: a rewrite overwrites).

`POST /api/v2/query` answers the Flux shapes Raven sends (a filtered,
pivoted, time-sorted read; the newest point; tag values; the last time) in
annotated CSV, as InfluxDB does: `#datatype`, `#group`, `#default` rows,
then a header and rows, times in RFC3339 with nanoseconds.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from typing import Any

from aiohttp import web

Point = tuple[str, tuple[tuple[str, str], ...], int]  # measurement, tags, time
PRECISIONS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


class LineProtocolError(ValueError):
    pass


def _scan(text: str, i: int, stops: str) -> tuple[str, int]:
    """Read up to an unescaped char in `stops`; returns (unescaped text, index of the stop)."""
    out = []
    while i < len(text) and text[i] not in stops:
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ",= \\":
            out.append(text[i + 1])
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out), i


def _field_value(text: str, i: int) -> tuple[Any, str, int]:
    if text[i] == '"':
        out, i = [], i + 1
        while True:
            if i >= len(text):
                raise LineProtocolError("unterminated string field")
            c = text[i]
            if c == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
                out.append(text[i + 1])
                i += 2
            elif c == '"':
                return "".join(out), "string", i + 1
            else:
                out.append(c)
                i += 1
    raw, i = _scan(text, i, ", \n")
    if re.fullmatch(r"-?\d+i", raw):
        return int(raw[:-1]), "long", i
    if raw in ("t", "T", "true", "True", "TRUE"):
        return True, "boolean", i
    if raw in ("f", "F", "false", "False", "FALSE"):
        return False, "boolean", i
    try:
        return float(raw), "double", i
    except ValueError:
        raise LineProtocolError(f"invalid field value {raw!r}") from None


def parse_lines(body: str) -> list[tuple[Point, dict[str, tuple[Any, str]]]]:
    points = []
    i = 0
    while i < len(body):
        if body[i] == "\n":
            i += 1
            continue
        measurement, i = _scan(body, i, ", \n")
        if not measurement:
            raise LineProtocolError("missing measurement")
        tags: dict[str, str] = {}
        while i < len(body) and body[i] == ",":
            key, i = _scan(body, i + 1, "=, \n")
            if i >= len(body) or body[i] != "=":
                raise LineProtocolError(f"missing tag value for {key!r}")
            value, i = _scan(body, i + 1, ", \n")
            if not key or not value:
                raise LineProtocolError("empty tag key or value")
            tags[key] = value
        if i >= len(body) or body[i] != " ":
            raise LineProtocolError("missing fields")
        fields: dict[str, tuple[Any, str]] = {}
        while True:
            key, i = _scan(body, i + 1, "=, \n")
            if i >= len(body) or body[i] != "=":
                raise LineProtocolError(f"missing field value for {key!r}")
            value, kind, i = _field_value(body, i + 1)
            fields[key] = (value, kind)
            if i >= len(body) or body[i] != ",":
                break
        if i >= len(body) or body[i] != " ":
            raise LineProtocolError("missing timestamp")  # Raven always sends one
        stamp, i = _scan(body, i + 1, "\n")
        if not re.fullmatch(r"-?\d+", stamp):
            raise LineProtocolError(f"bad timestamp {stamp!r}")
        points.append(((measurement, tuple(sorted(tags.items())), int(stamp)), fields))
    return points


def rfc3339(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    text = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{frac:09d}".rstrip("0") if frac else "") + "Z"


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)


class Influx2:
    def __init__(self, token: str, org: str, bucket: str) -> None:
        self.token, self.org, self.bucket = token, org, bucket
        self.points: dict[Point, dict[str, tuple[Any, str]]] = {}
        self.field_types: dict[tuple[str, str], str] = {}
        self.requests: list[tuple[str, dict[str, str], dict[str, str], bytes]] = []
        self.app = web.Application()
        self.app.router.add_post("/api/v2/write", self.write)
        self.app.router.add_post("/api/v2/query", self.query)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _refuse(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Token {self.token}":
            return _error(401, "unauthorized", "unauthorized access")
        if request.query.get("org") != self.org:
            return _error(
                404, "not found", f"organization name {request.query.get('org')!r} not found"
            )
        return None

    async def write(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.path, dict(request.query), dict(request.headers), body))
        refused = self._refuse(request)
        if refused is not None:
            return refused
        if request.query.get("bucket") != self.bucket:
            return _error(404, "not found", f'bucket "{request.query.get("bucket")}" not found')
        scale = PRECISIONS.get(request.query.get("precision", "ns"))
        if scale is None:
            return _error(400, "invalid", "invalid precision")
        try:
            points = parse_lines(body.decode())
        except (LineProtocolError, UnicodeDecodeError) as exc:
            return _error(400, "invalid", f"unable to parse points: {exc}")
        for (measurement, tags, stamp), fields in points:
            for name, (_, kind) in fields.items():
                known = self.field_types.setdefault((measurement, name), kind)
                if known != kind:
                    return _error(422, "unprocessable entity", f"field type conflict: {name}")
            self.points[(measurement, tags, stamp * scale)] = fields
        return web.Response(status=204)

    async def query(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append((request.path, dict(request.query), dict(request.headers), raw))
        refused = self._refuse(request)
        if refused is not None:
            return refused
        if request.headers.get("Content-Type") != "application/json":
            return _error(400, "invalid", "query requests are JSON")
        spec = json.loads(raw)
        if spec.get("type") != "flux" or spec.get("dialect", {}).get("header") is not True:
            return _error(400, "invalid", "expected a flux query with a CSV header")
        flux = spec["query"]
        if f'bucket: "{self.bucket}"' not in flux:
            return _error(404, "not found", "bucket not found")
        if "schema.tagValues" in flux:
            rows = self._tag_values(flux)
        elif "|> last()" in flux:
            rows = self._last_time()
        else:
            rows = self._select(flux)
        return web.Response(text=annotated_csv(rows), content_type="text/csv")

    def _matching(self, flux: str) -> list[tuple[Point, dict[str, tuple[Any, str]]]]:
        start, stop = (int(v) for v in re.findall(r"time\(v: (-?\d+)\)", flux)[:2])
        measurement = re.search(r'r\._measurement == "([^"]*)"', flux)
        conditions = _conditions(flux)
        out = []
        for point, fields in self.points.items():
            name, tags, stamp = point
            if not start <= stamp < stop or (measurement and name != measurement.group(1)):
                continue
            tag_map = dict(tags)
            if all(any(_holds(alt, tag_map) for alt in group) for group in conditions):
                out.append((point, fields))
        return out

    def _select(self, flux: str) -> list[dict[str, tuple[Any, str]]]:
        rows = []
        for (name, tags, stamp), fields in self._matching(flux):
            row: dict[str, tuple[Any, str]] = {"_time": (stamp, "dateTime:RFC3339Nano")}
            row["_measurement"] = (name, "string")
            row.update({k: (v, "string") for k, v in tags})
            row.update(fields)
            rows.append(row)
        rows.sort(key=lambda r: int(r["_time"][0]), reverse="desc: true" in flux)
        limit = re.search(r"limit\(n: (\d+)\)", flux)
        return rows[: int(limit.group(1))] if limit else rows

    def _tag_values(self, flux: str) -> list[dict[str, tuple[Any, str]]]:
        key = re.search(r'tag: "([^"]*)"', flux)
        assert key is not None
        flux = flux.replace("start: time(v: 0)", f"start: time(v: 0), stop: time(v: {2**63 - 1})")
        values = sorted({dict(t).get(key.group(1), "") for (_, t, _), _ in self._matching(flux)})
        return [{"_value": (v, "string")} for v in values if v]

    def _last_time(self) -> list[dict[str, tuple[Any, str]]]:
        times = [stamp for (_, _, stamp), fields in self.points.items() if "receive_time" in fields]
        return [{"_time": (max(times), "dateTime:RFC3339Nano")}] if times else []


def _conditions(flux: str) -> list[list[str]]:
    """The filter's tag conditions: AND of OR-groups of `r.k == "v"` / `not exists r.k`."""
    match = re.search(r"filter\(fn: \(r\) => (.*)\)\n", flux)
    if match is None:
        match = re.search(r"predicate: \(r\) => (.*)\)$", flux)
    assert match is not None, flux
    groups = []
    for part in re.split(r" and (?![^()]*\))", match.group(1)):
        part = part.strip()
        if part.startswith("r._measurement"):
            continue
        alternatives = part.strip("()").split(" or ")
        groups.append([a.strip() for a in alternatives])
    return groups


def _holds(condition: str, tags: dict[str, str]) -> bool:
    missing = re.fullmatch(r"not exists r\.(\w+)", condition)
    if missing:
        return missing.group(1) not in tags
    equal = re.fullmatch(r'r\.(\w+) == "((?:[^"\\]|\\.)*)"', condition)
    assert equal is not None, condition
    return tags.get(equal.group(1)) == equal.group(2)


def annotated_csv(rows: list[dict[str, tuple[Any, str]]]) -> str:
    """One result table, as InfluxDB 2.x writes it (empty cells where a row lacks a column)."""
    if not rows:
        return "\r\n"
    columns: dict[str, str] = {}
    for row in rows:
        for name, (_, kind) in row.items():
            columns.setdefault(name, kind)
    names = list(columns)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(["#datatype", "string", "long", *(columns[n] for n in names)])
    w.writerow(["#group", "false", "false", *("false" for _ in names)])
    w.writerow(["#default", "_result", "", *("" for _ in names)])
    w.writerow(["", "result", "table", *names])
    for row in rows:
        cells = []
        for name in names:
            value, kind = row.get(name, (None, ""))
            if value is None:
                cells.append("")
            elif kind.startswith("dateTime"):
                cells.append(rfc3339(int(value)))
            elif kind == "boolean":
                cells.append("true" if value else "false")
            elif kind == "double":
                cells.append(repr(float(value)))
            else:
                cells.append(str(value))
        w.writerow(["", "", "0", *cells])
    return out.getvalue() + "\r\n"
