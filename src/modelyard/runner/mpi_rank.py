"""One MPI rank of a modelyard run: what ``mpirun`` starts in place of the script.

mpirun (OpenMPI) would merge every rank's output into its own; this wrapper instead sends the
rank's stdout and stderr into the two named pipes the run supervisor reads for this rank, so
each rank gets a clean log of its own (``user_logs/std_log_process_NN.txt``). It also

- writes its process group to ``<rank>.pgid`` first (mpirun gives each rank a group of its
  own; the supervisor records them, so the ranks can be stopped even if mpirun cannot),
- sets ``MODELYARD_PROCESS_INDEX`` (the rank) and ``MODELYARD_PROCESS_COUNT`` (the world
  size), which tag the rank's metrics,
- passes SIGTERM, SIGINT and SIGHUP on to the script,
- writes ``<rank>.status`` (``"<exit code> <unix time>"``, negative codes for signals) when the
  script ends, and exits as the script did, so mpirun sees the failure too.

The script runs as a child (not with exec), so the exit status is known for certain; mpi4py
and Horovod find their rank from the environment, which the child inherits.

It uses the standard library only and runs by path with ``-S`` (no site-packages: a quicker
start), so any interpreter of the run can start it without importing modelyard::

    mpirun -np 4 python -S .../mpi_rank.py RANK_DIR python train.py --epochs 3
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from types import FrameType

RANK_VARIABLES = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK")
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _first(names: tuple[str, ...], default: str) -> str:
    for name in names:
        if name in os.environ:
            return os.environ[name]
    return default


def _write(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)  # readers see the whole line or nothing


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: mpi_rank.py RANK_DIR COMMAND...", file=sys.stderr)
        return 2
    folder, command = argv[0], argv[1:]
    rank = _first(RANK_VARIABLES, "")
    if not rank.isdigit():
        print("mpi_rank.py: no MPI rank in the environment (run under mpirun)", file=sys.stderr)
        return 2
    _write(os.path.join(folder, f"{rank}.pgid"), str(os.getpgid(0)))
    environment = dict(os.environ)
    environment["MODELYARD_PROCESS_INDEX"] = rank
    environment["MODELYARD_PROCESS_COUNT"] = _first(SIZE_VARIABLES, "1")
    # Opening a FIFO for writing waits for its reader: the supervisor opened it already.
    out = os.open(os.path.join(folder, f"{rank}.out"), os.O_WRONLY)
    err = os.open(os.path.join(folder, f"{rank}.err"), os.O_WRONLY)
    # posix_spawn rather than subprocess, whose import alone costs as much as the rest here.
    child = os.posix_spawnp(
        command[0],
        command,
        environment,
        file_actions=[(os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, err, 2)],
    )
    os.close(out)
    os.close(err)

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):  # it has just ended
            os.kill(child, signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    _write(os.path.join(folder, f"{rank}.status"), f"{code} {time.time()!r}\n")
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
