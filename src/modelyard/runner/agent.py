"""The local compute agent: the queue of a workspace's ``local`` compute target.

One agent process per workspace (a file lock makes sure), started by the first submit and
gone after a while with nothing to do. It

- starts queued runs first in, first out, at most ``max_concurrent_runs`` at once, each in a
  supervisor process forked from itself (it has modelyard imported already, so a run starts in
  milliseconds rather than the second a fresh interpreter would take);
- cancels runs whose cancel request came while they were queued;
- claims each run it starts (``claim_run``: one atomic step in the database, so two agents
  sharing a database never start one run twice); the run's supervisor then renews the lease
  with its heartbeat;
- notices a supervisor that died (killed with SIGKILL, say): it stops the run's processes and
  marks the run NotResponding, then Failed with the reason. A run whose supervisor lives on
  (one an earlier agent started: supervisors outlive their agent) is that supervisor's to
  end, a cancel included: the supervisor stops what it does, an environment build too, and
  records Canceled itself;
- ends the runs whose lease expired (``expire_leases``), whoever held them: their supervisor
  and its agent died, or their node stopped answering. Within ``LEASE_SECONDS`` plus a poll
  such a run is Failed with the reason, and this agent stops its processes when they are on
  this machine.

Signals: a first SIGTERM or SIGINT makes the agent take no new runs and forward SIGTERM to
its supervisors (each then stops its run cleanly, see ``supervisor.py``); it waits for them,
at most the kill grace plus ``STOP_MARGIN_S``, then exits (should some still run then, they
get a second SIGTERM first). A second SIGTERM or SIGINT forwards a second SIGTERM (the
supervisors skip their grace) and exits at once. Queued runs stay queued for the next agent.
Each supervisor runs in a process group of its own, so a signal to the agent's group reaches
the supervisors once, through the agent. What the agent does goes to ``agent.log``.

Clients wake it through a Unix socket after they queue a run, in a folder only the user can
write to (:func:`socket_path`); it also looks at the queue every second, so a lost wake-up
only costs a second. Each client names the workspace it means (its id, from
``workspace.json``) and the agent answers ``ok`` only for its own: a workspace folder deleted
and created again at the same path has a new id, so its old agent (whose database was
deleted with the folder) answers ``other`` and exits, and the client starts a new agent. The
agent also exits within a poll when its folder is gone or holds another workspace. It is
started with a reduced environment (``run_environment.py``), so a client's tokens never sit
in it.

Clients (:mod:`modelyard.compute.local`) start it as ``python -m modelyard.runner.agent
<workspace folder> <name> <socket>``; it opens the folder's backend itself and knows no SDK
object.

Example::

    Agent(backend, Path(".modelyard/demo")).serve()     # what main() does
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import selectors
import signal
import socket
import sys
import time
import traceback
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

from modelyard.backend.base import Backend
from modelyard.backend.records import (
    CANCEL_REQUESTED,
    CANCELED,
    FAILED,
    FINALIZING,
    NOT_RESPONDING,
    PREPARING,
    PROVISIONING,
    QUEUED,
    RUNNING,
    STARTING,
    TERMINAL_STATES,
)
from modelyard.backend.workspace_folder import open_backend, read_workspace_file
from modelyard.errors import ModelyardError, NotFoundError
from modelyard.runner.local_compute import (
    COMPUTE_PROPERTY,
    DRIVER_MODULES,
    HANDSHAKE_MAX,
    LOCAL,
    OK,
    OTHER,
    compute_dir,
    driver_holder,
    idle_seconds,
    max_concurrent_runs,
    socket_path,
    wake,
    workspace_id_at,
)
from modelyard.runner.process_identity import is_reused, is_running
from modelyard.runner.processes import group_exists, stop_process_groups
from modelyard.runner.supervisor import STOP_SIGNALS, Supervisor, kill_grace_seconds

ACTIVE_STATES = [PREPARING, PROVISIONING, STARTING, RUNNING, FINALIZING, CANCEL_REQUESTED]
POLL_INTERVAL_S = 1.0
# How long a claimed run stays its supervisor's without a heartbeat (one every
# HEARTBEAT_INTERVAL_S): six missed beats. With the agents' sweep every POLL_INTERVAL_S a run
# whose supervisor and agent died together is Failed within about 31 s.
LEASE_SECONDS = 30.0
SWEPT_FILE = "swept"  # in a run's folder: its processes are known to be gone
# A tuning run's driver that ends before its run more often than this fails the run: it is
# not being killed, it cannot go on (each end is in its driver.log).
MAX_DRIVER_RESTARTS = 5
DRIVER_LOG = "driver.log"
# After a SIGTERM, how much longer than the kill grace the supervisors get to finish: the
# upload of ./outputs and the last logs.
STOP_MARGIN_S = 30.0


class Agent:
    """The agent's loop; see the module docstring."""

    def __init__(
        self,
        backend: Backend,
        location: Path,
        socket_file: str | None = None,
        workspace_id: str | None = None,
        workspace_name: str | None = None,
    ) -> None:
        self.backend = backend
        self.location = location
        # Given to the drivers it starts, which open the workspace themselves.
        self.workspace_name = workspace_name or read_workspace_file(location).name
        # The workspace this agent serves: a folder deleted and created again at the same
        # path holds another one, which is not this agent's (its database is another file).
        self.workspace_id = workspace_id or workspace_id_at(location)
        # The client that started the agent chose the socket: the same one it wakes.
        self.socket_file = socket_file or socket_path(location)
        self.dir = compute_dir(location)
        # Who holds the leases of the runs this agent starts (one id per agent process).
        self.worker_id = worker_id()
        self.next_sweep = 0.0  # the first step looks for orphans (stop_orphans)
        self.watched = 0  # leased runs active in the workspace, this agent's or not
        self.children: dict[int, str] = {}  # supervisor pid -> run id (our own children)
        self.drivers: dict[int, str] = {}  # driver pid -> run id (tuning runs, DRIVER_MODULES)
        self.driver_restarts: dict[str, int] = {}
        self.started: set[str] = set()
        self.limit = max_concurrent_runs()
        self.last_busy = time.monotonic()
        # Names of the stop signals received (noted by the handler, acted on by the loop),
        # whether the supervisors were told, and until when they may run.
        self.signals: list[str] = []
        self.stale_reason = ""  # set when a client shows this agent's workspace was replaced
        self.told_supervisors = False
        self.stop_deadline = 0.0

    def log(self, message: str) -> None:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}", flush=True)

    def serve(self) -> None:
        lock_file = self.lock_file = open(self.dir / "agent.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another agent serves this workspace
        path = self.socket_file
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        # Which socket file is ours: a new agent of a re-created workspace may bind the same
        # path before this one exits, and this one must not unlink that one's socket.
        bound = os.stat(path).st_ino
        listener.listen(64)
        listener.setblocking(False)
        self.listener = listener
        selector = self.selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        # A signal writes a byte into this pipe (set_wakeup_fd), so the wait below ends at
        # once; the handler itself only notes the signal.
        self.wake_reader, self.wake_writer = os.pipe()
        for fd in (self.wake_reader, self.wake_writer):
            os.set_blocking(fd, False)
        selector.register(self.wake_reader, selectors.EVENT_READ)
        previous = {signum: signal.signal(signum, self.note_signal) for signum in STOP_SIGNALS}
        signal.set_wakeup_fd(self.wake_writer)
        self.log(f"agent (pid {os.getpid()}) for {self.location} (up to {self.limit} runs at once)")
        stop_requests: list[socket.socket] = []
        try:
            while True:
                # Before anything touches the database: a workspace deleted and created again
                # at this path has a new database file, which a new connection of this
                # agent's pool would open and take the new workspace's runs from it.
                if (gone := self.workspace_gone()) is not None:
                    self.log(f"{gone}; exiting")
                    return
                if self.signals:
                    if self.stop_on_signal():
                        return
                elif stop_requests:
                    self.reap()
                    if not self.children and not self.drivers:
                        self.log("asked to stop; exiting")
                        return
                else:
                    self.step()
                # Runs active anywhere keep it too: it is their watcher should their lease
                # expire (their supervisor and its agent died, on this machine or another).
                if self.children or self.drivers or self.watched:
                    self.last_busy = time.monotonic()
                elif time.monotonic() - self.last_busy > idle_seconds():
                    self.log("idle; exiting")
                    return
                timeout = 0.05 if stop_requests or self.signals else POLL_INTERVAL_S
                for key, _events in selector.select(timeout=timeout):
                    if key.fileobj == self.wake_reader:
                        with contextlib.suppress(BlockingIOError):
                            while os.read(self.wake_reader, 64):
                                pass
                        continue
                    with contextlib.suppress(OSError):
                        connection, _ = listener.accept()
                        if self.answer(connection):
                            stop_requests.append(connection)  # answered by closing on exit
                if stale := self.stale_reason:
                    self.log(f"{stale}; exiting")
                    return
                # Children that ended while we waited are collected at the next step.
        finally:
            signal.set_wakeup_fd(-1)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(self.wake_reader)
            os.close(self.wake_writer)
            selector.close()
            listener.close()
            for connection in stop_requests:
                connection.close()
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_ino == bound:
                    os.unlink(path)

    def answer(self, connection: socket.socket) -> bool:
        """Answer one client's handshake (``<word> <workspace id>``, see local_compute.py);
        True when it asked this agent to stop (answered by closing the connection on exit).
        A client of another workspace at this folder means the folder was deleted and
        created again: this agent is stale and exits (``stale_reason``)."""
        connection.settimeout(1.0)
        try:
            word, _, client_id = connection.recv(HANDSHAKE_MAX).strip().partition(b" ")
            if client_id.decode(errors="replace") != self.workspace_id:
                connection.sendall(OTHER + b"\n")
                now = workspace_id_at(self.location)
                if now != self.workspace_id:
                    self.stale_reason = (
                        f"a client of workspace {now} at {self.location} connected; this "
                        f"agent serves workspace {self.workspace_id}, deleted since"
                    )
                connection.close()
                return False
            connection.sendall(OK + b"\n")
        except OSError:
            connection.close()
            return False
        if word == b"stop":
            return True
        connection.close()
        return False

    def workspace_gone(self) -> str | None:
        """Why this agent's workspace is no longer at its folder, or None while it is."""
        now = workspace_id_at(self.location)
        if now == self.workspace_id:
            return None
        if now is None:
            return "the workspace folder is gone"
        return (
            f"the workspace at {self.location} is another one now ({now}; this agent "
            f"served {self.workspace_id})"
        )

    def note_signal(self, signum: int, _frame: FrameType | None) -> None:
        """The SIGTERM/SIGINT handler: only notes the signal, acted on by the loop."""
        self.signals.append(signal.Signals(signum).name)

    def stop_on_signal(self) -> bool:
        """One turn of stopping after a signal (see the module docstring); True when the
        agent is to exit now."""
        self.reap()
        if not self.told_supervisors:
            self.told_supervisors = True
            wait = kill_grace_seconds() + STOP_MARGIN_S
            self.stop_deadline = time.monotonic() + wait
            self.log(
                f"asked to stop ({self.signals[0]}): taking no new runs; SIGTERM to the "
                f"supervisors of {self._running_runs()}; waiting up to {wait:g} s for them"
            )
            self.forward()
        if len(self.signals) >= 2:
            self.log(
                f"asked again ({self.signals[1]}): SIGTERM again to the supervisors of "
                f"{self._running_runs()}, which stop their runs at once; exiting"
            )
            self.forward()
            return True
        if not self.children and not self.drivers:
            self.log("the supervisors have ended; exiting")
            return True
        if time.monotonic() > self.stop_deadline:
            self.log(
                f"the supervisors of {self._running_runs()} are still running; SIGTERM again "
                "to them, which stop their runs at once; exiting"
            )
            self.forward()
            return True
        return False

    def _running_runs(self) -> str:
        return ", ".join(sorted([*self.children.values(), *self.drivers.values()])) or "no runs"

    def forward(self) -> None:
        for pid in [*self.children, *self.drivers]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def step(self) -> None:
        self.reap()
        self.check_supervisors()
        self.end_expired()
        if time.monotonic() >= self.next_sweep:
            self.stop_orphans()
            self.next_sweep = time.monotonic() + LEASE_SECONDS
        self.cancel_queued()
        self.start_queued()

    def stop_orphans(self) -> None:
        """Stop the processes of runs that ended while nobody here watched them: their
        supervisor and this machine's agent died together, and another agent sharing the
        database failed the run when its lease expired (or this one did, just now). Each
        run folder is looked at until its run has ended and its supervisor is gone, then
        marked ``swept`` so later sweeps skip it."""
        runs = self.dir / "runs"
        if not runs.is_dir():
            return
        for folder in runs.iterdir():
            if (folder / SWEPT_FILE).exists() or folder.name in self.children.values():
                continue
            info = self._processes(folder.name)
            if info is None:
                continue
            try:
                record = self.backend.get_run(folder.name)
            except NotFoundError:
                continue
            if record.status not in TERMINAL_STATES:
                continue  # check_supervisors and end_expired look after it
            pid = info.get("supervisor_pid")
            if pid is not None and is_running(pid, info.get("supervisor_start")):
                continue  # its supervisor is finishing it
            groups = self._process_groups(folder.name)
            alive = [group for group in groups if group_exists(group)]
            if alive:
                self.log(
                    f"{folder.name}: ended {record.status}; stopping its leftover "
                    f"process groups {alive}"
                )
                stop_process_groups(alive, grace=2.0)
            with contextlib.suppress(OSError):
                (folder / SWEPT_FILE).touch()

    def end_expired(self) -> None:
        """Fail the runs whose lease expired (any agent's), stopping their processes when
        they ran here."""
        for record in self.backend.expire_leases():
            self.log(f"{record.id}: {(record.error or {}).get('message', 'lease expired')}")
            if (self.dir / "runs" / record.id).is_dir():
                stop_process_groups(self._process_groups(record.id), grace=2.0)

    def reap(self) -> None:
        while self.children or self.drivers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.drivers:
                self.driver_ended(self.drivers.pop(pid), pid, status)
                continue
            run_id = self.children.pop(pid, None)
            if run_id is not None and status != 0:
                reason = (
                    f"killed by signal {os.WTERMSIG(status)}"
                    if os.WIFSIGNALED(status)
                    else f"exited with code {os.WEXITSTATUS(status)}"
                )
                self.supervisor_lost(run_id, pid, reason)

    def check_supervisors(self) -> None:
        """Runs whose supervisor is gone without ending them (it was not our child: an
        earlier agent started it)."""
        active = self.backend.list_runs_in_states(
            ACTIVE_STATES, properties={COMPUTE_PROPERTY: LOCAL}
        )
        # Only leased runs can expire; one without a lease (started before leases) is
        # looked after by its supervisor's pid alone, and must not keep the agent up.
        self.watched = sum(1 for record in active if record.lease_holder is not None)
        for record in active:
            if record.id in self.children.values() or record.id in self.drivers.values():
                continue
            info = self._processes(record.id)
            if record.run_type in DRIVER_MODULES and record.lease_holder is not None:
                self.resume_driver(record.id, info)
                continue
            if info is None:
                continue
            pid = info.get("supervisor_pid")
            # A number alone could be an unrelated process that got it later: its start time
            # tells (process_identity.py).
            if pid is not None and not is_running(pid, info.get("supervisor_start")):
                self.supervisor_lost(record.id, pid, "is no longer running")

    def _processes(self, run_id: str) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = json.loads(
                (self.dir / "runs" / run_id / "processes.json").read_text()
            )
        except (OSError, ValueError):
            return None
        return info

    def _process_groups(self, run_id: str) -> list[int]:
        """Every process group of the run: those its supervisor recorded, and those of MPI
        ranks that started after its last record (each rank notes its own)."""
        info = self._processes(run_id) or {}
        groups = {int(g) for g in info.get("pgids") or [info.get("pgid")] if g}
        for path in (self.dir / "runs" / run_id / "ranks").glob("*.pgid"):
            with contextlib.suppress(OSError, ValueError):
                groups.add(int(path.read_text()))
        starts = info.get("starts") or {}
        reused = {g for g in groups if is_reused(g, starts.get(str(g)))}
        if reused:
            self.log(
                f"{run_id}: process groups {sorted(reused)} belong to other processes now; "
                "left alone"
            )
        return sorted(groups - reused)

    def supervisor_lost(self, run_id: str, pid: int, reason: str) -> None:
        record = self.backend.get_run(run_id)
        if record.status in (QUEUED, CANCELED, FAILED) or record.ended_at is not None:
            return
        stop_process_groups(self._process_groups(run_id), grace=2.0)
        message = f"the run's supervisor (pid {pid}) {reason}; its processes were stopped"
        self.log(f"{run_id}: {message}")
        with contextlib.suppress(ModelyardError):
            self.backend.update_run_status(run_id, NOT_RESPONDING)
            self.backend.update_run_status(run_id, FAILED, error={"message": message})

    def start_driver(self, run_id: str, run_type: str) -> None:
        """Start the driver of ``run_id`` (``DRIVER_MODULES``): a program of its own, which
        opens the workspace itself; its output goes to ``driver.log`` in the run's folder."""
        run_dir = self.dir / "runs" / run_id
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        command = [
            sys.executable,
            "-m",
            DRIVER_MODULES[run_type],
            str(self.location),
            self.workspace_name,
            run_id,
        ]
        log = os.open(run_dir / DRIVER_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            pid = os.posix_spawn(
                sys.executable,
                command,
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, log, 1),
                    (os.POSIX_SPAWN_DUP2, log, 2),
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                ],
                # Its own session: a signal to the agent's group reaches it through the
                # agent only, as for the supervisors.
                setsid=True,
            )
        finally:
            os.close(log)
        self.drivers[pid] = run_id
        self.log(f"{run_id}: driver pid {pid}")

    def driver_ended(self, run_id: str, pid: int, status: int) -> None:
        """A driver exited: when its run goes on (the driver was killed, say) and this agent
        is not stopping, a new driver carries on from the store, up to
        ``MAX_DRIVER_RESTARTS`` times; then the run fails."""
        how = (
            f"killed by signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exited with code {os.WEXITSTATUS(status)}"
        )
        try:
            record = self.backend.get_run(run_id)
        except ModelyardError:
            return  # looked at again by check_supervisors
        if record.status in TERMINAL_STATES or self.signals:
            return
        restarts = self.driver_restarts.get(run_id, 0) + 1
        self.driver_restarts[run_id] = restarts
        if restarts > MAX_DRIVER_RESTARTS:
            message = (
                f"the run's driver (pid {pid}) {how}, its {restarts}th end before the run's; "
                f"see {self.dir / 'runs' / run_id / DRIVER_LOG}"
            )
            self.log(f"{run_id}: {message}")
            with contextlib.suppress(ModelyardError):
                self.backend.update_run_status(run_id, FAILED, error={"message": message})
            return
        self.log(f"{run_id}: its driver (pid {pid}) {how}; starting a new one")
        self.start_driver(run_id, record.run_type)

    def resume_driver(self, run_id: str, info: dict[str, Any] | None) -> None:
        """A driven run that this agent did not start: a new driver for it, unless its
        driver is alive (an earlier agent's). Its lease is renewed first, so that this very
        step's look at expired leases does not fail it."""
        pid = (info or {}).get("supervisor_pid")
        if pid is not None and is_running(pid, (info or {}).get("supervisor_start")):
            return
        try:
            self.backend.renew_lease(run_id, driver_holder(run_id), LEASE_SECONDS)
            record = self.backend.get_run(run_id)
        except ModelyardError:
            return
        self.log(f"{run_id}: its driver is not running; starting a new one")
        self.start_driver(run_id, record.run_type)

    def cancel_queued(self) -> None:
        """Cancel runs whose cancel request came while they were queued. A run that a
        supervisor took (Preparing, say: no start time yet) is left to that supervisor, even
        one an earlier agent started: it stops the build and records Canceled itself."""
        for record in self.backend.list_runs_in_states(
            [CANCEL_REQUESTED], properties={COMPUTE_PROPERTY: LOCAL}
        ):
            # A run claimed by a supervisor is that supervisor's to cancel (it stops the
            # environment build or the script first); only one never claimed is ended here.
            if record.lease_holder is None:
                with contextlib.suppress(ModelyardError):
                    self.backend.update_run_status(
                        record.id, CANCELED, error={"message": "canceled while queued"}
                    )

    def start_queued(self) -> None:
        free = self.limit - len(self.children)
        queued = self.backend.list_runs_in_states([QUEUED], properties={COMPUTE_PROPERTY: LOCAL})
        for record in queued:
            if self.signals:  # asked to stop meanwhile: no new run
                return
            if record.id in self.started:
                continue
            if record.run_type in DRIVER_MODULES:
                # A driver makes runs, it is not one: it takes no place of the limit.
                self.started.add(record.id)
                holder = driver_holder(record.id)
                if self.backend.claim_run(record.id, holder, LEASE_SECONDS) is not None:
                    self.start_driver(record.id, record.run_type)
                continue
            if free <= 0:
                continue
            self.started.add(record.id)
            if self.backend.claim_run(record.id, self.worker_id, LEASE_SECONDS) is None:
                continue  # another agent took it, or it was canceled meanwhile
            self.children[self.fork_supervisor(record.id)] = record.id
            free -= 1

    def fork_supervisor(self, run_id: str) -> int:
        sys.stdout.flush()
        # Blocked across the fork: a signal for the new supervisor waits until its own
        # handler is in place (Supervisor.run unblocks them), not caught by the agent's.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            self.log(f"{run_id}: supervisor pid {pid}")
            return pid
        code = 70
        try:
            # Nothing of the agent's may outlive it in a supervisor: above all not the lock,
            # which would keep a new agent from starting while this run goes on.
            signal.set_wakeup_fd(-1)
            os.close(self.wake_reader)
            os.close(self.wake_writer)
            self.listener.close()
            self.selector.close()
            self.lock_file.close()
            # Its own process group: a signal to the agent's group reaches it only through
            # the agent, once (the run's processes have groups of their own anyway).
            os.setpgid(0, 0)
            supervisor = Supervisor(
                self.backend,
                run_id,
                self.dir,
                self.worker_id,
                LEASE_SECONDS,
                on_queue_change=lambda: wake(self.location),
            )
            code = supervisor.run()
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def worker_id() -> str:
    """This agent's name as a lease holder: its machine, its pid and a random part (a pid
    is reused; a name must not be)."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:64] or "host"
    return f"{host}-agent-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def main(argv: list[str]) -> None:
    """``<workspace folder> <workspace name> [<socket>]``. Everything a supervisor needs is
    imported above, once, before supervisors are forked from this process."""
    location = Path(argv[0])
    info = read_workspace_file(location, argv[1])
    backend = open_backend(location, info)
    compute_dir(location).mkdir(parents=True, exist_ok=True)
    Agent(backend, location, argv[2] if len(argv) > 2 else None, info.id, info.name).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
