"""The run supervisor: owns one submitted run from Preparing to its final state.

It runs in its own process, detached from whoever submitted the run (the local compute agent
forks it), and:

1. **Preparing**: checks that the job's packages are importable here and, for
   ``use_gpu=True``, that the machine has a GPU.
2. **Starting**: unpacks the snapshot into a working folder, resolves data references to local
   paths, writes the run context and opens the channel the script will talk through.
3. **Running**: starts the script in its own process group with ``PYTHONUNBUFFERED=1``;
   streams stdout and stderr live to ``user_logs/std_log.txt``; syncs ``./logs`` every few
   seconds; heartbeats; watches for a cancel request and for ``max_run_duration_seconds``.
4. **Finalizing**: uploads ``./outputs`` and the last of ``./logs``.
5. Ends **Completed** (exit code 0), **Failed** (with the exit code and the tail of stderr) or
   **Canceled** (SIGTERM to the process group, SIGKILL after a grace period).

Its own log goes to ``system_logs/supervisor.txt``. The processes it starts are recorded in
``<compute>/runs/<run id>/processes.json`` so the agent can stop them if the supervisor dies.

Example (what the agent does in the forked child)::

    exit_code = Supervisor(workspace, run_id, compute_dir).run()
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from modelyard.backend.records import (
    CANCEL_REQUESTED,
    CANCELED,
    COMPLETED,
    FAILED,
    FINALIZING,
    PREPARING,
    RUNNING,
    STARTING,
    TERMINAL_STATES,
)
from modelyard.errors import ModelyardError
from modelyard.offline import RUN_CONTEXT_ENV
from modelyard.runner import checks, data
from modelyard.runner.channel import ChannelServer
from modelyard.runner.job import JOB_FILE, JobSpec
from modelyard.runner.snapshot import restore_snapshot

if TYPE_CHECKING:
    from modelyard.backend.local import LocalBackend
    from modelyard.workspace import Workspace

STD_LOG = "user_logs/std_log.txt"
SUPERVISOR_LOG = "system_logs/supervisor.txt"
PROCESSES_FILE = "processes.json"

SHIP_INTERVAL_S = 0.1  # live log latency: output reaches the store within this
STATUS_INTERVAL_S = 0.5  # how soon a cancel request is noticed
HEARTBEAT_INTERVAL_S = 5.0
LOGS_SYNC_INTERVAL_S = 2.0
STDERR_TAIL_BYTES = 4096
DRAIN_TIMEOUT_S = 2.0  # after the script exits, how long its output pipes may stay open


def kill_grace_seconds() -> float:
    """Seconds between SIGTERM and SIGKILL when a run is stopped."""
    return float(os.environ.get("MODELYARD_KILL_GRACE_SECONDS", "10"))


class _Stopped(Exception):
    """The run ends early; carries its final status and error."""

    def __init__(self, status: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.error = error


class _Output:
    """Bytes read from the script's stdout and stderr, waiting to be shipped.

    Both streams go to one log, so they are merged line by line: a line of one stream is never
    cut by a chunk of the other. A line still without its end (a prompt, a progress bar) is
    shipped anyway once it is ``PARTIAL_LINE_S`` old.
    """

    PARTIAL_LINE_S = 0.5

    def __init__(self) -> None:
        self.pending = bytearray()
        self.partial: dict[bool, tuple[bytearray, float]] = {}
        self.stderr_tail: collections.deque[bytes] = collections.deque()
        self.stderr_tail_size = 0
        self.lock = threading.Lock()
        self.arrived = threading.Event()

    def pump(self, stream: IO[bytes], is_stderr: bool) -> None:
        fd = stream.fileno()
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
        with self.lock:
            buffered, _ = self.partial.pop(is_stderr, (bytearray(), 0.0))
            self.pending += buffered
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
            self.arrived.clear()
            return data

    def tail(self) -> str:
        with self.lock:
            text = b"".join(self.stderr_tail)[-STDERR_TAIL_BYTES:]
        return text.decode(errors="replace")


class Supervisor:
    """Takes one run from Queued to its final state; see the module docstring."""

    def __init__(self, workspace: Workspace, run_id: str, compute_dir: Path) -> None:
        self.workspace = workspace
        self.backend: LocalBackend = workspace._backend  # type: ignore[assignment]
        self.run_id = run_id
        self.run_dir = compute_dir / "runs" / run_id
        self.workdir = self.run_dir / "wd"
        self.cache_dir = compute_dir / "cache"
        self.spec: JobSpec | None = None
        self.output = _Output()
        self.log_offset = 0
        self.system_log_offset = 0
        self.synced_logs: dict[str, tuple[int, int]] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.pumps: list[threading.Thread] = []
        self.status = ""

    # -- bookkeeping ---------------------------------------------------------------------

    def say(self, message: str) -> None:
        """One line of the supervisor's own log."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        line = f"{stamp}Z {message}\n".encode()
        try:
            self.backend.append_run_file(self.run_id, SUPERVISOR_LOG, self.system_log_offset, line)
            self.system_log_offset += len(line)
        except ModelyardError:
            print(line.decode(), end="", file=sys.stderr)

    def set_status(self, status: str, error: dict[str, Any] | None = None) -> None:
        record = self.backend.update_run_status(self.run_id, status, error=error)
        self.status = record.status
        self.say(f"status: {status}")
        if record.status == CANCEL_REQUESTED and status not in TERMINAL_STATES:
            raise _Stopped(CANCELED, {"message": "canceled by the user"})

    def check_status(self) -> None:
        """Raise _Stopped when someone asked to cancel the run."""
        status = self.backend.get_run(self.run_id).status
        if status == CANCEL_REQUESTED:
            raise _Stopped(CANCELED, {"message": "canceled by the user"})

    # -- the phases ----------------------------------------------------------------------

    def run(self) -> int:
        """Take the run to its final state; returns the supervisor's exit code."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._write_processes(None)
        final, error = COMPLETED, None
        try:
            self.prepare()
            self.start()
            exit_code = self.watch()
            if exit_code != 0:
                final = FAILED
                error = {
                    "message": f"the script exited with code {exit_code}",
                    "exit_code": exit_code,
                    "stderr_tail": self.output.tail(),
                }
        except _Stopped as stop:
            final, error = stop.status, stop.error
        except Exception as unexpected:
            final = FAILED
            error = {"message": f"the run supervisor failed: {unexpected}"}
            self.say(traceback.format_exc())
        finally:
            self.stop_processes()
        try:
            if self.process is not None:
                self.finalize()
        except Exception as unexpected:
            self.say(f"finalizing failed: {unexpected}\n{traceback.format_exc()}")
            if final == COMPLETED:
                final, error = FAILED, {"message": f"finalizing failed: {unexpected}"}
        if error is not None:
            self.say(f"error: {error['message']}")
        self.backend.update_run_status(self.run_id, final, error=error)
        self.say(f"status: {final}")
        return 0

    def prepare(self) -> None:
        self.set_status(PREPARING)
        spec = self.spec = JobSpec.from_json(
            self.backend.read_run_file(self.run_id, JOB_FILE).decode()
        )
        problems = checks.problems_with(spec)
        if problems:
            raise _Stopped(
                FAILED,
                {
                    "message": "the run needs packages that the Python running modelyard "
                    f"({sys.executable}) lacks: {', '.join(problems)}. Install them there "
                    "(pip install ...), or remove them from the run's configuration",
                    "missing_packages": problems,
                },
            )
        if spec.use_gpu and not checks.visible_gpus():
            raise _Stopped(
                FAILED,
                {
                    "message": "use_gpu=True, but this machine has no GPU (nvidia-smi lists "
                    "none); submit with use_gpu=False or to a compute target with GPUs"
                },
            )
        self.say(f"prepared: Python {sys.version.split()[0]} at {sys.executable}")

    def start(self) -> None:
        assert self.spec is not None
        spec = self.spec
        self.set_status(STARTING)
        if spec.snapshot_id is not None:
            restore_snapshot(self.backend.files, spec.snapshot_id, self.workdir)
        else:
            self.workdir.mkdir(parents=True, exist_ok=True)
        paths = data.resolve(self.backend, spec.data_references(), self.workdir, self.cache_dir)
        env = dict(os.environ)
        env.update(spec.environment_variables)
        env["PYTHONUNBUFFERED"] = "1"
        for name, path in paths.items():
            env[data.env_name(name)] = path
            self.say(f"data reference {name}: {path}")
        if spec.use_gpu:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(checks.visible_gpus())
        env.update(self._open_channel())
        arguments = []
        for argument in spec.arguments:
            if argument.data_reference is not None:
                local = paths[argument.data_reference["data_reference_name"]]
                arguments.append(f"{argument.prefix}{local}{argument.suffix}")
            else:
                arguments.append(_expand_references(argument.value or "", paths))
        command = [sys.executable, spec.script, *arguments]
        self.say(f"command: {command}")
        self.set_status(RUNNING)
        self.process = subprocess.Popen(
            command,
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: one signal stops all it started
        )
        self._write_processes(self.process.pid)
        for stream, is_stderr in ((self.process.stdout, False), (self.process.stderr, True)):
            pump = threading.Thread(target=self.output.pump, args=(stream, is_stderr), daemon=True)
            pump.start()
            self.pumps.append(pump)

    def _open_channel(self) -> dict[str, str]:
        # Unix socket paths are limited to ~100 bytes: keep it in a short temporary folder.
        folder = Path(tempfile.mkdtemp(prefix="modelyard-"))
        socket_path = str(folder / "s")
        self.channel = ChannelServer(self.backend, socket_path)
        self.channel.start()
        context = {
            "run_id": self.run_id,
            "experiment_name": self.backend.get_run(self.run_id).experiment_name,
            "workspace_name": self.workspace.name,
            "workspace_id": self.workspace._id,
            "socket": socket_path,
        }
        context_file = self.run_dir / "context.json"
        context_file.write_text(json.dumps(context))
        return {RUN_CONTEXT_ENV: str(context_file)}

    def watch(self) -> int:
        """Ship output and logs until the script exits; returns its exit code."""
        assert self.process is not None and self.spec is not None
        started = time.monotonic()
        limit = self.spec.max_run_duration_seconds
        next_status = next_heartbeat = next_logs = 0.0
        exited_at: float | None = None
        while True:
            self.output.arrived.wait(SHIP_INTERVAL_S)
            self.ship_output()
            now = time.monotonic()
            code = self.process.poll()
            if code is not None:
                exited_at = exited_at or now
                pumps_done = not any(pump.is_alive() for pump in self.pumps)
                if not self.output.pending and (pumps_done or now - exited_at > DRAIN_TIMEOUT_S):
                    return code
            if now >= next_logs:
                self.sync_logs()
                next_logs = now + LOGS_SYNC_INTERVAL_S
            if now >= next_status:
                self.check_status()
                next_status = now + STATUS_INTERVAL_S
            if now >= next_heartbeat:
                self.backend.heartbeat_run(self.run_id)
                next_heartbeat = now + HEARTBEAT_INTERVAL_S
            if limit is not None and now - started > limit and code is None:
                raise _Stopped(
                    FAILED,
                    {
                        "message": f"the run exceeded max_run_duration_seconds ({limit:g} s) "
                        "and was stopped",
                        "stderr_tail": self.output.tail(),
                    },
                )
            time.sleep(0.01)  # at most 100 shipments a second under a flood of output

    def ship_output(self) -> None:
        chunk = self.output.take()
        if chunk:
            self.backend.append_run_file(self.run_id, STD_LOG, self.log_offset, chunk)
            self.log_offset += len(chunk)

    def sync_logs(self) -> None:
        """Upload the files of ``./logs`` that are new or changed since the last sync."""
        self._upload_changed("logs")

    def _upload_changed(self, folder_name: str) -> None:
        folder = self.workdir / folder_name
        if not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.is_symlink():
                continue
            name = f"{folder_name}/{path.relative_to(folder).as_posix()}"
            stat = path.stat()
            signature = (stat.st_size, stat.st_mtime_ns)
            if self.synced_logs.get(name) == signature:
                continue
            self.backend.upload_run_file(self.run_id, name, path)
            self.synced_logs[name] = signature

    def finalize(self) -> None:
        self.ship_output()
        if self.status not in TERMINAL_STATES:
            with contextlib.suppress(_Stopped):
                self.set_status(FINALIZING)
        self.sync_logs()
        self._upload_changed("outputs")
        if hasattr(self, "channel"):
            self.channel.stop()

    def stop_processes(self) -> None:
        """SIGTERM the script's process group, then SIGKILL what is left after the grace."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            self.say(
                f"stopping the run's processes (SIGTERM, SIGKILL after {kill_grace_seconds():g} s)"
            )
        stop_process_group(process.pid, kill_grace_seconds(), reap=process.poll)
        process.wait()
        # Output the processes wrote while they stopped.
        time.sleep(0.05)
        self.ship_output()

    def _write_processes(self, pgid: int | None) -> None:
        path = self.run_dir / PROCESSES_FILE
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps({"supervisor_pid": os.getpid(), "pgid": pgid}))
        os.replace(temp, path)


def _expand_references(value: str, paths: dict[str, str]) -> str:
    """Replace ``$MODELYARD_DATAREFERENCE_<name>`` (what ``str(ds.as_mount())`` gives) in a
    plain argument with the local path."""
    for name, path in paths.items():
        value = value.replace("$" + data.env_name(name), path)
    return value


def stop_process_group(pgid: int, grace: float, reap: Callable[[], object] | None = None) -> None:
    """SIGTERM a process group, wait up to ``grace`` seconds, then SIGKILL it.

    ``reap`` collects the group leader when it is our child: until then its zombie keeps the
    group alive in the kernel's eyes.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
