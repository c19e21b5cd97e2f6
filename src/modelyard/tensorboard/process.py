"""The TensorBoard process: started on a folder and a port, waited for, stopped with its group.

TensorBoard runs as ``python -m tensorboard.main`` of this interpreter, in a process group of
its own: its fast loader starts a data server process of its own, and stopping the group stops
both. Its output goes to a file, so that a failed start can say why (``could not bind to port
6006``) without a pipe that nobody reads filling up.

Example::

    process = TensorboardProcess.start(Path("/tmp/tb"), "127.0.0.1", 6006, log_path)
    process.wait_until_answering()     # the URL, once TensorBoard serves
    process.stop()
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from modelyard.errors import ConfigError, ConflictError, ModelyardError, ValidationError
from modelyard.hosts import bind_error
from modelyard.runner.process_identity import group_alive

# TensorBoard imports TensorFlow when it is installed: 7-13 s here (DESIGN.md, section 7), more
# on a busy machine.
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 10.0
# How often TensorBoard looks for new event data (its default is 5 s): live runs' points show
# within about this plus the copy's interval.
RELOAD_INTERVAL_S = 2
_INSTALL = "pip install 'modelyard[tensorflow]' (or pip install tensorboard)"


def check_installed() -> None:
    """ConfigError saying how to install TensorBoard, when this interpreter has none."""
    try:
        found = importlib.util.find_spec("tensorboard") is not None
    except (ImportError, ValueError):  # a broken install, or an import hook refusing it
        found = False
    if not found:
        raise ConfigError(
            f"TensorBoard is not installed for {sys.executable}; install it with: {_INSTALL}"
        )


def check_port_number(port: object) -> int:
    """``port`` when it is a port number (0: a free one), else ValidationError."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValidationError("port", f"{port!r} is not a port number: give 1 to 65535, or 0")
    return port


def check_port_free(host: str, port: int) -> None:
    """ConflictError naming the port when something listens on it (ValidationError when
    ``host`` cannot be listened on)."""
    error = bind_error(host, port)
    if error is None:
        return
    if error.errno == errno.EADDRINUSE:
        raise ConflictError(
            f"port {port} on {host} is in use already (another TensorBoard?): pass "
            "another port, or port=0 (--port 0) for a free one"
        )
    raise ValidationError("host", f"cannot listen on {host}:{port}: {error}")


def url_of(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


@dataclass
class TensorboardProcess:
    """A started TensorBoard; see the module docstring."""

    popen: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @classmethod
    def start(cls, logdir: Path, host: str, port: int, log_path: Path) -> TensorboardProcess:
        """Start TensorBoard on ``logdir`` (each folder below it a TensorBoard run named by
        the folder), listening on ``host:port`` only; its output goes to ``log_path``, in a
        folder of its own."""
        command = [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            os.fspath(logdir.absolute()),
            "--host",
            host,
            "--port",
            str(port),
            "--reload_interval",
            str(RELOAD_INTERVAL_S),
        ]
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                command,
                # `python -m` puts its working folder first on sys.path: in the caller's, a
                # notebook's `grp.py` or `tensorboard.py` would be imported in place of the
                # library's. The log's folder holds nothing importable.
                cwd=log_path.parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(popen, url_of(host, port), log_path)

    def wait_until_answering(self, timeout: float = START_TIMEOUT_S) -> str:
        """The URL once TensorBoard answers it; if it ends first or does not answer within
        ``timeout`` seconds, it is stopped and a ModelyardError quotes its last lines."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                tail = self.output_tail()
                self.stop()
                if "already in use" in tail or "could not bind" in tail:
                    raise ConflictError(
                        f"TensorBoard could not listen on {self.url}: the port is in use; "
                        f"pass another port, or port=0 (--port 0) for a free one.\n{tail}"
                    )
                raise ModelyardError(
                    f"TensorBoard ended before it answered (exit code {self.popen.returncode}); "
                    f"its last lines:\n{tail}"
                )
            try:
                with urllib.request.urlopen(self.url + "data/runs", timeout=2):
                    return self.url
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        tail = self.output_tail()
        self.stop()
        raise ModelyardError(
            f"TensorBoard did not answer on {self.url} within {timeout:.0f} s; its last "
            f"lines:\n{tail}"
        )

    def output_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def stop(self) -> None:
        """Stop TensorBoard and every process of its group (SIGTERM, then SIGKILL after
        :data:`STOP_TIMEOUT_S`); returns once they are gone. Idempotent."""
        group = self.popen.pid  # its own session: the group's id is its pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        try:
            self.popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            self.popen.wait()
        # The data server may outlive TensorBoard's own process by a moment.
        if not _wait_group_gone(group, STOP_TIMEOUT_S):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            _wait_group_gone(group, STOP_TIMEOUT_S)


def _wait_group_gone(group: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while group_alive(group):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
