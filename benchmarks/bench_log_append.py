"""3,000 appends of 4 KiB to a live log on an S3 endpoint: through the log shipper against
one ``append_run_file`` call per append.

Starts moto's server on 127.0.0.1 (tests/s3.py, the tests' S3 endpoint), makes a workspace
whose files are in a bucket there (SQLite for the metadata, in a temporary folder) and a run,
and times, in this process:

- **shipped**: ``--appends`` blocks of 4 KiB handed to a
  :class:`~modelyard.runner.log_shipping.LogShipper` (what a run's supervisor does with its
  output), until ``flush()`` returns, that is until every byte is stored;
- **direct**: the same appends as one ``backend.append_run_file`` each, at the end of the one
  before (what the supervisor did before; each is one PUT of a chunk, see
  store/log_chunks.py; before logs were chunked, each rewrote the whole file: 46 s).

Each log is read back and checked against the bytes written. Both go through s3fs to the same
endpoint, so the direct figure is mostly the endpoint's own time per request, and the shipped
one the number of requests the shipper needed (printed) times that.

Run: .venv/bin/python benchmarks/bench_log_append.py [--appends 3000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelyard.backend.local import LocalBackend
from modelyard.experiment import Experiment
from modelyard.runner.log_shipping import LogShipper
from modelyard.workspace import Workspace
from tests.s3 import S3Server

BLOCK = b"x" * 4095 + b"\n"
LOG = "user_logs/std_log.txt"


def shipped(backend: LocalBackend, run_id: str, count: int) -> float:
    shipper = LogShipper(backend, run_id)
    start = time.perf_counter()
    for _ in range(count):
        shipper.append(LOG, BLOCK)
    shipper.flush()
    elapsed = time.perf_counter() - start
    shipper.close()
    return elapsed


def direct(backend: LocalBackend, run_id: str, count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        backend.append_run_file(run_id, LOG, i * len(BLOCK), BLOCK)
    return time.perf_counter() - start


def chunk_count(backend: LocalBackend, run_id: str) -> int:
    files = backend.files
    return len(files.fs.find(files.full_path(f"runs/{run_id}/{LOG}") + ".chunks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=3000)
    args = parser.parse_args()
    server = S3Server.start()
    try:
        url, options = server.new_bucket()
        with tempfile.TemporaryDirectory() as folder:
            ws = Workspace.create(
                "bench", folder=Path(folder) / "ws", storage_url=url, storage_options=options
            )
            backend = ws._backend
            assert isinstance(backend, LocalBackend)
            experiment = Experiment(ws, "bench")
            runs = [experiment.start_logging().id for _ in range(2)]
            new = shipped(backend, runs[0], args.appends)
            old = direct(backend, runs[1], args.appends)
            for run_id in runs:
                stored = backend.read_run_file(run_id, LOG, 0, 1 << 30)
                assert stored == BLOCK * args.appends, (
                    "the stored log differs from the bytes written"
                )
            calls = chunk_count(backend, runs[0])
    finally:
        server.stop()
    print(
        f"shipped: {args.appends} appends of 4 KiB stored in {new:.2f} s, in {calls} PUTs "
        f"(target: under 2 s)"
    )
    print(f"direct:  {args.appends} appends of 4 KiB stored in {old:.2f} s, one PUT each")
    print(f"ratio: {old / new:.1f}x; both logs read back equal to the bytes written")


if __name__ == "__main__":
    main()
