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
from modelyard.errors import NotFoundError, RunFailedError

if TYPE_CHECKING:
    from modelyard.run import Run

STD_LOG = "user_logs/std_log.txt"
POLL_INTERVAL_S = 0.1
FAILURE_TAIL_LINES = 20


class _LogFollower:
    """Prints a growing run file from an offset, decoding UTF-8 across chunk borders."""

    def __init__(self, run: Run, name: str, out: TextIO) -> None:
        self.run = run
        self.name = name
        self.out = out
        self.offset = 0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def print_new(self) -> None:
        while True:
            try:
                chunk = self.run._backend.read_run_file(self.run.id, self.name, self.offset)
            except NotFoundError:
                return
            if not chunk:
                return
            self.offset += len(chunk)
            self.out.write(self.decoder.decode(chunk))
            self.out.flush()


def log_tail(run: Run, lines: int = FAILURE_TAIL_LINES) -> str:
    """The last lines of the run's output (empty when it wrote none)."""
    try:
        files = run._backend.list_run_files(run.id, STD_LOG)
        if not files:
            return ""
        size = files[0].size
        data = run._backend.read_run_file(run.id, STD_LOG, max(0, size - 64 * 1024), 64 * 1024)
    except NotFoundError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def wait_for_completion(
    run: Run,
    show_output: bool = False,
    wait_post_processing: bool = False,
    raise_on_error: bool = True,
    out: TextIO | None = None,
) -> dict[str, Any]:
    """Block until the run ends; see ``Run.wait_for_completion``."""
    out = out or sys.stdout
    follower = _LogFollower(run, STD_LOG, out) if show_output else None
    if run.get_status() == QUEUED and run.type == "script":
        # A queued run needs the agent; start it again if it went away meanwhile.
        from modelyard.runner.agent import ensure_agent

        ensure_agent(run.workspace)
    if show_output:
        out.write(f"RunId: {run.id}\nStatus: {run.get_status()}\n\n")
    try:
        while True:
            status = run._backend.get_run(run.id).status
            if follower is not None:
                follower.print_new()
            if status in TERMINAL_STATES:
                if follower is not None:
                    follower.print_new()
                break
            time.sleep(POLL_INTERVAL_S)
    except KeyboardInterrupt:
        out.write(
            f"\nStopped waiting; run {run.id} goes on. Cancel it with run.cancel() or "
            f"`modelyard run cancel {run.id}`.\n"
        )
        raise
    details = run.get_details()
    if show_output:
        duration = details.get("durationSeconds")
        out.write(
            f"\nExecution summary\n=================\nRunId: {run.id}\nStatus: {status}\n"
            + (f"Duration: {duration:.1f} s\n" if duration is not None else "")
            + f"Files: run.get_file_names() or `modelyard run download {run.id}`\n"
        )
        out.flush()
    if raise_on_error and status != COMPLETED:
        error = details.get("error") or {}
        message = error.get("message", status)
        tail = log_tail(run)
        raise RunFailedError(
            f"run {run.id} ended {status}: {message}"
            + (f"\nLast lines of its output:\n{tail}" if tail else ""),
            exit_code=error.get("exit_code"),
            details=details,
        )
    return details
