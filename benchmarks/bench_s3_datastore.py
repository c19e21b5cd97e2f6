"""Datastore transfers to and from S3 against `aws s3 cp --recursive`, on one S3 endpoint.

Starts moto's server on 127.0.0.1 (tests/s3.py, the tests' S3 endpoint), registers a datastore
on a bucket of it, and times, in the same run and against the same endpoint:

- the upload of one 1 GiB file: ``ds.upload_files`` against ``aws s3 cp``;
- the upload of 10,000 small files (1-4 KiB, 20 folders): ``ds.upload`` against
  ``aws s3 cp --recursive``;
- the download of each back to the local disk: ``ds.download`` against ``aws s3 cp
  --recursive`` from the bucket.

It prints seconds, MiB/s or files/s for each, and the ratio of the times (ours / aws: below 1
means the datastore was faster). Each round runs both, alternating which goes first, into
fresh prefixes; the figures are the medians of the rounds. The AWS CLI keeps its defaults (10
requests at a time, parts of 8 MiB above 8 MiB). moto's server is one Python process on the
same cores as both clients, so the figures say how well each client uses an endpoint like it,
not what S3 itself would give.

The AWS CLI is only for this benchmark: it is installed with pip into a private virtual
environment in benchmarks/.work/ (kept there, so later runs start at once; ``--aws`` names an
``aws`` command to use instead). The data lives in benchmarks/.work/ and is removed after.

Run: .venv/bin/python benchmarks/bench_s3_datastore.py [--rounds N] [--aws PATH] [--skip-download]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# The same data as the local upload benchmark: one 1 GiB file, 10,000 files of 1-4 KiB.
from bench_upload import BIG_SIZE, SMALL_FILES, make_big_file, make_small_files

from modelyard.datastore import Datastore
from modelyard.store.files import FileStore
from modelyard.workspace import Workspace
from tests.s3 import S3Server, isolated_env

WORK = Path(__file__).resolve().parent / ".work"
AWS_VENV = WORK / "awscli-venv"


def aws_command(given: str | None) -> str:
    """The ``aws`` to run: the one given, or one pip installs into benchmarks/.work/."""
    if given:
        return given
    aws = AWS_VENV / "bin" / "aws"
    if not aws.exists():
        print(f"installing the AWS CLI into {AWS_VENV} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(AWS_VENV)], check=True)
        pip = [str(AWS_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "awscli"]
        subprocess.run(pip, check=True)
    return str(aws)


class Aws:
    """``aws s3 cp`` against the benchmark's endpoint, with its dummy credentials only."""

    def __init__(self, command: str, endpoint_url: str) -> None:
        self.command = command
        self.endpoint_url = endpoint_url
        self.env = isolated_env() | {"AWS_EC2_METADATA_DISABLED": "true"}

    def cp(self, source: str, target: str, *, recursive: bool) -> None:
        args = [self.command, "s3", "cp", "--only-show-errors", "--no-progress"]
        args += ["--endpoint-url", self.endpoint_url]
        args += ["--recursive"] if recursive else []
        subprocess.run([*args, source, target], check=True, env=self.env)

    def version(self) -> str:
        done = subprocess.run(
            [self.command, "--version"], check=True, env=self.env, capture_output=True, text=True
        )
        return (done.stdout or done.stderr).strip()


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def side_by_side(
    label: str, rounds: int, ours: Callable[[int], object], aws: Callable[[int], object]
) -> tuple[list[float], list[float]]:
    """Seconds of each round for the datastore and for the AWS CLI, alternating the order."""
    ours_times: list[float] = []
    aws_times: list[float] = []
    for i in range(rounds):
        if i % 2 == 0:
            ours_times.append(timed(lambda: ours(i)))  # noqa: B023 (called at once)
            aws_times.append(timed(lambda: aws(i)))  # noqa: B023 (called at once)
        else:
            aws_times.append(timed(lambda: aws(i)))  # noqa: B023 (called at once)
            ours_times.append(timed(lambda: ours(i)))  # noqa: B023 (called at once)
        print(
            f"  {label}, round {i + 1}: "
            f"datastore {ours_times[-1]:.1f} s, aws {aws_times[-1]:.1f} s",
            flush=True,
        )
    return ours_times, aws_times


