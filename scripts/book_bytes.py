"""Bytes per book level of an OrderBook module, measured with tracemalloc.

50 symbols x 1,000 levels a side = 100,000 levels with decoder-like texts
(fresh str objects, 2-decimal prices, 3-decimal quantities), counted with
the texts and level tuples; then 200 rounds of 5-level updates per side
(30% removals) and the count again. Loads the module from a path so two
versions can be compared: `git show REV:src/raven/core/book.py > old.py`.

Usage: .venv/bin/python scripts/book_bytes.py [PATH/TO/book.py]
"""

from __future__ import annotations

import gc
import importlib.util
import random
import sys
import tracemalloc
from typing import Any

N_SYMBOLS, DEPTH, ROUNDS = 50, 1000, 200
rng = random.Random(7)


def load(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("book_under_test", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def side(mid: int, sign: int) -> list[tuple[str, str]]:
    return [(f"{(mid + sign * i) / 100:.2f}", qty()) for i in range(1, DEPTH + 1)]


def qty() -> str:
    return f"{rng.randint(1, 99999) / 1000:.3f}"


def churn(mid: int, sign: int) -> list[tuple[str, str]]:
    def one() -> tuple[str, str]:
        return f"{(mid + sign * rng.randint(1, 1200)) / 100:.2f}", (
            "0" if rng.random() < 0.3 else qty()
        )

    return [one() for _ in range(5)]


def report(what: str, books: list[Any], base: int) -> None:
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    levels = sum(len(b.bids) + len(b.asks) for b in books)
    print(f"{what}: {used / levels:.1f} B/level ({levels:,} levels, {used / 1e6:.2f} MB)")


def main(path: str) -> None:
    module = load(path)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    books = []
    for s in range(N_SYMBOLS):
        book = module.OrderBook(f"S{s}")
        mid = 300_000 + s * 1000
        book.load(side(mid, -1), side(mid, 1), 1)
        books.append(book)
    report("after load", books, base)
    for r in range(ROUNDS):
        for s, book in enumerate(books):
            mid = 300_000 + s * 1000
            book.apply(churn(mid, -1), churn(mid, 1), r + 2)
    report("after churn", books, base)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "src/raven/core/book.py")
