"""The local compute agent: the queue of a workspace's ``local`` compute target.

One agent process per workspace (a file lock makes sure), started by the first submit and
gone after a while with nothing to do. It

- starts queued runs first in, first out, at most ``max_concurrent_runs`` at once, each in a
  supervisor process forked from itself (it has modelyard imported already, so a run starts in
  milliseconds rather than the second a fresh interpreter would take);
- cancels runs whose cancel request came while they were queued;
- notices a supervisor that died (killed with SIGKILL, say): it stops the run's processes and
  marks the run NotResponding, then Failed with the reason.

Clients wake it through a Unix socket after they queue a run, in a folder only the user can
write to (:func:`socket_path`); it also looks at the queue every second, so a lost wake-up
only costs a second. It is started with a reduced environment (``run_environment.py``), so a
client's tokens never sit in it.

Example::

    ensure_agent(ws)      # start it if it is not running
    wake(ws)              # "look at the queue now"
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import selectors
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.backend.records import (
    CANCEL_REQUESTED,
    CANCELED,
    FAILED,
    FINALIZING,
    NOT_RESPONDING,
    PREPARING,
    QUEUED,
    RUNNING,
    STARTING,
)
from modelyard.errors import ConfigError, ModelyardError
from modelyard.runner.process_identity import is_reused, is_running
from modelyard.runner.run_environment import agent_environment

if TYPE_CHECKING:
    from modelyard.workspace import Workspace

COMPUTE_PROPERTY = "modelyard.compute"
LOCAL = "local"
ACTIVE_STATES = [PREPARING, STARTING, RUNNING, FINALIZING, CANCEL_REQUESTED]
POLL_INTERVAL_S = 1.0
START_TIMEOUT_S = 20.0
# A Unix socket path holds 108 bytes on Linux and 104 on macOS, with the final NUL.
SOCKET_PATH_MAX = 100


def idle_seconds() -> float:
    """How long the agent waits with nothing to do before it exits."""
    return float(os.environ.get("MODELYARD_AGENT_IDLE_SECONDS", "600"))


def max_concurrent_runs() -> int:
    """How many runs the local compute executes at once (MODELYARD_LOCAL_MAX_RUNS, default:
    the number of cores)."""
    configured = os.environ.get("MODELYARD_LOCAL_MAX_RUNS")
    return max(1, int(configured)) if configured else (os.cpu_count() or 1)


def compute_dir(workspace: Workspace) -> Path:
    """Where the local compute keeps its state and the runs' working folders."""
    return workspace.location / "compute" / LOCAL


def socket_path(workspace: Workspace) -> str:
    """The agent's socket, in a folder only this account can write to (another account that
    could replace the socket would receive the wake-ups and keep the runs queued).

    The first that fits the ~100 bytes of a Unix socket path (``SOCKET_PATH_MAX``):

    1. ``<workspace>/compute/local/agent.sock``, when that folder is this account's and
       nobody else may write to it: it depends on the workspace alone, so every client finds
       it whatever its environment;
    2. ``$XDG_RUNTIME_DIR/modelyard-<digest>.sock``, when that folder is this account's and
       private (0700, as systemd makes it);
    3. ``<tmp>/modelyard-<uid>/<digest>.sock``: a fixed name under ``/tmp``, so it is checked
       (with lstat: not a link, a folder, owned by this account, mode 0700) and refused with
       a ConfigError naming it when another account planted it.

    Example::

        socket_path(ws)      # '/home/me/proj/.modelyard/demo/compute/local/agent.sock'
    """
    in_workspace = compute_dir(workspace) / "agent.sock"
    if _fits(in_workspace) and all(
        _private_folder(folder, group_may_read=True)
        for folder in (in_workspace.parent, in_workspace.parent.parent, workspace.location)
    ):
        return str(in_workspace)
    digest = hashlib.sha256(str(workspace.location).encode()).hexdigest()[:16]
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime):
        in_runtime = Path(runtime) / f"modelyard-{digest}.sock"
        if _fits(in_runtime) and _private_folder(in_runtime.parent, group_may_read=False):
            return str(in_runtime)
    folder = Path(tempfile.gettempdir()) / f"modelyard-{os.getuid()}"
    with contextlib.suppress(FileExistsError, PermissionError):
        folder.mkdir(mode=0o700)
        os.chmod(folder, 0o700)  # ours, just made: exactly 0700 whatever the umask
    _check_temp_folder(folder)
    return str(folder / f"{digest}.sock")


