"""Hash-set lookups at NSRL scale: build an indexed store of N random MD5s (default
20,000,000) and time lookups of three digests per file (as the scan does), hits and misses;
misses both as the scan makes them (the store's Bloom filter first) and of the store alone.

Usage: python -m bench.hashset_lookup [--entries N] [--lookups M]
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

from triage.analysis.hashsets import HashSetStore, load_hashset
from triage.analysis.hashsets.prefilter import filter_path

BUILD = Path(__file__).resolve().parent / "build"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=20_000_000)
    parser.add_argument("--lookups", type=int, default=200_000)
    args = parser.parse_args()
    BUILD.mkdir(exist_ok=True)
    source = BUILD / f"random-md5-{args.entries}.txt"
    rng = random.Random(7)
    if not source.exists():
        with source.open("w") as fh:
            for _ in range(args.entries):
                fh.write(rng.randbytes(16).hex() + "\n")
    started = time.perf_counter()
    info = load_hashset(source, BUILD / "lookup-cache")
    built = time.perf_counter() - started
    store = HashSetStore(info.store, info.entries)  # as the scan opens it: with its filter
    alone = HashSetStore(info.store)
    known = [line.strip() for _, line in zip(range(1000), source.open(), strict=False)]
    probes = [[os.urandom(16).hex(), os.urandom(20).hex(), os.urandom(32).hex()] for _ in range(args.lookups)]
    started = time.perf_counter()
    misses = sum(store.lookup(p) is None for p in probes)
    miss_time = time.perf_counter() - started
    started = time.perf_counter()
    sum(alone.lookup(p) is None for p in probes)
    alone_time = time.perf_counter() - started
    started = time.perf_counter()
    hits = sum(store.lookup([k]) is not None for k in known * (args.lookups // 1000))
    hit_time = time.perf_counter() - started
    size = Path(info.store).stat().st_size
    filter_size = filter_path(info.store).stat().st_size
    print(
        f"store: {info.entries:,} hashes, {size / 2**20:.0f} MiB on disk and a "
        f"{filter_size / 2**20:.0f} MiB filter, built (or reused) in {built:.1f} s"
    )
    print(
        f"misses: {misses:,} files x 3 digests in {miss_time:.2f} s = {args.lookups / miss_time:,.0f} files/s"
        f" (the store alone: {args.lookups / alone_time:,.0f} files/s)"
    )
    print(f"hits:   {hits:,} in {hit_time:.2f} s = {hits / hit_time:,.0f} lookups/s")


if __name__ == "__main__":
    main()
