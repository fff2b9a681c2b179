"""Catch-up: a log reader's unread entries applied to its private queue in bulk.

A subscriber of the bus's shared log (see `raven.core.bus`) that falls
behind is *settled*: the entries of its topics between its cursor and the
head move into its private queue (`raven.core.backlog`), and its overflow
policies apply to them all at once, in one pass over the range, instead of
being offered one event at a time. What it costs is per entry scanned,
mostly in C (slices, `itertools.compress`, `dict(zip(...))` keeping the
last position per topic), plus a little per topic; publishing costs nothing
per lagging subscriber.

The policies, applied to the queue plus the batch as a whole (`absorb`):

- Room for all (held + batch <= capacity): everything is queued, in order,
  nothing conflated or dropped.
- Overflow: every conflatable topic (``conflate`` kinds, not `keep`) keeps
  only its newest event, at its own place in time; the older ones, queued
  or in the batch, count as conflated. A book view that lost a delta this
  way has its newest one replaced by a snapshot of the view, made when it
  is sent. If the queue still holds more than `capacity`, a
  ``disconnect``-kind event of the batch that arrives past the capacity
  fails the subscriber; otherwise the oldest droppable (non-conflatable)
  events go, counted as dropped and as the next Gap marker's count.
- A book snapshot still to be made absorbs every newer delta of its view
  (they are in it when it is made), whether or not the queue overflows:
  made later, it could not be taken as of before them.

Per event this differs from the per-event queue only in *which* events an
overflow takes (a batch conflates every conflatable topic at once, where
the per-event queue conflated one topic per overflowing event): the counts
stay exact (every event is sent, conflated or dropped, once), each topic
stays in order and its newest event is always delivered.
"""

from __future__ import annotations

import operator
from collections import Counter
from itertools import compress, repeat

from raven.core.backlog import COMPACT_AFTER, Backlog, Policy, Resnapshot, Slot, Topic

Extra = bool | Resnapshot  # per entry: `keep`, or the book view's resnapshot (keep False)
# One settle's entries, in log order: topic ids, chunks, publish times, extras.
Batch = tuple[list[int], list[bytes], list[int], list[Extra]]


def absorb(q: Backlog, topic_of: list[Topic], batch: Batch) -> None:
    """Queue `batch` (a subscriber's unread log entries) into `q`, its
    policies applied in bulk (see the module doc)."""
    tids, chunks, times, extras = batch
    n = len(tids)
    if not n or q.failure:
        return
    policies = q.policies
    kinds = {tid: policies[topic_of[tid][0]] for tid in set(tids)}
    conflating = {tid: kind is Policy.CONFLATE for tid, kind in kinds.items()}
    # Per entry: conflatable (its kind conflates and it is not a `keep` event).
    cmask = list(map(conflating.__getitem__, tids))
    if extras.count(True):  # rare (a closed candle, a book status): C-level count first
        for j in compress(range(n), map(operator.is_, extras, _TRUE)):
            cmask[j] = False
    overflow = q.held + n > q.capacity
    if overflow:
        folded = {tid for tid, c in conflating.items() if c}
    else:
        folded = {tid for tid, c in conflating.items() if c and _due(q, topic_of[tid])}
    items: list[bytes | Slot] = list(chunks)
    keep = _fold(q, topic_of, batch, cmask, folded, overflow, items) if folded else None
    if not overflow and any(cmask):
        _chain(q, topic_of, batch, cmask, folded, items)
    if overflow and q.redundant:
        q.collapse_all()  # the older queued events of the topics not in the batch
    before = q.held
    _append(q, items, times, keep, n)
    if q.held > q.capacity and overflow:
        if Policy.DISCONNECT in kinds.values() and _late(q, kinds, tids, keep, before):
            q.fail(f"queue full ({q.capacity} events): the client reads too slowly")
            return
        _drop_oldest(q, q.held - q.capacity)
    if q.dead > COMPACT_AFTER and q.dead > q.held:
        q.compact()


_TRUE = repeat(True)
_INVERT = bytes([1, 0]) + bytes(254)  # bytes.translate table: 0 -> 1, 1 -> 0


