"""Merging and batching encoded history runs (parallel key and entry lists)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

from raven.storage.runs import Run, batched_runs, merge_runs


async def pages(keys: list[int], rng: random.Random) -> AsyncIterator[Run]:
    """`keys` in pages of random sizes (some empty), each entry the key's bytes."""
    i = 0
    while i < len(keys):
        n = rng.randint(0, 9)
        yield keys[i : i + n], [str(k).encode() for k in keys[i : i + n]]
        i += n


def split(n: int, sources: int, rng: random.Random) -> list[list[int]]:
    """Unique keys 0..n-1 dealt to sources in random runs."""
    out: list[list[int]] = [[] for _ in range(sources)]
    for key in range(n):
        out[rng.randrange(sources)].append(key)
    return out


async def test_merged_runs_are_every_key_once_in_order() -> None:
    for seed in range(30):
        rng = random.Random(seed)
        parts = split(rng.randint(0, 300), rng.randint(1, 5), rng)
        keys: list[int] = []
        entries: list[bytes] = []
        async for run_keys, run_entries in merge_runs([pages(p, rng) for p in parts]):
            keys += run_keys
            entries += run_entries
        total = sum(len(p) for p in parts)
        assert keys == list(range(total))
        assert entries == [str(k).encode() for k in range(total)]


async def test_batches_stop_at_the_limit_and_carry_the_cursor_after_them() -> None:
    rng = random.Random(7)
    parts = split(250, 3, rng)
    for limit, size in ((1000, 40), (100, 40), (120, 40), (250, 250), (249, 50)):
        stream = merge_runs([pages(p, rng) for p in parts])
        batches = [b async for b in batched_runs(stream, limit, size, lambda key: f"after {key}")]
        flat = [e for entries, _ in batches for e in entries]
        assert flat == [str(k).encode() for k in range(min(limit, 250))]
        assert all(0 < len(entries) <= size for entries, _ in batches)
        more = limit < 250
        cursors = [c for _, c in batches]
        expected = [f"after {int(entries[-1])}" for entries, _ in batches]
        assert cursors == [*expected[:-1], expected[-1] if more else ""]


async def test_batches_of_large_entries_stay_within_the_byte_bound() -> None:
    rng = random.Random(11)
    sizes = [rng.choice((10, 400, 2_500)) for _ in range(300)]
    entries = [bytes([k % 256]) * n for k, n in enumerate(sizes)]

    async def one_page() -> AsyncIterator[Run]:
        yield list(range(len(entries))), list(entries)

    for limit in (300, 120):
        batches = [
            b async for b in batched_runs(one_page(), limit, 100, lambda k: f"after {k}", 3_000)
        ]
        flat = [e for part, _ in batches for e in part]
        assert flat == entries[:limit]
        assert all(sum(map(len, part)) <= 3_000 or len(part) == 1 for part, _ in batches)
        assert all(len(part) <= 100 for part, _ in batches)
        ends = [sum(len(part) for part, _ in batches[: i + 1]) for i in range(len(batches))]
        cursors = [c for _, c in batches]
        last = f"after {limit - 1}" if limit < len(entries) else ""
        assert cursors == [*(f"after {end - 1}" for end in ends[:-1]), last]
