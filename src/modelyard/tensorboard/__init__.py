"""TensorBoard on runs' ``logs/`` folders, as v1's ``azureml.tensorboard``.

A run's script writes its event files under ``./logs``; the supervisor stores them among the
run's files while it runs. :class:`Tensorboard` copies each run's ``logs/`` files into
``local_root/<run id>/`` through the workspace's backend (so any workspace kind works: a
folder, an object store, a server), starts TensorBoard on ``local_root`` (each run a
TensorBoard run named by its id), and, while any of the runs is active, keeps copying new and
grown files in the background until the runs end.

Example::

    from modelyard.tensorboard import Tensorboard

    tb = Tensorboard([run])
    url = tb.start()        # 'http://127.0.0.1:6006/'
    ...
    tb.stop()

    with Tensorboard([run], port=0) as tb:   # a free port; stopped at the end of the block
        print(tb.url)
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from modelyard.errors import ConflictError, ValidationError
from modelyard.hosts import free_port
from modelyard.names import TMP_PREFIX
from modelyard.tensorboard.logs_copy import LogsFollower, RunLogsCopy
from modelyard.tensorboard.process import (
    TensorboardProcess,
    check_installed,
    check_port_free,
    check_port_number,
)

if TYPE_CHECKING:
    from modelyard.run import Run

DEFAULT_PORT = 6006
DEFAULT_HOST = "127.0.0.1"
# How often live runs' logs are copied: the supervisor stores them every 2 s
# (LOGS_SYNC_INTERVAL_S), so copying faster would find nothing new.
FOLLOW_INTERVAL_S = 2.0
_FREE_PORT_ATTEMPTS = 3


class Tensorboard:
    """A TensorBoard on the ``logs/`` files of ``runs`` (v1's ``Tensorboard``).

    ``local_root`` is where the logs are copied (``<local_root>/<run id>/...``); by default a
    private temporary folder, removed by :meth:`stop`. A given one is kept, as v1 kept it, and
    TensorBoard shows every run folder in it: with ``runs=[]`` it shows what an earlier
    TensorBoard copied there. ``port`` is TensorBoard's port on ``host`` (127.0.0.1: this
    machine only); ``port=0`` or None takes a free one. ``use_display_name`` names each
    TensorBoard run by its run's display name instead of its id. Child runs are not
    included (as in v1): pass them in ``runs`` to see them.

    Example::

        tb = Tensorboard([run], local_root="./tb-logs", port=6006)
        print(tb.start())       # http://127.0.0.1:6006/
        tb.stop()
    """

    def __init__(
        self,
        runs: Sequence[Run],
        local_root: str | os.PathLike[str] | None = None,
        port: int | None = DEFAULT_PORT,
        use_display_name: bool = False,
        *,
        host: str = DEFAULT_HOST,
    ) -> None:
        if isinstance(runs, str) or not isinstance(runs, Sequence):
            raise ValidationError(
                "runs", f"expected a list of runs, got {type(runs).__name__}: Tensorboard([run])"
            )
        if not runs and local_root is None:
            raise ValidationError(
                "runs", "no runs given: pass a list of runs, or a local_root that holds logs"
            )
        for index, run in enumerate(runs):
            if not hasattr(run, "_backend") or not hasattr(run, "id"):
                raise ValidationError(
                    "runs", f"item {index} is a {type(run).__name__}, not a Run: Tensorboard([run])"
                )
        self._runs = list(runs)
        # Absolute now: a later chdir (a notebook's %cd) does not move it.
        self._given_root = Path(local_root).absolute() if local_root is not None else None
        # Its type and range now; whether it is free, at start().
        self._port = check_port_number(port) if port is not None else 0
        self._host = host
        self._folders = _folder_names(self._runs, use_display_name)
        self._lock = threading.Lock()
        self._process: TensorboardProcess | None = None
        self._follower: LogsFollower | None = None
        self._root: Path | None = None
        self._private: Path | None = None
        self.url: str | None = None

    @property
    def local_root(self) -> Path | None:
        """Where the runs' logs are copied, once started."""
        return self._root

    def start(self, start_browser: bool = False) -> str:
        """Copy the runs' logs, start TensorBoard and return its URL once it answers; the
        logs of runs still active are followed from then on. ``start_browser`` opens the URL
        in this machine's browser too.

        Raises ConflictError when already started or when the port is in use, ConfigError
        when TensorBoard is not installed. A run with no ``logs/`` yet is no error: it
        appears in TensorBoard once it writes some.

        Example::

            url = Tensorboard([run], port=0).start()
        """
        with self._lock:
            if self._process is not None:
                raise ConflictError(f"this Tensorboard is running already, at {self.url}")
            check_installed()
            self._private = Path(tempfile.mkdtemp(prefix="modelyard-tensorboard-"))
            self._root = self._given_root or self._private / "logs"
            try:
                copies = [
                    RunLogsCopy(run._backend, run.id, self._root, folder)
                    for run, folder in zip(self._runs, self._folders, strict=True)
                ]
                # Asked before the first copy: a run that ends after it is still followed,
                # so nothing it stores in between is missed.
                active = [copy for copy in copies if copy.is_active()]
                for copy in copies:
                    copy.sync()  # what is there now, before TensorBoard first looks
                self.url = self._start_process()
            except BaseException:  # Ctrl-C while it starts too: nothing is left running
                if self._process is not None:
                    self._process.stop()
                    self._process = None
                self._cleanup()
                raise
            self._follower = LogsFollower(active, FOLLOW_INTERVAL_S)
            self._follower.start()
            atexit.register(self.stop)
        if start_browser:
            webbrowser.open(self.url)
        return self.url

    def _start_process(self) -> str:
        """Start TensorBoard and wait for it; a free port taken by another process before
        TensorBoard binds it (it takes seconds to start) is replaced by another."""
        attempts = 1 if self._port else _FREE_PORT_ATTEMPTS
        assert self._private is not None and self._root is not None
        for attempt in range(1, attempts + 1):
            port = self._port or free_port(self._host)
            check_port_free(self._host, port)
            # Its log beside, not in, the folder it reads.
            log_path = self._private / "tensorboard.txt"
            self._process = TensorboardProcess.start(self._root, self._host, port, log_path)
            try:
                return self._process.wait_until_answering()
            except ConflictError:
                self._process = None  # stopped already
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    @property
    def following(self) -> bool:
        """Whether logs of active runs are still being copied."""
        return self._follower is not None and self._follower.running

    def stop(self) -> None:
        """Stop TensorBoard (and the processes it started) and the copying of logs; returns
        once they are gone. Stopping one not started, or stopped, does nothing.

        Example::

            tb.stop()
        """
        with self._lock:
            atexit.unregister(self.stop)
            if self._follower is not None:
                self._follower.stop()
                self._follower = None
            if self._process is not None:
                self._process.stop()
                self._process = None
            self._cleanup()

    def _cleanup(self) -> None:
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None

    def __enter__(self) -> Tensorboard:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Tensorboard(runs={[run.id for run in self._runs]!r}, url={self.url!r})"


def _folder_names(runs: Sequence[Run], use_display_name: bool) -> list[str]:
    """Each run's folder below the local root: its id, or its display name when asked (one
    path part, each once)."""
    names = [(run.display_name or run.id) if use_display_name else run.id for run in runs]
    seen: dict[str, str] = {}
    for run, name in zip(runs, names, strict=True):
        if (
            not name
            or "/" in name
            or "\\" in name
            or "\x00" in name
            or name in (".", "..")
            or name.startswith(TMP_PREFIX)
        ):
            raise ValidationError(
                "use_display_name",
                f"run {run.id}'s display name {name!r} cannot name a folder (it has a '/' or "
                "is empty, '.' or '..'); pass use_display_name=False to name it by its id",
            )
        if name in seen:
            raise ValidationError(
                "runs" if not use_display_name else "use_display_name",
                f"runs {seen[name]} and {run.id} would share the folder {name!r}: pass each run "
                "once, with distinct display names",
            )
        seen[name] = run.id
    return names


__all__ = ["Tensorboard"]