def _fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= SOCKET_PATH_MAX


def _private_folder(folder: Path, *, group_may_read: bool) -> bool:
    """Whether ``folder`` is a real folder of this account that nobody else may write to
    (nor read, unless ``group_may_read``). A link is not followed: whoever may change it
    chooses where the socket goes."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    forbidden = 0o022 if group_may_read else 0o077
    return (
        stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & forbidden
    )


def _check_temp_folder(folder: Path) -> None:
    try:
        info = os.lstat(folder)
    except OSError as error:
        raise ConfigError(
            f"cannot use {folder} for the local compute agent's socket: {error.strerror}; set "
            "XDG_RUNTIME_DIR or TMPDIR to a folder of yours"
        ) from None
    problem = ""
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a folder"
    elif info.st_uid != os.getuid():
        problem = f"belongs to another account (uid {info.st_uid}; you are uid {os.getuid()})"
    elif stat.S_IMODE(info.st_mode) != 0o700:
        problem = f"has mode {stat.S_IMODE(info.st_mode):04o}, not 0700"
    if problem:
        raise ConfigError(
            f"{folder}, where the local compute agent's socket goes, {problem}: another "
            "account may have made it, or could replace the socket, to intercept your runs, "
            "so it is not used. Remove it (or ask an administrator to), or set "
            "XDG_RUNTIME_DIR to a private folder of yours, or use a workspace folder with a "
            "shorter path"
        )


def _tell(workspace: Workspace, word: bytes) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(socket_path(workspace))
            sock.sendall(word + b"\n")
            if word == b"stop":
                sock.recv(1)  # the agent closes the connection when it has stopped
        return True
    except OSError:
        return False


def wake(workspace: Workspace) -> bool:
    """Ask the agent to look at the queue now; False when no agent answers (ConfigError when
    the socket's only possible folder is unsafe, see :func:`socket_path`)."""
    return _tell(workspace, b"wake")


def stop_agent(workspace: Workspace) -> bool:
    """Stop the workspace's agent once its running runs have ended (queued runs stay
    queued until the next submit starts an agent again); False when none was running."""
    return _tell(workspace, b"stop")


def ensure_agent(workspace: Workspace) -> None:
    """Start the workspace's agent unless it runs already, and wake it.

    The agent gets the client's environment reduced to what it and the runs' machinery need
    (``run_environment.agent_environment``): a client's tokens never sit in it.
    """
    folder = compute_dir(workspace)
    folder.mkdir(parents=True, exist_ok=True)
    path = socket_path(workspace)  # a ConfigError here, before any wait, when it is unsafe
    if wake(workspace):
        return
    with open(folder / "agent.log", "ab") as log:
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelyard.runner.agent",
                str(workspace.location),
                workspace.name,
                path,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=agent_environment(os.environ),
            start_new_session=True,  # detached: closing the notebook leaves it running
            close_fds=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if wake(workspace):
            return
        time.sleep(0.02)
    raise ModelyardError(
        f"the local compute agent did not start within {START_TIMEOUT_S:g} s; see "
        f"{folder / 'agent.log'}"
    )


class Agent:
    """The agent's loop; see the module docstring."""

    def __init__(self, workspace: Workspace, socket_file: str | None = None) -> None:
        self.workspace = workspace
        # The client that started the agent chose the socket: the same one it wakes.
        self.socket_file = socket_file or socket_path(workspace)
        self.backend = workspace._backend
        self.dir = compute_dir(workspace)
        self.children: dict[int, str] = {}  # supervisor pid -> run id (our own children)
        self.started: set[str] = set()
        self.limit = max_concurrent_runs()
        self.last_busy = time.monotonic()

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
        listener.listen(64)
        listener.setblocking(False)
        self.listener = listener
        selector = self.selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        self.log(f"agent for {self.workspace.location} (up to {self.limit} runs at once)")
        stop_requests: list[socket.socket] = []
        try:
            while True:
                if stop_requests:
                    self.reap()
                    if not self.children:
                        self.log("asked to stop; exiting")
                        return
                else:
                    self.step()
                if self.children:
                    self.last_busy = time.monotonic()
                elif time.monotonic() - self.last_busy > idle_seconds():
                    self.log("idle; exiting")
                    return
                if not self.workspace.location.exists():
                    self.log("the workspace folder is gone; exiting")
                    return
                timeout = 0.05 if stop_requests else POLL_INTERVAL_S
                for _key, _events in selector.select(timeout=timeout):
                    with contextlib.suppress(OSError):
                        connection, _ = listener.accept()
                        connection.settimeout(1.0)
                        if connection.recv(16).startswith(b"stop"):
                            stop_requests.append(connection)  # answered by closing on exit
                        else:
                            connection.close()
                # Children that ended while we waited are collected at the next step.
        finally:
            selector.close()
            listener.close()
            for connection in stop_requests:
                connection.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def step(self) -> None:
        self.reap()
        self.check_supervisors()
        self.cancel_queued()
        self.start_queued()

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
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
        for record in self.backend.list_runs_in_states(
            ACTIVE_STATES, properties={COMPUTE_PROPERTY: LOCAL}
        ):
            if record.id in self.children.values():
                continue
            info = self._processes(record.id)
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
        from modelyard.runner.processes import stop_process_groups

        record = self.backend.get_run(run_id)
        if record.status in (QUEUED, CANCELED, FAILED) or record.ended_at is not None:
            return
        stop_process_groups(self._process_groups(run_id), grace=2.0)
        message = f"the run's supervisor (pid {pid}) {reason}; its processes were stopped"
        self.log(f"{run_id}: {message}")
        with contextlib.suppress(ModelyardError):
            self.backend.update_run_status(run_id, NOT_RESPONDING)
            self.backend.update_run_status(run_id, FAILED, error={"message": message})

    def cancel_queued(self) -> None:
        for record in self.backend.list_runs_in_states(
            [CANCEL_REQUESTED], properties={COMPUTE_PROPERTY: LOCAL}
        ):
            if record.id not in self.started and record.started_at is None:
                with contextlib.suppress(ModelyardError):
                    self.backend.update_run_status(
                        record.id, CANCELED, error={"message": "canceled while queued"}
                    )

    def start_queued(self) -> None:
        free = self.limit - len(self.children)
        if free <= 0:
            return
        queued = self.backend.list_runs_in_states([QUEUED], properties={COMPUTE_PROPERTY: LOCAL})
        for record in queued:
            if free <= 0:
                return
            if record.id in self.started:
                continue
            self.started.add(record.id)
            self.children[self.fork_supervisor(record.id)] = record.id
            free -= 1

    def fork_supervisor(self, run_id: str) -> int:
        sys.stdout.flush()
        pid = os.fork()
        if pid:
            self.log(f"{run_id}: supervisor pid {pid}")
            return pid
        code = 70
        try:
            # Nothing of the agent's may outlive it in a supervisor: above all not the lock,
            # which would keep a new agent from starting while this run goes on.
            self.listener.close()
            self.selector.close()
            self.lock_file.close()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            from modelyard.runner.supervisor import Supervisor

            code = Supervisor(self.workspace, run_id, self.dir).run()
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)


def main(argv: list[str]) -> None:
    from modelyard.workspace import Workspace

    workspace = Workspace.get(argv[1], location=argv[0])
    # Import what every supervisor needs once, here, before forking them.
    import modelyard.runner.supervisor  # noqa: F401

    compute_dir(workspace).mkdir(parents=True, exist_ok=True)
    Agent(workspace, argv[2] if len(argv) > 2 else None).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