def _due(q: Backlog, topic: Topic) -> bool:
    slot = q.newest.get(topic)
    return slot is not None and slot.chunk is None and slot.resnapshot is not None


def _fold(
    q: Backlog,
    topic_of: list[Topic],
    batch: Batch,
    cmask: list[bool],
    folded: set[int],
    every: bool,
    items: list[bytes | Slot],
) -> bytearray:
    """Keep only the newest event of each folded topic (queued or in the
    batch); returns the batch's keep mask (0 for a conflated entry)."""
    tids, chunks, _, extras = batch
    # On an overflow every conflatable topic of the batch folds.
    fmask = cmask if every else [c and tid in folded for c, tid in zip(cmask, tids, strict=True)]
    ftids = list(compress(tids, fmask))
    counts = Counter(ftids)
    newest = dict(zip(ftids, compress(range(len(tids)), fmask), strict=True))
    keep = bytearray(bytes(fmask).translate(_INVERT))  # 1 where not folded
    for tid, j in newest.items():
        keep[j] = 1
        topic = topic_of[tid]
        lost = counts[tid] - 1
        old = q.newest.pop(topic, None)
        if old is not None:
            if old.chunk is None and old.resnapshot is not None:
                q.due -= 1  # its snapshot is made as the new slot's now
            lost += q.collapse(old) + 1
            q.kill(old)
            q.held -= 1
        q.counters.conflated += lost
        extra = extras[j]
        resnapshot = None if isinstance(extra, bool) else extra
        slot = q.newest[topic] = Slot(topic, chunks[j], None, resnapshot)
        if lost and resnapshot is not None:
            slot.chunk = None  # deltas were lost: send the view's snapshot instead
            q.due += 1
        items[j] = slot
    return keep


def _chain(
    q: Backlog,
    topic_of: list[Topic],
    batch: Batch,
    cmask: list[bool],
    folded: set[int],
    items: list[bytes | Slot],
) -> None:
    """Queue each conflatable event of a topic not folded as its own slot,
    linked to the older ones (a later overflow conflates them)."""
    tids, chunks, _, extras = batch
    newest = q.newest
    for j in compress(range(len(tids)), cmask):
        tid = tids[j]
        if tid in folded:
            continue
        topic = topic_of[tid]
        prev = newest.get(topic)
        if prev is not None:
            q.redundant += 1
        extra = extras[j]
        resnapshot = None if isinstance(extra, bool) else extra
        items[j] = newest[topic] = Slot(topic, chunks[j], prev, resnapshot)


def _append(
    q: Backlog, items: list[bytes | Slot], times: list[int], keep: bytearray | None, n: int
) -> None:
    if keep is None:
        q.queue.extend(items)
        q.times.extend(times)
        q.held += n
    else:
        q.queue.extend(compress(items, keep))
        q.times.extend(compress(times, keep))
        q.held += keep.count(1)
    q.counters.queued += n
    q.wakeup.set()


def _late(
    q: Backlog, kinds: dict[int, Policy], tids: list[int], keep: bytearray | None, before: int
) -> bool:
    """Whether a queued event of a ``disconnect`` kind arrived with the
    queue already full (`before` events held ahead of the batch)."""
    kept = tids if keep is None else list(compress(tids, keep))
    late = kept[max(0, q.capacity - before) :]
    return any(kinds[tid] is Policy.DISCONNECT for tid in set(late))


def _drop_oldest(q: Backlog, count: int) -> None:
    """Drop the `count` oldest droppable events (plain chunks); conflated
    slots and control frames before them keep their places."""
    queue, times = q.queue, q.times
    kept: list[object] = []
    kept_times: list[int] = []
    dropped = 0
    while dropped < count and queue:
        item = queue.popleft()
        published = times.popleft()
        kind = type(item)
        if kind is bytes:
            dropped += 1
        elif kind is Slot and not item.live:  # type: ignore[union-attr]
            q.dead -= 1
        else:
            kept.append(item)
            kept_times.append(published)
    queue.extendleft(reversed(kept))  # type: ignore[arg-type]
    times.extendleft(reversed(kept_times))
    q.held -= dropped
    q.pending_gap += dropped
    q.counters.dropped += dropped
