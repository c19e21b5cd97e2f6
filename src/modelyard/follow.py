"""Waiting for a run, and streaming its output while it runs (``run.wait_for_completion``).

Example::

    details = wait_for_completion(run, show_output=True)
"""

from __future__ import annotations

import codecs
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from modelyard.backend.records import COMPLETED, QUEUED, TERMINAL_STATES
from modelyard.compute import compute_for
from modelyard.compute.ray.targets import ADMISSION_LOG
from modelyard.errors import NotFoundError, RunFailedError
from modelyard.hints import say
from modelyard.runner.envbuild.errors import BUILD_LOG
from modelyard.runner.launchers import (
    DISTRIBUTED_PROPERTY,
    PROCESS_COUNT_PROPERTY,
    process_log_name,
)
from modelyard.runner.local_compute import COMPUTE_PROPERTY, LOCAL

if TYPE_CHECKING:
    from modelyard.run import Run

STD_LOG = "user_logs/std_log.txt"
POLL_INTERVAL_S = 0.1
FAILURE_TAIL_LINES = 20


class LogFollower:
    """Prints a growing run file from an offset, decoding UTF-8 across chunk borders.

    Example::

        follower = LogFollower(run, "user_logs/std_log.txt", sys.stdout)
        follower.print_new()      # everything written so far; call again for what follows
    """

    def __init__(self, run: Run, name: str, out: TextIO) -> None:
        self.run = run
        self.name = name
        self.out = out
        self.offset = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def print_new(self) -> bool:
        """Print what was written since the last call; False while the file does not exist."""
        while True:
            try:
                chunk = self.run._backend.read_run_file(self.run.id, self.name, self.offset)
            except NotFoundError:
                return False
            if not chunk:
                return True
            self.offset += len(chunk)
            self.out.write(self.decoder.decode(chunk))
            self.out.flush()


def output_log(run: Run) -> tuple[str, int]:
    """The run file holding the run's output, and its number of processes: ``std_log.txt``,
    or for a distributed run process 0's ``std_log_process_00.txt``.

    Example::

        output_log(run)      # ('user_logs/std_log_process_00.txt', 4)
    """
    properties = run._backend.get_run_details(run.id).properties
    if DISTRIBUTED_PROPERTY not in properties:
        return STD_LOG, 1
    return process_log_name(0), int(properties.get(PROCESS_COUNT_PROPERTY, "1"))


def log_tail(run: Run, lines: int = FAILURE_TAIL_LINES, name: str | None = None) -> str:
    """The last lines of the run's output, or of its log ``name`` (empty when there are none)."""
    name = name or output_log(run)[0]
    try:
        files = run._backend.list_run_files(run.id, name)
        if not files:
            return ""
        size = files[0].size
        data = run._backend.read_run_file(run.id, name, max(0, size - 64 * 1024), 64 * 1024)
    except NotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def failure_output(run: Run, error: dict[str, Any]) -> str:
    """The last lines of a failed run's output under a heading, or "" when it wrote none;
    ``error`` is its details' ``error``, whose ``log`` names the log of the process that failed
    in a distributed run.

    Example::

        failure_output(run, run.get_details().get("error") or {})
        # 'Last lines of its output:\nTraceback (most recent call last): ...'
    """
    tail = log_tail(run, name=error.get("log"))
    return f"Last lines of its output:\n{tail}" if tail else ""


def _where_the_others_are(run: Run, count: int) -> str:
    last = process_log_name(count - 1)
    others = process_log_name(1) if count == 2 else f"{process_log_name(1)} to {last}"
    return (
        f"Streaming process 0 of {count} ({process_log_name(0)}). The other processes' output "
        f"is in {others}: {say('run.download_file(name)')}.\n"
    )


def wait_for_completion(
    run: Run,
    show_output: bool = False,
    wait_post_processing: bool = False,
    raise_on_error: bool = True,
    out: TextIO | None = None,
) -> dict[str, Any]:
    """Block until the run ends; see ``Run.wait_for_completion``."""
    out = out or sys.stdout
    log_name, process_count = output_log(run) if show_output else (STD_LOG, 1)
    target = run._backend.get_run_details(run.id).properties.get(COMPUTE_PROPERTY, LOCAL)
    followers = []
    if show_output:
        # On a cluster, what its admission does first (waiting for nodes, where the run
        # goes); then the environment build's log: it ends before the script starts.
        if target != LOCAL:
            followers.append(LogFollower(run, ADMISSION_LOG, out))
        followers += [LogFollower(run, BUILD_LOG, out), LogFollower(run, log_name, out)]
    if run.get_status() == QUEUED and run.type == "script":
        # A queued run needs its compute target (the local agent may have gone idle meanwhile).
        compute_for(run.workspace, target).queued()
    if show_output:
        out.write(f"RunId: {run.id}\nStatus: {run.get_status()}\n\n")
        if process_count > 1:
            out.write(_where_the_others_are(run, process_count) + "\n")
    try:
        while True:
            status = run._backend.get_run(run.id).status
            for follower in followers:
                follower.print_new()
            if status in TERMINAL_STATES:
                for follower in followers:
                    follower.print_new()
                break
            time.sleep(POLL_INTERVAL_S)
    except KeyboardInterrupt:
        out.write(
            f"\nStopped waiting; run {run.id} goes on. Cancel it with {say('run.cancel()')}.\n"
        )
        raise
    details = run.get_details()
    if show_output:
        duration = details.get("durationSeconds")
        out.write(
            f"\nExecution summary\n=================\nRunId: {run.id}\nStatus: {status}\n"
            + (f"Duration: {duration:.1f} s\n" if duration is not None else "")
            + f"Files: {say('run.get_file_names()')}\n"
        )
        out.flush()
    if raise_on_error and status != COMPLETED:
        error = details.get("error") or {}
        message = error.get("message", status)
        output = failure_output(run, error)
        raise RunFailedError(
            f"run {run.id} ended {status}: {message}" + (f"\n{output}" if output else ""),
            exit_code=error.get("exit_code"),
            details=details,
        )
    return details
