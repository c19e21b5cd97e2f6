"""Small helpers for assertions shared by several test modules."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from modelyard.backend.base import Backend
from modelyard.backend.channel import ChannelBackend
from modelyard.experiment import Experiment
from modelyard.run import Run
from modelyard.runner.channel import ChannelServer
from modelyard.runner.run_scope import RunScope
from modelyard.workspace import Workspace

T = TypeVar("T")

# Unix socket paths are limited to ~100 bytes, too few for pytest's tmp_path: the tests' sockets
# go to one short folder of this test process, removed when it ends.
_SOCKETS = Path(tempfile.mkdtemp(prefix="my-sockets-"))
atexit.register(shutil.rmtree, _SOCKETS, ignore_errors=True)


def short_socket_path() -> str:
    """A path for a new Unix socket, short enough for any platform's limit."""
    return str(Path(tempfile.mkdtemp(dir=_SOCKETS)) / "s")


def tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` with its bytes: to assert that nothing was written."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def wait_for(condition: Callable[[], T], timeout: float = 60.0, interval: float = 0.05) -> T:
    """Poll ``condition`` until it returns something true, and return that; fail after
    ``timeout`` seconds (a deadline, not a sleep: the test goes on as soon as it can)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def start_together(args_list: list[list[str]], forbidden: tuple[str, ...] = ()) -> list[str]:
    """Run ``python -c ARGS`` for each of ``args_list`` as processes that start their work at
    once (each reads a line of stdin first); return their stripped outputs. Each must succeed
    with no word of ``forbidden`` in its stderr (case-insensitive)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in args_list
    ]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        for word in forbidden:
            assert word not in err.lower(), err
        outputs.append(out.strip())
    return outputs


@dataclass
class ScriptSide:
    """A run as its script sees it: ``run`` reaches it through the channel ``server`` (a
    supervisor's, started, listening at ``socket_path``, bound to the run by ``scope``)."""

    run: Run
    socket_path: str
    scope: RunScope
    server: ChannelServer


def serve_to_script(workspace: Workspace, run: Run) -> ScriptSide:
    """Start a channel server for ``run`` and return the run as its script sees it; the
    caller stops ``server`` (and may start another on ``socket_path``)."""
    socket_path = short_socket_path()
    scope = RunScope(workspace._backend, run.id, run.experiment.name, workspace.folder, set())
    server = ChannelServer(workspace._backend, socket_path, scope)
    server.start()
    client = ChannelBackend(socket_path, workspace.name)  # type: ignore[abstract]
    script_ws = Workspace._attached(workspace.name, workspace._id + "-script", client)
    script_run = Run(Experiment(script_ws, run.experiment.name), run.id)
    return ScriptSide(script_run, socket_path, scope, server)


class UnscopedForTransportTests(RunScope):
    """A scope that allows every call, for tests of the channel's transport only (records,
    errors, streams, pages, retries across the socket): the contract suite run through the
    channel. Real supervisors use :class:`RunScope`, whose rules test_run_scope.py checks."""

    def __init__(self, backend: Backend, workdir: Path) -> None:
        super().__init__(backend, "", "", workdir, set())

    def authorize(self, method: str, arguments: dict[str, Any]) -> None:
        pass

    def check_source(self, field: str, path: Path) -> Path:
        return path

    def answer(self, method: str, arguments: dict[str, Any], result: Any) -> Any:
        return result

    def record_wish(self, arguments: dict[str, Any]) -> None:
        return None


@contextmanager
def channel_to(backend: Backend, scope: RunScope) -> Iterator[ChannelBackend]:
    """A script-side client of a channel server serving ``backend`` within ``scope`` (a real
    Unix socket, in a short temporary folder: socket paths are limited to ~100 bytes)."""
    socket_path = short_socket_path()
    server = ChannelServer(backend, socket_path, scope)
    server.start()
    try:
        yield ChannelBackend(socket_path, "ws", str(scope.workdir))  # type: ignore[abstract]
    finally:
        server.stop()


def interrupt(process: subprocess.Popen[str], timeout: float) -> None:
    """Press Ctrl-C for ``process`` (SIGINT) and wait up to ``timeout`` s for it to end.

    If it does not end, fail saying whether it could get the signal at all (blocked or
    ignored: both are inherited from the process that started it) and, for a Python child
    started with ``PYTHONFAULTHANDLER=1``, where its threads were (SIGABRT makes it print
    them on its stderr, read here when it is a pipe nobody else reads).
    """
    status = Path(f"/proc/{process.pid}/status").read_text()
    bit = 1 << (signal.SIGINT - 1)
    state = {
        line.split(":")[0]: bool(int(line.split()[1], 16) & bit)
        for line in status.splitlines()
        if line.startswith(("SigBlk", "SigIgn", "SigCgt"))
    }
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        process.wait(timeout=30)
        stacks = process.stderr.read() if process.stderr is not None else ""
        raise AssertionError(
            f"pid {process.pid} did not end within {timeout} s of SIGINT; SIGINT was "
            f"blocked/ignored/caught: {state}; its stderr:\n{stacks}"
        ) from None


def run_cli(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``modelyard ARGS`` as a user's shell runs it: a process of its own in ``cwd``, which
    finds its workspace from there (the suite's ``MODELYARD_CONFIG`` is not passed on)."""
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
