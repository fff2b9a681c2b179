"""Raven capture files: a feed's raw frames with receive times, plus the REST
answers fetched while recording. `raven record` writes them, `raven sim
--replay` serves them back. Format (also in README.md):

Text, one record per line, fields separated by one space; the last field is
the rest of the line, kept byte for byte:

    #raven-capture 1                          first line
    # ...                                     a comment
    C <ns> <url>                              a WebSocket connection was opened
    W <ns> <frame>                            a text frame exactly as received
    R <ns> <status> <path?query> <body>       a REST answer, body exactly as received
    w ... / r ...                             W / R with the frame / body in base64, for
                                              bytes that hold a line break

`<ns>` is the receive time in integer nanoseconds since the epoch. Frames are
recorded from combined-stream connections, so each names its stream
(`{"stream":...,"data":...}`); other frames (replies) are kept but not replayed.

`convert_text_capture` turns the `ws.txt` + `rest.txt` layout of the shared
2021 capture (`<seconds>: <frame>`, `<url> -> <seconds>: <body>`) into this.
"""

from __future__ import annotations

import base64
import urllib.parse
from pathlib import Path
from typing import BinaryIO

import msgspec

MAGIC = b"#raven-capture 1"


class Frame(msgspec.Struct, frozen=True, gc=False):
    ns: int
    stream: str  # "" for a frame that is not a stream event
    data: bytes  # the payload part, byte for byte (raw-stream form)
    frame: bytes  # the whole frame as received (combined form)


class RestRecord(msgspec.Struct, frozen=True, gc=False):
    ns: int
    status: int
    path: str  # path?query, no host
    body: bytes

    @property
    def endpoint(self) -> str:
        return self.path.partition("?")[0]

    def param(self, name: str) -> str | None:
        values = urllib.parse.parse_qs(self.path.partition("?")[2]).get(name)
        return values[0] if values else None


class Capture(msgspec.Struct):
    frames: list[Frame]
    rest: list[RestRecord]
    connections: list[tuple[int, str]]

    @property
    def streams(self) -> list[str]:
        """Stream names in order of first appearance."""
        return list(dict.fromkeys(f.stream for f in self.frames if f.stream))


class CaptureError(ValueError):
    """A capture file that does not follow the format; names the line."""


class _Wrapped(msgspec.Struct):
    stream: str
    data: msgspec.Raw


_wrapped = msgspec.json.Decoder(_Wrapped)


def split_combined(frame: bytes) -> tuple[str, bytes]:
    """(stream, payload bytes verbatim) of a combined frame; ("", frame) otherwise."""
    try:
        wrapped = _wrapped.decode(frame)
    except msgspec.DecodeError:
        return "", frame
    return wrapped.stream, bytes(wrapped.data)


class CaptureWriter:
    """Appends records to an open binary file (the header is written first)."""

    def __init__(self, out: BinaryIO, comment: str = "") -> None:
        self.out = out
        out.write(MAGIC + b"\n")
        if comment:
            out.write(b"# " + comment.encode() + b"\n")

    def connection(self, ns: int, url: str) -> None:
        self.out.write(b"C %d %s\n" % (ns, url.encode()))

    def frame(self, ns: int, frame: bytes) -> None:
        if b"\n" in frame or b"\r" in frame:
            self.out.write(b"w %d %s\n" % (ns, base64.b64encode(frame)))
        else:
            self.out.write(b"W %d %s\n" % (ns, frame))

    def rest(self, ns: int, status: int, path: str, body: bytes) -> None:
        head = b"%d %d %s " % (ns, status, path.encode())
        if b"\n" in body or b"\r" in body:
            self.out.write(b"r " + head + base64.b64encode(body) + b"\n")
        else:
            self.out.write(b"R " + head + body + b"\n")


def read_capture(path: str | Path) -> Capture:
    """Load a capture file; `CaptureError` names the first bad line."""
    capture = Capture([], [], [])
    with open(path, "rb") as f:
        first = f.readline().rstrip(b"\r\n")
        if first != MAGIC:
            raise CaptureError(f"{path}: not a Raven capture (first line {first[:40]!r})")
        for number, line in enumerate(f, start=2):
            try:
                _read_line(capture, line.rstrip(b"\n"))
            except (ValueError, IndexError) as exc:
                raise CaptureError(f"{path}:{number}: {exc}") from None
    return capture


def _read_line(capture: Capture, line: bytes) -> None:
    if not line or line.startswith(b"#"):
        return
    kind, ns_text, rest = line.split(b" ", 2)
    ns = int(ns_text)
    if kind in (b"W", b"w"):
        frame = rest if kind == b"W" else base64.b64decode(rest)
        stream, data = split_combined(frame)
        capture.frames.append(Frame(ns, stream, data, frame))
    elif kind in (b"R", b"r"):
        status, path, body = rest.split(b" ", 2)
        body = body if kind == b"R" else base64.b64decode(body)
        capture.rest.append(RestRecord(ns, int(status), path.decode(), body))
    elif kind == b"C":
        capture.connections.append((ns, rest.decode()))
    else:
        raise ValueError(f"unknown record type {kind!r}")


def seconds_to_ns(text: str) -> int:
    """ "1626992741.06217" -> 1626992741062170000, exactly (no float)."""
    whole, _, frac = text.strip().partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


def _path_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def convert_text_capture(folder: str | Path, out: str | Path) -> int:
    """Convert `folder/ws.txt` (+ `rest.txt` if present) to a capture file; returns
    the number of records written. Frames keep their order in ws.txt."""
    folder = Path(folder)
    ws_lines = (folder / "ws.txt").read_bytes().splitlines()
    url, _, opened = ws_lines[0].decode().partition(" <-> ")
    lines = [b"C %d %s" % (seconds_to_ns(opened), url.encode())]
    for line in ws_lines[1:]:
        received, sep, frame = line.partition(b": ")
        if sep:
            lines.append(b"W %d %s" % (seconds_to_ns(received.decode()), frame))
    rest_file = folder / "rest.txt"
    if rest_file.exists():
        for line in rest_file.read_bytes().splitlines():
            head, sep, body = line.partition(b": ")
            rest_url, _, when = head.decode().partition(" -> ")
            if sep:
                path = _path_of(rest_url).encode()
                lines.append(b"R %d 200 %s %s" % (seconds_to_ns(when), path, body))
    with open(out, "wb") as f:
        f.write(MAGIC + b"\n# converted from " + str(folder).encode() + b"\n")
        for line in lines:
            f.write(line + b"\n")
    return len(lines)
