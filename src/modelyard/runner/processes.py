"""A run's processes as its supervisor sees them: started, read, watched and stopped.

The supervisor starts them from a :class:`~modelyard.runner.launchers.LaunchPlan`:

- **directly** (one process, or TensorFlow's and PyTorch's several): each is the supervisor's
  child with its stdout and stderr on pipes. Several processes share one process group, so one
  signal reaches all of them and whatever they start.
- **under mpirun** (MPI): mpirun is the supervisor's child and starts the ranks, each through
  ``mpi_rank.py``, which sends the rank's stdout and stderr into two named pipes (FIFOs) the
  supervisor reads, and writes the rank's process group and exit status into files beside
  them. mpirun puts every rank in a process group of its own: the supervisor records them all
  (``processes.json``), so the compute agent can stop every one if the supervisor dies.

Each process's stdout and stderr are merged line by line into its own log (``Output``).

Example (the supervisor's loop, much shortened)::

    processes = Processes(plan, [python, "train.py"], workdir, env, run_dir / "ranks",
                          log_name=process_log_name)
    processes.start()
    while processes.running():
        processes.arrived.wait(0.1)       # some output came, or a tenth of a second passed
    processes.stop(grace=10)              # whatever is left: SIGTERM, then SIGKILL
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from modelyard.runner.launchers import LaunchPlan, ProcessPlan

_PR_SET_PDEATHSIG = 1  # prctl(2)

STDERR_TAIL_BYTES = 4096
LAUNCHER_LOG = "system_logs/launcher.txt"  # mpirun's own messages


class Output:
    """Bytes read from a process's stdout and stderr, waiting to be shipped.

    Both streams go to one log, so they are merged line by line: a line of one stream is never
    cut by a chunk of the other. A line still without its end (a prompt, a progress bar) is
    shipped anyway once it is ``PARTIAL_LINE_S`` old. ``arrived`` may be shared by the outputs
    of several processes; its waiter clears it.
    """

    PARTIAL_LINE_S = 0.5

    def __init__(self, arrived: threading.Event | None = None) -> None:
        self.pending = bytearray()
        self.partial: dict[bool, tuple[bytearray, float]] = {}
        self.stderr_tail: collections.deque[bytes] = collections.deque()
        self.stderr_tail_size = 0
        self.lock = threading.Lock()
        self.owns_event = arrived is None
        self.arrived = arrived or threading.Event()

    def pump(self, stream: IO[bytes], is_stderr: bool) -> None:
        fd = stream.fileno()
        try:
            while chunk := os.read(fd, 65536):
                with self.lock:
                    buffered, since = self.partial.get(is_stderr, (bytearray(), time.monotonic()))
                    if not buffered:
                        since = time.monotonic()
                    buffered += chunk
                    end = max(buffered.rfind(b"\n"), buffered.rfind(b"\r")) + 1
                    if end:
                        self.pending += buffered[:end]
                        del buffered[:end]
                    self.partial[is_stderr] = (buffered, since)
                    if is_stderr:
                        self._keep_tail(chunk)
                self.arrived.set()
        finally:
            with self.lock:
                buffered, _ = self.partial.pop(is_stderr, (bytearray(), 0.0))
                self.pending += buffered
            stream.close()
            self.arrived.set()

    def _keep_tail(self, chunk: bytes) -> None:
        self.stderr_tail.append(chunk)
        self.stderr_tail_size += len(chunk)
        while self.stderr_tail_size - len(self.stderr_tail[0]) >= STDERR_TAIL_BYTES:
            self.stderr_tail_size -= len(self.stderr_tail.popleft())

    def take(self) -> bytes:
        with self.lock:
            now = time.monotonic()
            for buffered, since in self.partial.values():
                if buffered and now - since >= self.PARTIAL_LINE_S:
                    self.pending += buffered
                    buffered.clear()
            data = bytes(self.pending)
            self.pending.clear()
            if self.owns_event:
                self.arrived.clear()
            return data

    def tail(self) -> str:
        with self.lock:
            text = b"".join(self.stderr_tail)[-STDERR_TAIL_BYTES:]
        return text.decode(errors="replace")


class LogStream:
    """One run file that grows from an Output (a process's log, or mpirun's)."""

    def __init__(self, name: str, arrived: threading.Event) -> None:
        self.name = name
        self.output = Output(arrived)
        self.offset = 0
        self.pumps: list[threading.Thread] = []

    def read(self, stream: IO[bytes], is_stderr: bool) -> None:
        pump = threading.Thread(
            target=self.output.pump, args=(stream, is_stderr), name=f"pump {self.name}"
        )
        pump.daemon = True
        pump.start()
        self.pumps.append(pump)

    def reading(self) -> bool:
        return any(pump.is_alive() for pump in self.pumps)


class RunProcess:
    """One of the run's processes: its log, and how it ended."""

    def __init__(self, plan: ProcessPlan, log: LogStream) -> None:
        self.index = plan.index
        self.role = plan.role
        self.waited = plan.waited
        self.environment = plan.environment
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None
        self.status_file: Path | None = None  # MPI ranks: "<exit code> <unix time>"
        self.code: int | None = None
        self.ended_at = 0.0
        self.stopped = False  # the supervisor stopped it: its exit code says nothing
        # MPI ranks: the supervisor's own ends of the rank's FIFOs, which keep them from
        # reading as ended before the rank opens them; closed once the rank has ended.
        self.fifo_writers: list[int] = []

    @property
    def name(self) -> str:
        return f"process {self.index} ({self.role})"

    def poll(self) -> int | None:
        """The exit code once it has ended (negative: killed by that signal), else None."""
        if self.code is not None:
            return self.code
        if self.popen is not None:
            code = self.popen.poll()
            if code is not None:
                self.code, self.ended_at = code, time.time()
        elif self.status_file is not None:
            with contextlib.suppress(FileNotFoundError, ValueError):
                code_text, at = self.status_file.read_text().split()
                self.code, self.ended_at = int(code_text), float(at)
                self.close_fifo_writers()
        return self.code

    def close_fifo_writers(self) -> None:
        writers, self.fifo_writers = self.fifo_writers, []
        for fd in writers:
            os.close(fd)

    def describe_exit(self) -> str:
        code = self.code
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return f"was killed by signal {-code} ({signal.Signals(-code).name})"
            return f"was killed by signal {-code}"
        return f"exited with code {code}"


