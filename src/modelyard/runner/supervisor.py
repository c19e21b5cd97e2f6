"""The run supervisor: owns one submitted run from Preparing to its final state.

It runs in its own process, detached from whoever submitted the run (the local compute agent
forks it), and:

1. **Preparing**: picks the Python the run needs: modelyard's own when it has every package
   the job asks for, else an environment built once and cached by content
   (``runner/envbuild``), its build log streamed to ``system_logs/``; and, for
   ``use_gpu=True``, checks that the machine has a GPU.
2. **Starting**: unpacks the snapshot into a working folder, resolves data references to local
   paths, writes the run context and opens the channel the script will talk through.
3. **Running**: starts the script in its own process group with ``PYTHONUNBUFFERED=1`` and
   the run's environment, never the client's (``run_environment.py``);
   streams stdout and stderr live to ``user_logs/std_log.txt``; syncs ``./logs`` every few
   seconds; heartbeats; watches for a cancel request and for ``max_run_duration_seconds``.
   A distributed run starts every process its launcher plans (``launchers.py``: mpirun's
   ranks, TensorFlow's chief, workers and parameter servers, PyTorch's ranks), each with its
   own log ``user_logs/std_log_process_NN.txt``. When one fails, the others are stopped and
   the run fails naming it; when the processes the run waits for have ended, the servers
   still running (parameter servers) are stopped.
4. **Finalizing**: uploads ``./outputs`` and the last of ``./logs``.
5. Ends **Completed** (exit code 0), **Failed** (with the exit code and the tail of stderr) or
   **Canceled** (SIGTERM to the process group, SIGKILL after a grace period).

**Signals.** A first SIGTERM or SIGINT to the supervisor means "finish cleanly": at its next
safe point (the watch loop, the environment build's poll, between two phases) it stops the
run's processes the usual way (SIGTERM, SIGKILL after the grace) or the environment build,
uploads what there is (output, ``./logs``, ``./outputs``) and records the run **Failed**
("the run's supervisor was asked to stop (SIGTERM) ..."): the run did not do its work, and
nobody asked for that but whoever stopped the machine. When a cancel request is pending at
that moment the run ends **Canceled**, as the user asked. A signal that comes once the script
has ended changes nothing of its outcome. A second SIGTERM or SIGINT means "now": the run's
process groups get SIGKILL without waiting for the grace, nothing more is uploaded (a run
that would have ended Completed ends Failed, since its outputs are missing), and the final
state is still recorded. The handlers only note the signal; the work is done at the safe
points.

Its own log goes to ``system_logs/supervisor.txt``. The process groups it starts are recorded
in ``<compute>/runs/<run id>/processes.json`` so the agent can stop them if the supervisor
dies.

It knows the workspace only through the Backend contract, so the same code runs on a node that
reaches the workspace over a network.

Example (what the agent does in the forked child)::

    exit_code = Supervisor(backend, run_id, compute_dir).run()
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from modelyard.backend.base import Backend
from modelyard.backend.channel_wire import RUN_CONTEXT_ENV
from modelyard.backend.records import (
    CANCEL_REQUESTED,
    CANCELED,
    COMPLETED,
    FAILED,
    FINALIZING,
    NOT_RESPONDING,
    PREPARING,
    RUNNING,
    STARTING,
    TERMINAL_STATES,
    cancellation,
)
from modelyard.backend.snapshot import restore_snapshot
from modelyard.errors import ConflictError, ModelyardError
from modelyard.runner import checks, data, envbuild, launchers
from modelyard.runner.channel import ChannelServer
from modelyard.runner.job import JOB_FILE, JobSpec
from modelyard.runner.log_shipping import LogShipper
from modelyard.runner.logs_sync import LogsFolderSync
from modelyard.runner.process_identity import start_time
from modelyard.runner.processes import Output, Processes, RunProcess, die_with_parent
from modelyard.runner.run_environment import run_process_environment
from modelyard.runner.run_scope import RunScope
from modelyard.store.private import write_private_file

STD_LOG = "user_logs/std_log.txt"
SUPERVISOR_LOG = "system_logs/supervisor.txt"
PROCESSES_FILE = "processes.json"

SHIP_INTERVAL_S = 0.1  # live log latency: output reaches the store within this
STATUS_INTERVAL_S = 0.5  # how soon a cancel request is noticed
HEARTBEAT_INTERVAL_S = 5.0
LOGS_SYNC_INTERVAL_S = 2.0
DRAIN_TIMEOUT_S = 2.0  # after the script exits, how long its output pipes may stay open
RANK_DIR = "ranks"  # below the run's folder: MPI's hostfile, the ranks' pipes and statuses
# The signals that stop a supervisor: the first cleanly, the second at once.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def kill_grace_seconds() -> float:
    """Seconds between SIGTERM and SIGKILL when a run is stopped."""
    return float(os.environ.get("MODELYARD_KILL_GRACE_SECONDS", "10"))


@dataclass(frozen=True)
class NodeRole:
    """A supervisor's part of a run on a cluster: the nodes' layout (this node's rank
    among them), where to write this node's outcome, and for MPI across nodes the command
    mpirun starts its remote daemons with."""

    layout: launchers.NodeLayout
    result_file: Path
    rsh_agent: list[str] | None = None


class _Stopped(Exception):
    """The run ends early; carries its final status and error."""

    def __init__(self, status: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.error = error


class Supervisor:
    """Takes one run from Queued to its final state; see the module docstring."""

    def __init__(
        self,
        backend: Backend,
        run_id: str,
        compute_dir: Path,
        worker_id: str | None,
        lease_seconds: float,
        on_queue_change: Callable[[], object] | None = None,
        node: NodeRole | None = None,
    ) -> None:
        self.backend = backend
        # On a cluster: this node's part of the run (None: the whole run, on this machine).
        self.node = node
        # How to tell the compute that the script queued or canceled a child run.
        self.on_queue_change = on_queue_change
        self.run_id = run_id
        # The run was claimed for worker_id; the heartbeat renews that lease (renew_lease). On
        # a cluster the admission holds the lease (worker_id None): it outlives any one node.
        self.lease = _Lease(backend, run_id, worker_id, lease_seconds)
        self.run_dir = compute_dir / "runs" / run_id
        self.workdir = self.run_dir / "wd"
        self.cache_dir = compute_dir / "cache"
        self.spec: JobSpec | None = None
        self.output = Output()  # process 0's, once started
        self.system_log_offset = 0
        # The processes' output, stored in the background, and ./logs, synced by what changed.
        self.shipper = LogShipper(backend, run_id)
        self.logs_folder = LogsFolderSync(backend, run_id, self.workdir, "logs", self.say)
        self.processes: Processes | None = None
        self.process: subprocess.Popen[bytes] | None = None  # the first process, or mpirun
        self.status = ""
        # The interpreter the script runs with; Preparing may choose another one.
        self.python = sys.executable
        # Names of the stop signals received, in order (see the module docstring).
        self.signals: list[str] = []
        self.signal_acted_on = False
        self.uploads_skipped = False
        self.channel_folder: Path | None = None  # the script's socket's, made by _open_channel

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

    @property
    def leads(self) -> bool:
        """Whether this supervisor records the run's progress: always on one machine; on a
        cluster, the first node's."""
        return self.node is None or self.node.layout.rank == 0

    def set_status(self, status: str, error: dict[str, Any] | None = None) -> None:
        if not self.leads:
            self.check_status()
            return
        record = self.backend.update_run_status(self.run_id, status, error=error)
        self.status = record.status
        self.say(f"status: {status}")
        if record.status == CANCEL_REQUESTED and status not in TERMINAL_STATES:
            raise _Stopped(CANCELED, cancellation(record.error))

    def check_status(self) -> None:
        """Raise _Stopped when someone asked to cancel the run."""
        record = self.backend.get_run(self.run_id)
        if record.status == CANCEL_REQUESTED:
            raise _Stopped(CANCELED, cancellation(record.error))

    # -- signals -------------------------------------------------------------------------

    def note_signal(self, signum: int, _frame: FrameType | None) -> None:
        """The SIGTERM/SIGINT handler: only notes the signal, acted on at a safe point."""
        self.signals.append(signal.Signals(signum).name)

    @property
    def hurried(self) -> bool:
        """Whether a second stop signal came: stop at once, skip the grace and uploads."""
        return len(self.signals) >= 2

    def check_signal(self) -> None:
        """At a safe point: raise _Stopped (once) when a stop signal came."""
        if not self.signals or self.signal_acted_on:
            return
        self.signal_acted_on = True
        name = self.signals[0]
        self.say(f"asked to stop ({name}): stopping the run")
        with contextlib.suppress(ModelyardError):
            record = self.backend.get_run(self.run_id)
            if record.status == CANCEL_REQUESTED:
                raise _Stopped(CANCELED, cancellation(record.error))
        raise _Stopped(
            FAILED,
            {
                "message": f"the run's supervisor was asked to stop ({name}) and stopped the "
                "run before it ended; submit it again to run it",
                "signal": name,
            },
        )

    # -- the phases ----------------------------------------------------------------------

    def run(self) -> int:
        """Take the run to its final state; returns the supervisor's exit code."""
        with _catching_stop_signals(self.note_signal):
            return self._run()

    def _run(self) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._write_processes()
        self.lease.start()
        final, error = COMPLETED, None
        try:
            self.prepare()
            self.start()
            exit_code = self.watch()
            if exit_code == 0 and self.channel.scope.wish is not None:
                # The script ended its run itself (run.complete(), run.fail()): that state,
                # once its outputs are uploaded below.
                final, error = self.channel.scope.wish
                if final == FAILED and error is None:
                    error = {"message": "the script failed its run"}
            elif exit_code != 0:
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
            try:
                self.stop_processes()
            except Exception as unexpected:  # a log that could not be stored, say
                self.say(f"stopping the run's processes failed: {unexpected}")
                if final == COMPLETED:
                    final, error = FAILED, {"message": f"the run's output was lost: {unexpected}"}
        try:
            if self.process is not None:
                self.finalize()
        except Exception as unexpected:
            self.say(f"finalizing failed: {unexpected}\n{traceback.format_exc()}")
            if final == COMPLETED:
                final, error = FAILED, {"message": f"finalizing failed: {unexpected}"}
        if self.uploads_skipped and final == COMPLETED:
            final = FAILED
            error = {
                "message": f"the run's supervisor was asked to stop at once ({self.signals[1]}) "
                "before the run's ./outputs were uploaded",
                "signal": self.signals[1],
            }
        if error is not None:
            self.say(f"error: {error['message']}")
        self.close_channel()  # finalize does when the processes started; this when not
        self.lease.stop()
        if self.node is not None:
            # The admission combines every node's outcome into the run's final state.
            write_private_file(
                self.node.result_file, json.dumps({"status": final, "error": error}).encode()
            )
            self.say(f"this node's part ended: {final}")
            return 0
        try:
            self.backend.update_run_status(self.run_id, final, error=error)
        except ConflictError:
            # Ended meanwhile by someone else (say, as lost): that state stands.
            self.say(f"the run had already ended ({self.backend.get_run(self.run_id).status})")
            return 0
        self.say(f"status: {final}")
        return 0

    def prepare(self) -> None:
        started = time.perf_counter()
        self.set_status(PREPARING)
        with self.backend.open_run_file(self.run_id, JOB_FILE) as job:
            spec = self.spec = JobSpec.from_json(job.read().decode())  # whole, however long
        if spec.use_gpu and not checks.visible_gpus():
            raise _Stopped(
                FAILED,
                {
                    "message": "use_gpu=True, but this machine has no GPU (nvidia-smi lists "
                    "none); submit with use_gpu=False or to a compute target with GPUs"
                },
            )
        self.check_signal()
        try:
            prepared = envbuild.prepare_environment(
                spec,
                log=envbuild.RunFileLog(self.backend, self.run_id),
                poll=_PreparingPoll(self.backend, self.run_id, self.lease, self.check_signal),
                on_process=lambda pgid: _record_build_process(self.run_dir, pgid),
                run_id=self.run_id,
            )
        except envbuild.EnvironmentBuildError as error:
            raise _Stopped(FAILED, error.details()) from None
        except _Stopped as stop:
            # The build's processes have ended by now (the builder stops its step's group).
            reason = stop.error["message"] if stop.error else stop.status
            self.say(f"the environment build was stopped: {reason}")
            raise
        self.python = prepared.python
        spec.environment_variables.update(prepared.variables)
        # Held until this process ends: prune leaves the environment alone while it is used.
        self.environment_lease = prepared.lease
        self.say(f"prepared in {time.perf_counter() - started:.3f} s: {prepared.summary}")

    def start(self) -> None:
        assert self.spec is not None
        spec = self.spec
        # Checked before Starting, so a run that cannot launch fails in Preparing.
        problem = launchers.missing_launcher(
            spec.distributed, run_process_environment(os.environ, spec.environment_variables)
        )
        if problem:
            raise _Stopped(FAILED, {"message": problem})
        self.check_signal()
        self.set_status(STARTING)
        if spec.snapshot_id is not None:
            restore_snapshot(self.backend, spec.snapshot_id, self.workdir)
        else:
            self.workdir.mkdir(parents=True, exist_ok=True)
        references = spec.data_references()
        paths = data.resolve(self.backend, references, self.workdir, self.cache_dir)
        data.record_inputs(self.backend, self.run_id, references)
        # What the run sets on top of the allowlisted part of the supervisor's environment
        # (run_environment.py; mpirun passes these on).
        run_env = dict(spec.environment_variables)
        run_env["PYTHONUNBUFFERED"] = "1"
        run_env.update(data.dataset_environment(self.run_id, references, paths))
        for name, path in paths.items():
            run_env[data.env_name(name)] = path
            self.say(f"data reference {name}: {path}")
        if spec.use_gpu:
            run_env["CUDA_VISIBLE_DEVICES"] = ",".join(checks.visible_gpus())
        run_env.update(self._open_channel())
        env = run_process_environment(os.environ, run_env)
        arguments = []
        for argument in spec.arguments:
            if argument.data_reference is not None:
                local = paths[argument.data_reference["data_reference_name"]]
                arguments.append(f"{argument.prefix}{local}{argument.suffix}")
            else:
                arguments.append(_expand_references(argument.value or "", paths))
        command = spec.command_line(self.python, arguments)
        self.say(f"command: {command}")
        rank_dir = self.run_dir / RANK_DIR
        plan = launchers.plan_launch(
            spec.distributed,
            command,
            env,
            rank_dir,
            sorted(run_env),
            nodes=self.node.layout if self.node is not None else None,
            rsh_agent=self.node.rsh_agent if self.node is not None else None,
        )
        if plan.distributed:
            self.say(f"launch: {plan.summary}")
            if plan.mpirun is not None:
                self.say(f"mpirun: {plan.mpirun}")
        per_process = plan.distributed or (self.node is not None and self.node.layout.count > 1)
        log_name = launchers.process_log_name if per_process else lambda _: STD_LOG
        self.processes = Processes(
            plan,
            command,
            self.workdir,
            env,
            rank_dir,
            log_name,
            # On a cluster this supervisor lives in its node's host, which Ray may kill.
            preexec=die_with_parent if self.node is not None else None,
        )
        self.check_signal()
        self.set_status(RUNNING)
        try:
            self.processes.start()
        finally:
            self.process = self.processes.main
            self._write_processes()
        if self.processes.all:  # none: an MPI run's other node (its ranks come via mpirun)
            self.output = self.processes.all[0].log.output

    def _open_channel(self) -> dict[str, str]:
        # Unix socket paths are limited to ~100 bytes: keep it in a short temporary folder.
        folder = self.channel_folder = Path(tempfile.mkdtemp(prefix="modelyard-"))
        socket_path = str(folder / "s")
        assert self.spec is not None
        experiment_name = self.backend.get_run(self.run_id).experiment_name
        given = data.datastores_given(self.spec.data_references())
        scope = RunScope(self.backend, self.run_id, experiment_name, self.workdir, given)
        self.channel = ChannelServer(self.backend, socket_path, scope, self.on_queue_change)
        self.channel.start()
        workspace = self.backend.get_workspace()
        context = {
            "run_id": self.run_id,
            "experiment_name": experiment_name,
            "workspace_name": workspace.name,
            "workspace_id": workspace.id,
            "socket": socket_path,
            "workdir": str(self.workdir),
        }
        context_file = self.run_dir / "context.json"
        write_private_file(context_file, json.dumps(context).encode())
        return {RUN_CONTEXT_ENV: str(context_file)}

    def watch(self) -> int:
        """Ship output and logs until the run's processes end; returns the script's exit code.

        A distributed run returns 0 once the processes it waits for have ended well, or raises
        _Stopped naming the process that failed.
        """
        assert self.processes is not None and self.spec is not None
        processes = self.processes
        started = time.monotonic()
        limit = self.spec.max_run_duration_seconds
        next_status = next_logs = 0.0
        ended_at: float | None = None
        while True:
            processes.arrived.wait(SHIP_INTERVAL_S)
            processes.arrived.clear()
            self.ship_output()
            now = time.monotonic()
            if processes.note_rank_groups():
                self._write_processes()
            code = self._outcome(processes)
            if code is not None:
                ended_at = ended_at or now
                if not processes.pending() and (
                    not processes.reading() or now - ended_at > DRAIN_TIMEOUT_S
                ):
                    return code
            if now >= next_logs:
                self.sync_logs()
                next_logs = now + LOGS_SYNC_INTERVAL_S
            if code is None:  # a signal after the script ended changes nothing of it
                self.check_signal()
            if now >= next_status:
                self.check_status()
                next_status = now + STATUS_INTERVAL_S
            self.lease.check()
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

    def _outcome(self, processes: Processes) -> int | None:
        """None while the run goes on; else its exit code (raises _Stopped on a failure)."""
        ended = processes.poll_ended()
        if not processes.plan.distributed:
            return processes.all[0].code
        failed = [p for p in processes.all if p.code not in (None, 0) and not p.stopped]
        # A process that exited with a code of its own caused the failure more likely than one
        # killed by a signal (mpirun's SIGTERM to the other ranks, say).
        culprit = min(failed, key=lambda p: ((p.code or 0) < 0, p.ended_at), default=None)
        for process in ended:
            if process is not culprit:
                self.say(f"{process.name} {process.describe_exit()}")
        if culprit is not None:
            self._fail(processes, culprit)
        launcher_code = processes.launcher_code()
        if any(p.code is None for p in processes.all if p.waited):
            if launcher_code is not None:
                self._launcher_failed(processes, launcher_code)
            return None
        servers = [p for p in processes.running() if not p.stopped]
        if servers:
            self.say(
                f"stopping {', '.join(p.name for p in servers)}: the processes the run waits "
                "for have ended"
            )
            processes.terminate(servers)
        if processes.plan.mpirun is not None:
            if launcher_code is None:
                return None
            if launcher_code != 0:
                self._launcher_failed(processes, launcher_code)
        return 0

    def _fail(self, processes: Processes, culprit: RunProcess) -> None:
        """Stop every process at once, and fail the run naming the one that failed."""
        what = f"{culprit.name} {culprit.describe_exit()}"
        self.say(f"{what}; stopping the other processes")
        processes.signal_all()
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while culprit.log.reading() and time.monotonic() < deadline:
            time.sleep(0.01)  # the rest of its output, for the tail below
        raise _Stopped(
            FAILED,
            {
                "message": f"{what}; the run's other processes were stopped",
                "exit_code": culprit.code,
                "process": culprit.index,
                "role": culprit.role,
                "log": culprit.log.name,
                "stderr_tail": culprit.log.output.tail(),
            },
        )

    def _launcher_failed(self, processes: Processes, code: int) -> None:
        """mpirun ended before (or without) every rank ending well."""
        launcher = processes.launcher
        assert launcher is not None
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while launcher.reading() and time.monotonic() < deadline:
            time.sleep(0.01)
        missing = [p.name for p in processes.all if p.code is None]
        raise _Stopped(
            FAILED,
            {
                "message": f"mpirun exited with code {code}"
                + (f" before {', '.join(missing)} started or ended" if missing else "")
                + f"; see {launcher.name}",
                "exit_code": code,
                "log": launcher.name,
                "stderr_tail": launcher.output.tail(),
            },
        )

    def ship_output(self) -> None:
        """Hand what each process wrote since the last call to the log shipper, which
        stores it in the background (log_shipping.py)."""
        if self.processes is None:
            return
        for stream in self.processes.streams:
            chunk = stream.output.take()
            if chunk:
                self.shipper.append(stream.name, chunk)
                stream.offset += len(chunk)
        if self.process is None:
            # The processes failed to start: no finalize follows to flush what they wrote.
            self.shipper.flush()

    def sync_logs(self) -> None:
        """Store what changed in ``./logs`` since the last sync: grown files by their new
        bytes, new or rewritten ones whole (logs_sync.py)."""
        self.logs_folder.sync()

    def upload_outputs(self) -> None:
        """Upload the files of ``./outputs`` whole, once the script has ended, with the rules
        for links of logs_sync.py."""
        LogsFolderSync(
            self.backend, self.run_id, self.workdir, "outputs", self.say, appends=False
        ).sync()

    def finalize(self) -> None:
        try:
            self.ship_output()
            if self.status not in TERMINAL_STATES:
                with contextlib.suppress(_Stopped):
                    self.set_status(FINALIZING)
            if self.hurried:
                self.uploads_skipped = True
                self.say(f"asked again ({self.signals[1]}): ./logs and ./outputs are not uploaded")
            elif not self.leads:
                # Every node's ./outputs, as v1 uploads them (a name two nodes write: the last
                # upload wins); ./logs is synced by growth, from the first node only.
                self.upload_outputs()
            else:
                self.sync_logs()
                self.upload_outputs()
        finally:
            # Every byte of output is stored before the run's final state is recorded (or
            # its loss fails the run); the shipper's thread ends here.
            self.shipper.close()
        self.close_channel()

    def close_channel(self) -> None:
        """Stop the script's channel and remove its folder (idempotent)."""
        if hasattr(self, "channel"):
            self.channel.stop()
        if self.channel_folder is not None:
            shutil.rmtree(self.channel_folder, ignore_errors=True)
            self.channel_folder = None

    def stop_processes(self) -> None:
        """SIGTERM the run's process groups, then SIGKILL what is left after the grace."""
        processes = self.processes
        if processes is None:
            return
        mpirun_running = processes.plan.mpirun is not None and processes.launcher_code() is None
        if mpirun_running or any(not p.stopped for p in processes.running()):
            if self.hurried:
                self.say("stopping the run's processes at once (SIGKILL)")
            else:
                self.say(
                    "stopping the run's processes (SIGTERM, SIGKILL after "
                    f"{kill_grace_seconds():g} s)"
                )
        # A second stop signal during the grace cuts it short.
        processes.stop(kill_grace_seconds(), cut_short=lambda: self.hurried)
        if self.hurried:
            self.say(f"asked again ({self.signals[1]}): the grace was skipped (SIGKILL)")
        # Output the processes wrote while they stopped.
        self.ship_output()

    def _write_processes(self) -> None:
        """Record the process groups to stop if this supervisor dies (read by the agent)."""
        groups = self.processes.groups if self.processes is not None else []
        _write_process_groups(self.run_dir, groups)