def report(label: str, unit: str, amount: float, ours: list[float], aws: list[float]) -> None:
    ours_s = statistics.median(ours)
    aws_s = statistics.median(aws)
    print(label)
    print(f"  datastore  {ours_s:8.2f} s  {amount / ours_s:10,.1f} {unit}")
    print(f"  aws s3 cp  {aws_s:8.2f} s  {amount / aws_s:10,.1f} {unit}")
    rounds = ", ".join(f"{o / a:.2f}" for o, a in zip(ours, aws, strict=True))
    print(
        f"  ratio      {ours_s / aws_s:8.2f}    (ours / aws time, median of {len(ours)}: {rounds})"
    )


def check_count(store: FileStore, prefix: str, expected: int) -> None:
    found = len(store.list(prefix))
    if found != expected:
        raise SystemExit(f"{prefix}: {found} objects in the bucket, {expected} expected")


def check_local_count(folder: Path, expected: int) -> None:
    found = sum(1 for p in folder.rglob("*") if p.is_file())
    if found != expected:
        raise SystemExit(f"{folder}: {found} files downloaded, {expected} expected")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--aws", help="an `aws` command to use instead of installing one")
    parser.add_argument("--skip-download", action="store_true")
    args = parser.parse_args()

    WORK.mkdir(exist_ok=True)
    aws_cmd = aws_command(args.aws)
    work = WORK / f"s3-datastore-{os.getpid()}"
    work.mkdir()
    server = S3Server.start()
    try:
        url, options = server.new_bucket()
        bucket_url = url  # s3://<bucket>/data
        store = FileStore(url, options)
        aws = Aws(aws_cmd, server.endpoint_url)
        ws = Workspace.create("bench", folder=work / "ws")
        ds = Datastore.register(ws, "s3data", url, **options)

        small_src = work / "small"
        small_bytes = make_small_files(small_src)
        big_src = work / "big.bin"
        make_big_file(big_src)
        print(
            f"data: {SMALL_FILES:,} files of 1-4 KiB ({small_bytes / 2**20:.1f} MiB), one file "
            f"of {BIG_SIZE >> 30} GiB; endpoint: moto's server at {server.endpoint_url}; "
            f"{aws.version()}\n",
            flush=True,
        )

        def ours_big_up(i: int) -> None:
            ds.upload_files([big_src], target_path=f"ours-big{i}", show_progress=False)
            check_count(store, f"ours-big{i}", 1)

        def aws_big_up(i: int) -> None:
            aws.cp(str(big_src), f"{bucket_url}/aws-big{i}/big.bin", recursive=False)
            check_count(store, f"aws-big{i}", 1)

        def ours_small_up(i: int) -> None:
            ds.upload(small_src, target_path=f"ours-small{i}", show_progress=False)
            check_count(store, f"ours-small{i}", SMALL_FILES)

        def aws_small_up(i: int) -> None:
            aws.cp(str(small_src), f"{bucket_url}/aws-small{i}", recursive=True)
            check_count(store, f"aws-small{i}", SMALL_FILES)

        big_up = side_by_side("upload of 1 GiB", args.rounds, ours_big_up, aws_big_up)
        small_up = side_by_side("upload of small files", args.rounds, ours_small_up, aws_small_up)

        if not args.skip_download:
            down = work / "down"

            def ours_big_down(i: int) -> None:
                ds.download(down / f"ours-big{i}", prefix="ours-big0/", show_progress=False)
                check_local_count(down / f"ours-big{i}", 1)

            def aws_big_down(i: int) -> None:
                aws.cp(f"{bucket_url}/aws-big0", str(down / f"aws-big{i}"), recursive=True)
                check_local_count(down / f"aws-big{i}", 1)

            def ours_small_down(i: int) -> None:
                ds.download(down / f"ours-small{i}", prefix="ours-small0/", show_progress=False)
                check_local_count(down / f"ours-small{i}", SMALL_FILES)

            def aws_small_down(i: int) -> None:
                aws.cp(f"{bucket_url}/aws-small0", str(down / f"aws-small{i}"), recursive=True)
                check_local_count(down / f"aws-small{i}", SMALL_FILES)

            big_down = side_by_side("download of 1 GiB", args.rounds, ours_big_down, aws_big_down)
            small_down = side_by_side(
                "download of small files", args.rounds, ours_small_down, aws_small_down
            )

        mib = BIG_SIZE / 2**20
        report("upload of one 1 GiB file", "MiB/s", mib, *big_up)
        report(f"upload of {SMALL_FILES:,} small files", "files/s", SMALL_FILES, *small_up)
        if not args.skip_download:
            report("download of one 1 GiB file", "MiB/s", mib, *big_down)
            report(f"download of {SMALL_FILES:,} small files", "files/s", SMALL_FILES, *small_down)
        return 0
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
