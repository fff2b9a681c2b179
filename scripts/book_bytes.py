"""Bytes per level of an OrderBook module (tracemalloc): 50 symbols x 1,000 levels a side = 100,000
levels with decoder-like texts, after load and after churn. Usage: book_bytes.py PATH/TO/book.py"""
import gc, importlib.util, random, sys, tracemalloc

path = sys.argv[1]
spec = importlib.util.spec_from_file_location("bookmod", path)
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
rng = random.Random(7)
N_SYM, DEPTH = 50, 1000

def texts(mid_ticks: int, sign: int, n: int):
    # realistic decoder output: fresh str objects per level, 2 decimals price, 3 qty
    return [(f"{(mid_ticks + sign * (i + 1)) / 100:.2f}", f"{rng.randint(1, 99999) / 1000:.3f}") for i in range(n)]

gc.collect(); tracemalloc.start()
base = tracemalloc.get_traced_memory()[0]
snaps = [(texts(300000 + s * 1000, -1, DEPTH), texts(300000 + s * 1000, 1, DEPTH)) for s in range(N_SYM)]
books = []
for s, (b, a) in enumerate(snaps):
    ob = mod.OrderBook(f"S{s}"); ob.load(b, a, 1); books.append(ob)
del snaps, b, a
gc.collect()
after_load = tracemalloc.get_traced_memory()[0] - base
levels = sum(len(o.bids) + len(o.asks) for o in books)
print(f"after load: {after_load/levels:.1f} B/level ({levels} levels, {after_load/1e6:.2f} MB)")
# churn: 200 updates per book side, each 10 levels near the touch: mixed updates/removes/inserts
for r in range(200):
    for s, ob in enumerate(books):
        mid = 300000 + s * 1000
        bids = [(f"{(mid - rng.randint(1, 1200)) / 100:.2f}", "0" if rng.random() < 0.3 else f"{rng.randint(1, 99999) / 1000:.3f}") for _ in range(5)]
        asks = [(f"{(mid + rng.randint(1, 1200)) / 100:.2f}", "0" if rng.random() < 0.3 else f"{rng.randint(1, 99999) / 1000:.3f}") for _ in range(5)]
        ob.apply(bids, asks, r + 2)
del bids, asks
gc.collect()
after = tracemalloc.get_traced_memory()[0] - base
levels = sum(len(o.bids) + len(o.asks) for o in books)
print(f"after churn: {after/levels:.1f} B/level ({levels} levels, {after/1e6:.2f} MB)")
