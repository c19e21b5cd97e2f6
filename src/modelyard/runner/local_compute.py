"""The local compute's shared facts: its folder, its agent's socket, its settings.

The agent (``agent.py``) and its clients (:mod:`modelyard.compute.local`, which starts and wakes
it, and a supervisor whose script queued a child run) both need them; neither imports the
other.

Example::

    compute_dir(Path(".modelyard/demo"))    # .modelyard/demo/compute/local
    socket_path(Path(".modelyard/demo"))    # where the agent listens
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import stat
import tempfile
from pathlib import Path

from modelyard.backend.records import HYPERDRIVE_RUN_TYPE, LOCAL_COMPUTE
from modelyard.errors import ConfigError
from modelyard.names import WORKSPACE_FILE

# The run property naming the compute target a run was submitted to.
COMPUTE_PROPERTY = "modelyard.compute"
LOCAL = LOCAL_COMPUTE  # the compute target that is this machine
# A Unix socket path holds 108 bytes on Linux and 104 on macOS, with the final NUL.
SOCKET_PATH_MAX = 100
# The handshake: a client sends ``<word> <workspace id>\n``; the agent answers OK when it
# serves that workspace, OTHER when it does not (then it exits: its folder was re-created).
HANDSHAKE_MAX = 128
OK = b"ok"
OTHER = b"other"
# Run types whose runs the agent gives to a driver program of their own, where it gives
# others to a supervisor: the module it starts as ``python -m <module> <workspace folder>
# <workspace name> <run id>``. Named, not imported: the runner imports nothing of the SDK.
DRIVER_MODULES = {HYPERDRIVE_RUN_TYPE: "modelyard.train.hyperdrive.driver"}


def driver_holder(run_id: str) -> str:
    """The lease holder of a driven run (a tuning run): the same for every driver of the run,
    so the driver an agent starts again, after the last one died, renews the lease the first
    one held (a file lock keeps two from running at once)."""
    return f"driver-{hashlib.sha256(run_id.encode()).hexdigest()[:24]}"


def idle_seconds() -> float:
    """How long the agent waits with nothing to do before it exits."""
    return float(os.environ.get("MODELYARD_AGENT_IDLE_SECONDS", "600"))


def max_concurrent_runs() -> int:
    """How many runs the local compute executes at once (MODELYARD_LOCAL_MAX_RUNS, default:
    the number of cores)."""
    configured = os.environ.get("MODELYARD_LOCAL_MAX_RUNS")
    return max(1, int(configured)) if configured else (os.cpu_count() or 1)


def compute_dir(location: Path) -> Path:
    """Where the local compute of the workspace folder ``location`` keeps its state and the
    runs' working folders."""
    return location / "compute" / LOCAL


def socket_path(location: Path) -> str:
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

        socket_path(ws.folder)   # '/home/me/proj/.modelyard/demo/compute/local/agent.sock'
    """
    in_workspace = compute_dir(location) / "agent.sock"
    if _fits(in_workspace) and all(
        _private_folder(folder, group_may_read=True)
        for folder in (in_workspace.parent, in_workspace.parent.parent, location)
    ):
        return str(in_workspace)
    digest = hashlib.sha256(str(location).encode()).hexdigest()[:16]
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime):
        in_runtime = Path(runtime) / f"modelyard-{digest}.sock"
        if _fits(in_runtime) and _private_folder(in_runtime.parent, group_may_read=False):
            return str(in_runtime)
    return str(user_temp_folder() / f"{digest}.sock")


def user_temp_folder() -> Path:
    """``<tmp>/modelyard-<uid>``: this account's private folder under the temporary folder,
    for what needs a short path (Unix sockets). Its name is fixed, so it is checked (with
    lstat: not a link, a folder, owned by this account, mode 0700) and refused with a
    ConfigError naming it when another account planted it."""
    folder = Path(tempfile.gettempdir()) / f"modelyard-{os.getuid()}"
    with contextlib.suppress(FileExistsError, PermissionError):
        folder.mkdir(mode=0o700)
        os.chmod(folder, 0o700)  # ours, just made: exactly 0700 whatever the umask
    _check_temp_folder(folder)
    return folder


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


def workspace_id_at(location: Path) -> str | None:
    """The id in the ``workspace.json`` of ``location`` now; None when there is none (the
    folder was deleted) or it cannot be read."""
    try:
        value = json.loads((location / WORKSPACE_FILE).read_bytes()).get("id")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def tell(location: Path, word: bytes) -> bool:
    """Send ``word`` (``wake``, ``stop``) to the agent of the workspace now at ``location``;
    False when none answers, or when the one answering serves another workspace.

    The handshake is ``<word> <workspace id>`` and the agent answers ``ok`` only when it
    serves that workspace. A workspace deleted and created again at the same path has a new
    id: its old agent, which may still listen on the same socket (its path depends on the
    folder alone), answers ``other`` and exits, and the caller starts a new one.
    """
    workspace_id = workspace_id_at(location)
    if workspace_id is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(socket_path(location))
            sock.sendall(word + b" " + workspace_id.encode() + b"\n")
            if sock.recv(HANDSHAKE_MAX).strip() != OK:
                return False
            if word == b"stop":
                sock.recv(1)  # the agent closes the connection when it has stopped
        return True
    except OSError:
        return False


def wake(location: Path) -> bool:
    """Ask the agent to look at the queue now; False when no agent of this workspace answers
    (ConfigError when the socket's only possible folder is unsafe, see :func:`socket_path`)."""
    return tell(location, b"wake")
