from __future__ import annotations

from pathlib import Path

import pytest

from raven.storage.base import Record
from raven.storage.spool import HEADER, Spool
from tests.storage.events import Market


def records(n: int, seed: int = 1) -> list[Record]:
    return [(e.receive_time, e) for e in Market(seed).events(n)]


def opened(path: Path) -> Spool:
    spool = Spool(path)
    spool.open()
    return spool


def test_every_kind_round_trips_through_the_file(tmp_path: Path) -> None:
    recs = records(300)
    spool = opened(tmp_path / "s.spool")
    spool.append(recs[:120])
    spool.append(recs[120:])
    spool.close()
    again = opened(tmp_path / "s.spool")
    assert again.events == 300
    assert again.peek(1000) == recs
    assert again.last_ts == recs[-1][0]
    again.close()


def test_commit_inside_and_across_blocks_survives_reopen(tmp_path: Path) -> None:
    recs = records(100)
    path = tmp_path / "s.spool"
    spool = opened(path)
    for i in range(0, 100, 25):
        spool.append(recs[i : i + 25])
    spool.commit(10)  # inside the first block
    assert spool.peek(3) == recs[10:13]
    spool.commit(30)  # finishes block 1, into block 2
    assert spool.events == 60
    spool.close()
    again = opened(path)
    assert again.events == 60
    assert again.peek(100) == recs[40:]
    assert again.bytes > 0
    again.close()


def test_fully_committed_spool_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "s.spool"
    spool = opened(path)
    spool.append(records(10))
    spool.commit(10)
    assert spool.events == 0
    assert path.stat().st_size == 0
    assert not spool.pos_path.exists()
    with pytest.raises(ValueError, match="holds 0"):
        spool.commit(1)
    spool.close()


def test_a_block_torn_by_a_crash_is_cut_and_the_rest_kept(tmp_path: Path) -> None:
    recs = records(40)
    path = tmp_path / "s.spool"
    spool = opened(path)
    spool.append(recs[:20])
    first_block = spool.bytes
    spool.append(recs[20:])
    spool.close()
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # the second block lost its tail
    again = opened(path)
    assert again.events == 20
    assert again.peek(100) == recs[:20]
    assert path.stat().st_size == first_block
    again.append(recs[20:])  # appends after the good part
    assert again.peek(100) == recs
    again.close()
    final = opened(path)
    assert final.peek(100) == recs
    final.close()


def test_a_block_with_a_bad_checksum_is_cut(tmp_path: Path) -> None:
    recs = records(10)
    path = tmp_path / "s.spool"
    spool = opened(path)
    spool.append(recs)
    spool.close()
    data = bytearray(path.read_bytes())
    data[HEADER.size + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    again = opened(path)
    assert again.events == 0
    again.close()


def test_a_disk_that_refuses_writes_keeps_records_in_order_in_memory(tmp_path: Path) -> None:
    full = Path("/dev/full")
    if not full.exists():
        pytest.skip("/dev/full (a device that is always full) is not available")
    recs = records(30)
    path = tmp_path / "s.spool"
    path.symlink_to(full)
    spool = opened(path)
    spool.append(recs[:10])
    spool.append(recs[10:])
    assert spool.events == 30
    assert spool.peek(100) == recs
    spool.commit(15)
    assert spool.peek(100) == recs[15:]
    spool.close()  # logs that 15 events never reached the disk
