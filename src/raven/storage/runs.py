"""Merging and batching encoded history as runs: parallel lists of keys and bytes. No I/O.

GetHistoricalData's events arrive from each source as pages of encoded
`events` entries with their keys (see `raven.storage.history` for keys and
cursors). They are kept as two parallel lists, never as a tuple per event:
a few hundred thousand short-lived tuples a second cost more in allocation
and garbage collection than the rest of the Python work together.

- `merge_runs`: every key up to the smallest last key among the sources'
  current pages comes before anything not read yet, so that run is cut out
  of each page (a bisect), put in key order by one C-level sort (keys are
  unique) and yielded. One source left: its pages pass through.
- `batched_runs`: batches of at most `batch_size` entries and `max_bytes`
  bytes (one entry may exceed it alone) up to `limit`, each with the cursor
  after it ("" when nothing follows). The byte bound keeps a response of
  large events (full books) under what a gRPC client accepts by default (4 MB).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Sequence
from itertools import islice
from typing import TypeAlias

Run: TypeAlias = tuple[list[int], list[bytes]]  # keys, ascending, and the entries they key
MAX_BATCH_BYTES = 1 << 20  # encoded bytes in one response; gRPC clients accept 4 MB by default


async def next_run(source: AsyncIterator[Run]) -> Run | None:
    """The source's next non-empty page; None at its end."""
    async for run in source:
        if run[0]:
            return run
    return None


async def merge_runs(sources: Sequence[AsyncIterator[Run]]) -> AsyncIterator[Run]:
    """The pages of `sources` (each in key order) as one stream in key order."""
    live: list[AsyncIterator[Run] | None] = list(sources)
    runs: list[Run] = [([], []) for _ in live]
    pos = [0] * len(live)
    while True:
        for i, source in enumerate(live):
            if pos[i] == len(runs[i][0]) and source is not None:
                run = await next_run(source)
                runs[i], pos[i] = (run, 0) if run is not None else (([], []), 0)
                live[i] = source if run is not None else None
        active = [i for i, run in enumerate(runs) if pos[i] < len(run[0])]
        if len(active) <= 1:  # one source left (or none): pass its pages through
            for i in active:
                yield runs[i][0][pos[i] :], runs[i][1][pos[i] :]
                async for run in sources[i]:
                    yield run
            return
        yield _cut(runs, pos, active)


def _cut(runs: list[Run], pos: list[int], active: list[int]) -> Run:
    """Everything up to the smallest last key, from every active run, in key order."""
    horizon = min(runs[i][0][-1] for i in active)
    keys: list[int] = []
    entries: list[bytes] = []
    for i in active:
        run_keys, run_entries = runs[i]
        cut = bisect_right(run_keys, horizon, pos[i])
        keys += run_keys[pos[i] : cut]
        entries += run_entries[pos[i] : cut]
        pos[i] = cut
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return [keys[j] for j in order], [entries[j] for j in order]


async def batched_runs(
    stream: AsyncIterator[Run], limit: int, batch_size: int, cursor: Callable[[int], str],
    max_bytes: int = MAX_BATCH_BYTES,
) -> AsyncIterator[tuple[list[bytes], str]]:  # fmt: skip
    """Batches of at most `batch_size` entries and `max_bytes` bytes, and the
    cursor after each ("" at the end).

    A batch goes out once an entry after it is known, so its cursor is empty
    exactly when nothing follows; `cursor(key)` makes the cursor after `key`.
    """
    keys: list[int] = []
    entries: list[bytes] = []
    count = 0
    try:
        async for more_keys, more_entries in stream:
            keys += more_keys
            entries += more_entries
            start = 0
            while len(keys) - start > (
                take := _fit(entries, start, min(batch_size, limit - count), max_bytes)
            ):
                if take == 0:
                    return  # the limit is reached and more follow: the last cursor says so
                end = start + take
                count += take
                yield entries[start:end], cursor(keys[end - 1])
                start = end
            del keys[:start], entries[:start]
        start = 0
        while start < len(entries):  # the rest: within the limit, maybe not within max_bytes
            end = start + _fit(entries, start, len(entries) - start, max_bytes)
            yield entries[start:end], cursor(keys[end - 1]) if end < len(entries) else ""
            start = end
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


def _fit(entries: list[bytes], start: int, take: int, max_bytes: int) -> int:
    """How many of the `take` entries from `start` fit in `max_bytes` (at least one)."""
    if take <= 1 or sum(map(len, islice(entries, start, start + take))) <= max_bytes:
        return take
    size = 0
    for i in range(start, start + take):
        size += len(entries[i])
        if size > max_bytes:
            return max(i - start, 1)
    return take  # pragma: no cover - the sum above said otherwise