class Processes:
    """Every process of one run; see the module docstring."""

    def __init__(
        self,
        plan: LaunchPlan,
        command: list[str],
        cwd: Path,
        environment: dict[str, str],
        rank_dir: Path,
        log_name: Callable[[int], str],
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.plan = plan
        # Run in each child before it starts (die_with_parent on a cluster's node).
        self.preexec = preexec
        self.command = command
        self.cwd = cwd
        self.environment = environment
        self.rank_dir = rank_dir
        self.arrived = threading.Event()
        self.all = [
            RunProcess(p, LogStream(log_name(p.index), self.arrived)) for p in plan.processes
        ]
        self.launcher: LogStream | None = None
        self.main: subprocess.Popen[bytes] | None = None  # the first process, or mpirun
        self.groups: list[int] = []

    @property
    def streams(self) -> list[LogStream]:
        logs = [process.log for process in self.all]
        return logs if self.launcher is None else [*logs, self.launcher]

    def start(self) -> None:
        if self.plan.mpirun is not None:
            self._start_mpirun(self.plan.mpirun)
            return
        for process in self.all:
            env = dict(self.environment)
            env.update(process.environment)
            alone = len(self.all) == 1
            popen = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                # Alone, its own session and group: one signal stops all it started. Several
                # share the first one's group, in the supervisor's session (a process cannot
                # join a group of another session).
                start_new_session=alone,
                process_group=None if alone else (self.main.pid if self.main else 0),
                preexec_fn=self.preexec,
            )
            process.popen = popen
            if self.main is None:
                self.main = popen
                self.groups.append(popen.pid)
            assert popen.stdout is not None and popen.stderr is not None
            process.log.read(popen.stdout, False)
            process.log.read(popen.stderr, True)

    def _start_mpirun(self, mpirun: list[str]) -> None:
        self.rank_dir.mkdir(parents=True, exist_ok=True)
        for process in self.all:
            for suffix, is_stderr in (("out", False), ("err", True)):
                path = self.rank_dir / f"{process.index}.{suffix}"
                os.mkfifo(path, 0o600)
                reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
                process.fifo_writers.append(os.open(path, os.O_WRONLY))
                os.set_blocking(reader, True)
                process.log.read(os.fdopen(reader, "rb", buffering=0), is_stderr)
            process.status_file = self.rank_dir / f"{process.index}.status"
        self.launcher = LogStream(LAUNCHER_LOG, self.arrived)
        self.main = subprocess.Popen(
            mpirun,
            cwd=self.cwd,
            env=self.environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=self.preexec,
        )
        self.groups.append(self.main.pid)
        assert self.main.stdout is not None and self.main.stderr is not None
        self.launcher.read(self.main.stdout, False)
        self.launcher.read(self.main.stderr, True)

    def note_rank_groups(self) -> bool:
        """Record the process groups of ranks that have started; True when there are new ones."""
        if self.plan.mpirun is None or len(self.groups) > len(self.all):
            return False
        found = False
        for process in self.all:
            path = self.rank_dir / f"{process.index}.pgid"
            with contextlib.suppress(FileNotFoundError, ValueError):
                pgid = int(path.read_text())
                if pgid not in self.groups:
                    self.groups.append(pgid)
                    found = True
        return found

    def launcher_code(self) -> int | None:
        """mpirun's exit code once it has exited (None when there is no mpirun)."""
        if self.plan.mpirun is None or self.main is None:
            return None
        code = self.main.poll()
        if code is not None:
            self._close_fifo_writers()
        return code

    def poll_ended(self) -> list[RunProcess]:
        """The processes that ended since the last call."""
        self.launcher_code()
        return [p for p in self.all if p.code is None and p.poll() is not None]

    def running(self) -> list[RunProcess]:
        return [p for p in self.all if p.poll() is None]

    def reading(self) -> bool:
        """Whether some output pipe is still open."""
        return any(stream.reading() for stream in self.streams)

    def pending(self) -> bool:
        """Whether some output waits to be shipped."""
        return any(stream.output.pending for stream in self.streams)

    def signal_all(self, signum: int = signal.SIGTERM) -> None:
        """Send ``signum`` to every process group of the run, at once."""
        self.note_rank_groups()
        for pgid in self.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signum)

    def terminate(self, processes: Iterable[RunProcess]) -> None:
        """SIGTERM some processes (servers no longer needed); their exit codes then count for
        nothing."""
        for process in processes:
            process.stopped = True
            if process.popen is not None and process.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.popen.send_signal(signal.SIGTERM)

    def stop(self, grace: float, cut_short: Callable[[], bool] | None = None) -> None:
        """Stop every process still running (SIGTERM, SIGKILL after ``grace`` seconds, or as
        soon as ``cut_short`` says so), then let the pumps read what they wrote, for a
        moment."""
        self.note_rank_groups()
        stop_process_groups(self.groups, grace, reap=self._reap, cut_short=cut_short)
        for process in self.all:
            if process.popen is not None:
                process.popen.wait()
        if self.main is not None:
            self.main.wait()
        self._close_fifo_writers()
        deadline = time.monotonic() + 2.0
        while self.reading() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _reap(self) -> None:
        for process in self.all:
            if process.popen is not None:
                process.popen.poll()
        if self.main is not None:
            self.main.poll()

    def _close_fifo_writers(self) -> None:
        for process in self.all:
            process.close_fifo_writers()


