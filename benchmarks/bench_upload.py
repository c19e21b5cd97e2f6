"""Datastore upload speed against `cp`, side by side on the same disk.

Targets: `ds.upload` of one 1 GiB file at 80% or more of `cp`'s throughput, and of 10,000 small
files (1-4 KiB) at 50% or more of `cp -r`'s files per second.

Each round runs `cp` and `ds.upload` one after the other, in alternating order, into fresh
folders side by side in the datastore's folder, after `sync`, so that neither inherits the
other's dirty pages; the figures are the medians of the rounds, after one warm-up round.
Nothing is deleted until the end: on ext4, creating files shortly after many were deleted is
several times slower (the allocator skips recently deleted inodes), which would favour
whichever ran later. Everything lives in benchmarks/.work/ and is removed after.

Run: .venv/bin/python benchmarks/bench_upload.py [--rounds-big N] [--rounds-small N]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from modelyard.datastore import Datastore
from modelyard.workspace import Workspace

BIG_SIZE = 1 << 30
SMALL_FILES = 10_000
SMALL_FOLDERS = 20
WORK = Path(__file__).resolve().parent / ".work"


def make_big_file(path: Path) -> None:
    # 64 MiB of random bytes written 16 times: nothing on ext4 deduplicates, and it takes a
    # second instead of the ten that 1 GiB from os.urandom would.
    block = os.urandom(64 << 20)
    with open(path, "wb") as f:
        for _ in range(BIG_SIZE // len(block)):
            f.write(block)


def make_small_files(folder: Path) -> int:
    rng = random.Random(42)
    total = 0
    for i in range(SMALL_FILES):
        sub = folder / f"part{i % SMALL_FOLDERS:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        size = rng.randint(1024, 4096)
        (sub / f"img{i:05d}.bin").write_bytes(rng.randbytes(size))
        total += size
    return total


def timed(action: Callable[[], object]) -> float:
    os.sync()  # start each measurement with no dirty pages from the one before
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run_cp(*args: str) -> None:
    subprocess.run(["cp", *args], check=True)


def side_by_side(
    rounds: int, cp: Callable[[int], object], upload: Callable[[int], object]
) -> tuple[list[float], list[float]]:
    """Seconds of each round for cp and for ds.upload, alternating which goes first.

    Round 0 is a warm-up, not counted: the first gigabyte written after a quiet spell goes to
    the page cache at memory speed (3.7 GiB/s here), the next ones at the disk's pace.
    """
    cp_times: list[float] = []
    up_times: list[float] = []
    timed(lambda: cp(0))
    timed(lambda: upload(0))
    for i in range(1, rounds + 1):
        if i % 2 == 1:
            cp_times.append(timed(lambda: cp(i)))  # noqa: B023 (called at once)
            up_times.append(timed(lambda: upload(i)))  # noqa: B023 (called at once)
        else:
            up_times.append(timed(lambda: upload(i)))  # noqa: B023 (called at once)
            cp_times.append(timed(lambda: cp(i)))  # noqa: B023 (called at once)
    return cp_times, up_times


def report(
    label: str, unit: str, amount: float, cp: list[float], up: list[float], target: float
) -> bool:
    """Print the median rates and their ratio; return whether the ratio meets ``target``."""
    cp_rate = amount / statistics.median(cp)
    up_rate = amount / statistics.median(up)
    ratio = up_rate / cp_rate
    verdict = "ok" if ratio >= target else "BELOW TARGET"
    rounds = ", ".join(f"{c / u:.2f}" for c, u in zip(cp, up, strict=True))
    print(
        f"  (rounds, {unit}: cp {', '.join(f'{amount / t:,.0f}' for t in cp)}; "
        f"ds.upload {', '.join(f'{amount / t:,.0f}' for t in up)})"
    )
    print(f"{label}")
    print(f"  cp        {cp_rate:10,.0f} {unit}   (median of {len(cp)})")
    print(f"  ds.upload {up_rate:10,.0f} {unit}")
    print(f"  ratio     {ratio:10.2f}   (target >= {target:.2f}: {verdict}; per round: {rounds})")
    if max(cp) > 3 * min(cp):
        print(
            "  note: cp's own time varied more than 3x between rounds: the disk was not steady "
            "(on ext4, creating files is several times slower for minutes after many were "
            "deleted); run again later for figures that compare like with like"
        )
    return ratio >= target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds-big", type=int, default=5)
    parser.add_argument("--rounds-small", type=int, default=7)
    args = parser.parse_args()

    WORK.mkdir(exist_ok=True)
    work = WORK / f"upload-{os.getpid()}"
    work.mkdir()
    try:
        free = shutil.disk_usage(work).free
        needed = (2 * args.rounds_big + 3) * BIG_SIZE + (2 << 30)
        if free < needed:
            print(f"needs {needed >> 30} GiB free in {WORK}, has {free >> 30} GiB")
            return 1
        ws = Workspace.create("bench", folder=work / "ws")
        ds: Datastore = ws.get_default_datastore()
        # cp writes into the datastore's own folder, beside what ds.upload writes: ext4 puts
        # a folder's files in its parent's block group, and groups differ in speed for minutes
        # after many deletions elsewhere; side by side means the same group for both.
        cp_out = Path(ds.url.removeprefix("file://")) / "cp"
        cp_out.mkdir(parents=True)

        small_src = work / "small"
        small_bytes = make_small_files(small_src)
        big_src = work / "big.bin"
        make_big_file(big_src)
        print(
            f"data: {SMALL_FILES:,} files of 1-4 KiB ({small_bytes / 2**20:.1f} MiB), "
            f"one file of {BIG_SIZE >> 30} GiB; disk of {work}\n"
        )

        small_cp, small_up = side_by_side(
            args.rounds_small,
            lambda i: run_cp("-r", str(small_src), str(cp_out / f"small{i}")),
            lambda i: ds.upload(small_src, target_path=f"small{i}", show_progress=True),
        )
        big_cp, big_up = side_by_side(
            args.rounds_big,
            lambda i: run_cp(str(big_src), str(cp_out / f"big{i}.bin")),
            lambda i: ds.upload_files([big_src], target_path=f"big{i}", show_progress=True),
        )
        print()
        ok_small = report(
            f"{SMALL_FILES:,} small files", "files/s", SMALL_FILES, small_cp, small_up, 0.5
        )
        ok_big = report("one 1 GiB file", "MiB/s", BIG_SIZE / 2**20, big_cp, big_up, 0.8)
        return 0 if ok_small and ok_big else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
