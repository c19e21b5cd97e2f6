"""Appends of 4 KiB to a live log on an S3 endpoint: chunks against rewriting the file.

Starts moto's server on 127.0.0.1 (tests/s3.py, the tests' S3 endpoint) and times, in this
process, ``FileStore.append`` of ``--appends`` blocks of 4 KiB to one log, each at the end of
the one before (what a run's supervisor does with its output). For comparison it times the
way the store appended before logs were chunked, measured the same way on ``--old-appends``
blocks: read the size, read the whole file, write it back with the new bytes. That cost grows
with the log, so the old figure for the full count would be larger still than a linear
scaling of it; the ratio printed is per append, at the smaller count.

Both go through s3fs to the same endpoint; each append of the new way is one PUT, so the
figure is mostly the endpoint's own time per request.

Run: .venv/bin/python benchmarks/bench_log_append.py [--appends 3000] [--old-appends 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelyard.store.files import FileStore
from tests.s3 import S3Server

BLOCK = b"x" * 4095 + b"\n"


def chunked(store: FileStore, count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        store.append("log.txt", i * len(BLOCK), BLOCK)
    elapsed = time.perf_counter() - start
    assert store.size("log.txt") == count * len(BLOCK)
    return elapsed


def rewritten(store: FileStore, count: int) -> float:
    """The append of before: the whole file read and written again, each time."""
    path = store.full_path("old.txt")
    start = time.perf_counter()
    for i in range(count):
        offset = i * len(BLOCK)
        size = int(store.fs.size(path)) if store.fs.exists(path) else 0
        assert size == offset
        old = store.fs.cat_file(path) if size else b""
        store.fs.pipe_file(path, old + BLOCK)
    elapsed = time.perf_counter() - start
    assert store.size("old.txt") == count * len(BLOCK)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=3000)
    parser.add_argument("--old-appends", type=int, default=300)
    args = parser.parse_args()
    server = S3Server.start()
    try:
        url, options = server.new_bucket()
        store = FileStore(url, options)
        new = chunked(store, args.appends)
        new_small = chunked(FileStore(url + "-small", options), args.old_appends)
        old = rewritten(store, args.old_appends)
    finally:
        server.stop()
    print(
        f"chunked: {args.appends} appends of 4 KiB in {new:.2f} s "
        f"({new / args.appends * 1000:.2f} ms each; target under 2 s)"
    )
    print(
        f"at {args.old_appends} appends: rewriting {old:.2f} s, chunked {new_small:.2f} s, "
        f"ratio {old / new_small:.1f}x"
    )


if __name__ == "__main__":
    main()
