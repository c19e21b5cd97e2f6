"""The scoring service's process: started in a session of its own, waited for, stopped.

The service runs as ``python -m modelyard.serving runtime.json`` of the interpreter the
deployment chose, in its own session and process group (uvicorn's workers are its
children): one signal to the group stops them all, and closing the notebook that started it
does not. Its output goes to a log file, read by ``get_logs()``.

Example::

    pid = start_service(python, folder / "runtime.json", folder / "service.log", env)
    answers("http://127.0.0.1:6789/")          # True once init() has returned
    stop_group(pid)
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from modelyard.errors import ConflictError
from modelyard.hosts import bind_error
from modelyard.runner.process_identity import group_alive, is_running

# TensorFlow alone takes 7-13 s to import here (DESIGN.md, section 7); init() loads a model.
START_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 10.0


_children: dict[int, subprocess.Popen[bytes]] = {}


def start_service(
    python: str,
    settings_file: Path,
    log_path: Path,
    env: Mapping[str, str],
    pass_fds: Sequence[int] = (),
) -> int:
    """Start the service process; returns its pid (also its process group's id). It inherits
    ``pass_fds`` (the lease on its built environment, which it holds while it lives)."""
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            [python, "-m", "modelyard.serving", os.fspath(settings_file)],
            # `python -m` puts its working folder first on sys.path: the service's own folder
            # holds nothing that could shadow a library.
            cwd=settings_file.parent,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    # Reaped by reap() when it ends while this process lives, by init after.
    _children[popen.pid] = popen
    return popen.pid


def reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is a service this process started and it has
    ended, so that it is not taken for running (a zombie still has its pid)."""
    popen = _children.get(pid)
    if popen is not None and popen.poll() is not None:
        del _children[pid]


def service_running(pid: int, recorded_start: int | None) -> bool:
    """Whether the service process recorded as (``pid``, ``recorded_start``) still runs: a
    zombie, ended but not yet reaped by the process that started it, does not."""
    reap(pid)
    return is_running(pid, recorded_start) and not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return data.rsplit(b")", 1)[1].split()[:1] == [b"Z"]


def check_port_free(host: str, port: int) -> None:
    """ConflictError naming the port when something listens on it already."""
    error = bind_error(host, port)
    if error is None:
        return
    if error.errno == errno.EADDRINUSE:
        raise ConflictError(
            f"port {port} on {host} is in use already (another service or program "
            "listens there): pass another port to deploy_configuration(port=...), or "
            "leave it out for a free one"
        )
    raise error


def wait_port_free(host: str, port: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """:func:`check_port_free`, allowing the port ``timeout`` seconds to be let go: a killed
    service's listening socket can outlive its last process by a moment (seen here right
    after SIGKILL), and a restart on the same port must not fail for that."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check_port_free(host, port)
            return
        except ConflictError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether the health route at ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop_group(group: int) -> None:
    """Stop every process of ``group`` (SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT_S`);
    returns once they are gone. Idempotent."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGTERM)
    if not _wait_gone(group, STOP_TIMEOUT_S):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
        _wait_gone(group, STOP_TIMEOUT_S)


def _wait_gone(group: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        reap(group)
        if not group_alive(group):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