def _expand_references(value: str, paths: dict[str, str]) -> str:
    """Replace ``$MODELYARD_DATAREFERENCE_<name>`` (what ``str(ds.as_mount())`` gives) in a
    plain argument with the local path."""
    for name, path in paths.items():
        value = value.replace("$" + data.env_name(name), path)
    return value


def _record_build_process(run_dir: Path, pgid: int | None) -> None:
    """While Preparing, processes.json names the environment build's process group, so the
    agent stops the installer if this supervisor dies (start() rewrites it for the run)."""
    _write_process_groups(run_dir, [pgid] if pgid else [])


def _write_process_groups(run_dir: Path, groups: list[int]) -> None:
    """processes.json: this supervisor and the process groups to stop if it dies (read by
    the agent), each with its start time (process_identity.py), replaced whole."""
    record = {
        "supervisor_pid": os.getpid(),
        "supervisor_start": start_time(os.getpid()),
        "pgid": groups[0] if groups else None,
        "pgids": groups,
        "starts": {str(pgid): start_time(pgid) for pgid in groups},
    }
    write_private_file(run_dir / PROCESSES_FILE, json.dumps(record).encode())


@contextlib.contextmanager
def _catching_stop_signals(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """``handler`` for SIGTERM and SIGINT while the block runs (when it runs on the main
    thread: only there can Python handle signals); the earlier handlers after it. The agent
    blocks these signals around the fork of a supervisor, so none is lost before the handler
    is in place: they are unblocked here."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        for signum, earlier in previous.items():
            signal.signal(signum, earlier)


class _PreparingPoll:
    """Called often while an environment is built or waited for: a cancel request stops the
    build (looked for every STATUS_INTERVAL_S), and so does a stop signal (``check_signal``,
    every call), a lost lease, or the run ended by someone else."""

    def __init__(
        self,
        backend: Backend,
        run_id: str,
        lease: _Lease,
        check_signal: Callable[[], None],
    ) -> None:
        self.backend = backend
        self.run_id = run_id
        self.lease = lease
        self.check_signal = check_signal
        self.next_status = time.monotonic() + STATUS_INTERVAL_S

    def __call__(self) -> None:
        self.check_signal()
        self.lease.check()
        now = time.monotonic()
        if now < self.next_status:
            return
        record = self.backend.get_run(self.run_id)
        status = record.status
        self.next_status = now + STATUS_INTERVAL_S
        if status == CANCEL_REQUESTED:
            raise _Stopped(CANCELED, cancellation(record.error))
        if status in TERMINAL_STATES:
            # Ended by someone else: building on would be for nothing.
            raise _Stopped(status, {"message": f"the run had ended ({status})"})


class _Lease:
    """The run's lease, renewed every HEARTBEAT_INTERVAL_S by a thread of its own for as long
    as the supervisor lives: through an environment build, the script and the upload of
    ``./outputs`` alike (a long upload must not look like a dead supervisor). When renewing
    finds the run ended without this supervisor (its lease expired, a stalled machine say,
    and a watcher failed it) or taken by another worker, :meth:`check` stops the run at the
    next safe point: its processes must not go on unsupervised."""

    def __init__(
        self, backend: Backend, run_id: str, worker_id: str | None, seconds: float
    ) -> None:
        self.backend = backend
        self.run_id = run_id
        self.worker_id = worker_id
        self.seconds = seconds
        self.lost: str | None = None  # why the run is no longer this supervisor's
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="modelyard-lease", daemon=True)

    def start(self) -> None:
        if self.worker_id is not None:  # None: someone else holds the lease
            self._thread.start()

    def stop(self) -> None:
        self._done.set()

    def _keep(self) -> None:
        assert self.worker_id is not None
        while not self._done.wait(HEARTBEAT_INTERVAL_S):
            try:
                status = self.backend.renew_lease(self.run_id, self.worker_id, self.seconds)
            except ConflictError as taken:
                self.lost = str(taken)
                return
            except ModelyardError:
                continue  # the database is away: the lease outlasts several missed beats
            if status in TERMINAL_STATES or status == NOT_RESPONDING:
                self.lost = f"the run became {status} without its supervisor"
                return

    def check(self) -> None:
        """Raise _Stopped when the lease was lost."""
        if self.lost is not None:
            raise _Stopped(
                FAILED,
                {"message": f"the run's lease was lost while its supervisor ran: {self.lost}"},
            )
