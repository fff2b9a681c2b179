"""The spool: an append-only file of records waiting for a store that is down or slow.

A writer spills its oldest buffered records here when its memory bound is
reached, and reads them back (oldest first) when the store answers again. The
spool survives a restart: a new writer opens it and writes what is left
before anything newer, so a crash or a stop during an outage loses nothing
that reached the file.

File layout (`<name>.spool`): a sequence of blocks, each

    magic "RSP1" | payload length u32 | record count u32 | crc32(payload) u32 | payload

where the payload is a msgpack array of `[ts, table, [fields...]]` records.
The read position `{offset, skip}` (the block being read and how many of its
records are already written to the store) lives in `<name>.spool.pos`,
replaced atomically on every commit. When everything is read the file is
truncated to zero. A block torn by a crash (short or failing its CRC) is cut
off when the spool is opened, with a warning.

If the disk refuses a write (full, read-only), the block stays in memory,
in its place in the queue, and is written with the next append: nothing is
reordered or dropped while the process lives.

Not thread-safe: one thread (the writer's I/O thread) uses it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import typing
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from raven.storage.base import ITEM_TYPES, Item, Record, Table, table_of

log = logging.getLogger("raven.storage")

MAGIC = b"RSP1"
HEADER = struct.Struct("<4sIII")  # magic, payload length, record count, crc32

_encoder = msgspec.msgpack.Encoder()
_block_decoder = msgspec.msgpack.Decoder(list[tuple[int, Table, msgspec.Raw]])
_pos_decoder = msgspec.json.Decoder(dict[str, int])


def _fields_decoder(cls: type[Item]) -> msgspec.msgpack.Decoder[Any]:
    """A decoder for `astuple(item)`: typed, so enums and nested tuples come back as such."""
    hints = typing.get_type_hints(cls)
    fields_type = tuple.__class_getitem__(tuple(hints[name] for name in cls.__struct_fields__))
    return msgspec.msgpack.Decoder(fields_type)


_item_decoders = {table: (cls, _fields_decoder(cls)) for table, cls in ITEM_TYPES.items()}


def encode_records(records: Sequence[Record]) -> bytes:
    astuple = msgspec.structs.astuple
    return _encoder.encode([(ts, table_of(item), astuple(item)) for ts, item in records])


def decode_records(payload: bytes) -> list[Record]:
    out: list[Record] = []
    for ts, table, raw in _block_decoder.decode(payload):
        cls, decoder = _item_decoders[table]
        out.append((ts, cls(*decoder.decode(raw))))
    return out


class _Block(msgspec.Struct):
    offset: int  # of the header in the file; -1 while only in memory (the disk refused it)
    size: int  # header + payload
    count: int  # records
    records: list[Record] | None = None  # kept until the block is on disk


class Spool:
    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self.pos_path = path.with_name(path.name + ".pos")
        self.fsync = fsync  # fsync each append and commit: survives power loss, costs latency
        self.events = 0  # records not yet committed (read by the metrics layer)
        self.bytes = 0  # bytes of the file not yet committed
        self.last_ts = 0  # ts of the newest record ever appended (seeds the recorder)
        self._blocks: list[_Block] = []  # unread blocks, oldest first
        self._skip = 0  # records of _blocks[0] already committed
        self._end = 0
        self._unwritten: list[_Block] = []  # blocks the disk refused, oldest first
        self._file: BinaryIO | None = None
        self._cache: tuple[int, list[Record]] | None = None  # last decoded block

    # --- lifecycle -------------------------------------------------------------

    def open(self) -> None:
        """Open (or create) the file and index what is left in it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered: a failed write leaves nothing half-buffered to flush later.
        self._file = open(self.path, "a+b", buffering=0)  # noqa: SIM115 - closed by close()
        size = self._file.seek(0, os.SEEK_END)
        offset, self._skip = self._read_pos()
        if offset > size:  # the file was drained but the position file outlived it
            offset, self._skip = 0, 0
        self._end = self._index(offset)
        if self._blocks and self._skip >= self._blocks[0].count:
            self._skip = 0  # a position we can't trust: rewrite the block (idempotent)
        if size != self._end:
            log.warning(
                "spool %s: cutting %d bytes of a block torn by a crash", self.path, size - self._end
            )
            self._file.truncate(self._end)
        self._recount()
        if self._blocks:
            self.last_ts = self._decode(self._blocks[-1])[-1][0]
        elif self._end:
            self._reset()

    def close(self) -> None:
        self._write_unwritten()
        if self._unwritten:
            lost = sum(b.count for b in self._unwritten)
            log.error("spool %s: %d events could not be written to disk", self.path, lost)
        if self._file is not None:
            self._file.close()
            self._file = None

    # --- the queue ---------------------------------------------------------------

    def append(self, records: Sequence[Record]) -> None:
        """Append records as one block, after everything already spooled."""
        if not records:
            return
        block = _Block(-1, 0, len(records), list(records))
        self._blocks.append(block)
        self._unwritten.append(block)
        self.events += len(records)
        self.last_ts = records[-1][0]
        self._write_unwritten()

    def _write_unwritten(self) -> None:
        while self._unwritten:
            block = self._unwritten[0]
            assert block.records is not None
            payload = encode_records(block.records)
            data = HEADER.pack(MAGIC, len(payload), block.count, zlib.crc32(payload)) + payload
            try:
                self._write(data)
            except OSError as exc:
                log.error("spool %s: write failed (%s); keeping %d events in memory",
                          self.path, exc, sum(b.count for b in self._unwritten))  # fmt: skip
                return
            self._unwritten.pop(0)
            block.offset, block.size, block.records = self._end, len(data), None
            self._end += len(data)
            self.bytes += len(data)

    def _write(self, data: bytes) -> None:
        assert self._file is not None, "spool is not open"
        try:
            view = memoryview(data)
            while view:
                view = view[self._file.write(view) or 0 :]
            if self.fsync:
                os.fsync(self._file.fileno())
        except OSError:
            with contextlib.suppress(OSError):
                self._file.truncate(self._end)  # cut a partial block
            raise

    def peek(self, n: int) -> list[Record]:
        """The oldest `n` uncommitted records (fewer when the spool holds fewer)."""
        out: list[Record] = []
        skip = self._skip
        for block in self._blocks:
            records = self._decode(block)
            out.extend(records[skip : skip + n - len(out)])
            skip = 0
            if len(out) >= n:
                break
        return out

    def commit(self, n: int) -> None:
        """Mark the oldest `n` records as written; truncate the file when all are."""
        if n > self.events:
            raise ValueError(f"commit of {n} records but the spool holds {self.events}")
        while n:
            block = self._blocks[0]
            left = block.count - self._skip
            if n < left:
                self._skip += n
                break
            n -= left
            done = self._blocks.pop(0)
            if done.offset < 0:  # written to the store before it ever reached the disk
                self._unwritten.remove(done)
            self._skip = 0
        if not self._blocks:
            self._reset()
            return
        self._recount()
        if self._blocks[0].offset >= 0:
            self._write_pos(self._blocks[0].offset, self._skip)

    # --- internals -----------------------------------------------------------------

    def _recount(self) -> None:
        self.events = sum(b.count for b in self._blocks) - self._skip
        head = self._blocks[0].offset if self._blocks and self._blocks[0].offset >= 0 else self._end
        self.bytes = self._end - head

    def _reset(self) -> None:
        """Everything is written: empty the file."""
        assert self._file is not None
        self._blocks.clear()
        self._skip = self.events = self.bytes = 0
        self._cache = None
        try:
            self._file.truncate(0)
        except OSError as exc:
            log.error("spool %s: cannot truncate: %s", self.path, exc)
            self._write_pos(self._end, 0)  # so a restart doesn't write it all again
            return
        self._end = 0
        self.pos_path.unlink(missing_ok=True)

    def _decode(self, block: _Block) -> list[Record]:
        if block.records is not None:
            return block.records
        if self._cache is not None and self._cache[0] == block.offset:
            return self._cache[1]
        assert self._file is not None
        self._file.seek(block.offset + HEADER.size)
        records = decode_records(self._file.read(block.size - HEADER.size))
        self._cache = (block.offset, records)
        return records

    def _index(self, offset: int) -> int:
        """Index the blocks from `offset`; returns the end of the last whole block."""
        assert self._file is not None
        self._file.seek(offset)
        while True:
            header = self._file.read(HEADER.size)
            if len(header) < HEADER.size:
                return offset
            magic, length, count, crc = HEADER.unpack(header)
            payload = self._file.read(length)
            if magic != MAGIC or len(payload) < length or zlib.crc32(payload) != crc:
                return offset
            self._blocks.append(_Block(offset, HEADER.size + length, count))
            offset += HEADER.size + length

    def _read_pos(self) -> tuple[int, int]:
        try:
            pos = _pos_decoder.decode(self.pos_path.read_bytes())
        except FileNotFoundError:
            return 0, 0
        except msgspec.DecodeError:
            # Unreadable position: start from the beginning. Records may be
            # written again, which the stores' idempotent writes absorb.
            log.warning("spool %s: unreadable position file; reading from the start", self.path)
            return 0, 0
        return pos.get("offset", 0), pos.get("skip", 0)

    def _write_pos(self, offset: int, skip: int) -> None:
        """Persist the read position. If that fails, the records after the last saved
        position are written again after a restart: harmless, writes are idempotent."""
        tmp = self.pos_path.with_name(self.pos_path.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(msgspec.json.encode({"offset": offset, "skip": skip}))
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, self.pos_path)
        except OSError as exc:
            log.error("spool %s: cannot save the read position: %s", self.path, exc)