def die_with_parent() -> None:
    """In a child before it runs: SIGKILL when the thread that started it ends, its process
    included (Linux's PR_SET_PDEATHSIG; elsewhere nothing). On a cluster's node the run's
    supervisor lives in the node's host, which Ray may kill at once: its processes must not
    go on unsupervised."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def stop_process_groups(
    pgids: list[int],
    grace: float,
    reap: Callable[[], object] | None = None,
    cut_short: Callable[[], bool] | None = None,
) -> None:
    """SIGTERM process groups, wait up to ``grace`` seconds for them to end, then SIGKILL
    what is left.

    ``reap`` collects group leaders that are our children: until then their zombies keep the
    groups alive in the kernel's eyes. ``cut_short`` is asked while waiting: when it says
    True (a second stop signal came), the rest of the grace is skipped.
    """
    alive = []
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
            alive.append(pgid)
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        if cut_short is not None and cut_short():
            break
        if reap is not None:
            reap()
        alive = [pgid for pgid in alive if group_exists(pgid)]
        if alive:
            time.sleep(0.05)
    for pgid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def stop_process_group(pgid: int, grace: float, reap: Callable[[], object] | None = None) -> None:
    """SIGTERM a process group, wait up to ``grace`` seconds, then SIGKILL it."""
    stop_process_groups([pgid], grace, reap)


def group_exists(pgid: int) -> bool:
    """Whether any process is in the process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
