"""A local copy of runs' ``logs/`` files, read through their workspace's backend, kept up to date.

TensorBoard reads event files from a local folder; a run's files may be in a workspace folder,
an object store or behind a server, so they are copied through the
:class:`~modelyard.backend.base.Backend` calls every workspace kind answers: ``logs/<path>`` of
run ``<id>`` becomes ``<local root>/<folder>/<path>``. A file seen for the first time (or one
that shrank: rewritten in the store) is written whole under a temporary name and renamed, so it
appears whole; a file that grew gets the bytes past what was copied, appended in order. The
supervisor stores event files the same way (whole, then grown by their tails), and TensorBoard's
readers expect a live event file to grow, resuming at a record cut short at its end, so no
reader sees bytes out of order. (A file rewritten in the store to a larger size is taken as
grown: event files are only ever appended to, and telling a rewrite apart would mean reading
what was copied again.)

Names from the store are relative paths checked again here: one that would leave the run's
folder (``..``, absolute) is left out with a warning, and no folder is reached through a link.

Example::

    copy = RunLogsCopy(run._backend, run.id, Path("/tmp/tb"), run.id)
    copy.sync()                     # new files whole, grown ones by their tails
    follower = LogsFollower([copy], interval=2.0)
    follower.start()                # until every run has ended, or follower.stop()
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from modelyard.backend.base import Backend, every_item
from modelyard.backend.records import TERMINAL_STATES
from modelyard.errors import ModelyardError, ValidationError
from modelyard.names import clean_relpath
from modelyard.store import local_tree

logger = logging.getLogger("modelyard.tensorboard")

LOGS_PREFIX = "logs/"
# Bytes asked for per read of a grown file: one call's worth, as the backends page them.
_READ_BYTES = 8 << 20
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class RunLogsCopy:
    """The ``logs/`` files of one run, copied into ``<local_root>/<folder>``; see the module
    docstring. ``folder`` is one path part (the run's id, or its display name)."""

    def __init__(self, backend: Backend, run_id: str, local_root: Path, folder: str) -> None:
        self.backend = backend
        self.run_id = run_id
        self.local_root = local_root
        self.folder = folder
        # Bytes of each file (its path below logs/) copied so far.
        self._copied: dict[str, int] = {}
        self._refused: set[str] = set()

    def is_active(self) -> bool:
        """Whether the run has not reached a final state yet (its logs may still grow)."""
        return self.backend.get_run(self.run_id).status not in TERMINAL_STATES

    def sync(self) -> None:
        """Copy what is new in the run's ``logs/`` since the last call."""
        listed = every_item(
            lambda limit, after: self.backend.list_run_files(
                self.run_id, LOGS_PREFIX, limit=limit, after=after
            )
        )
        where = os.fspath(self.local_root / self.folder)
        root_fd = local_tree.open_root(os.fspath(self.local_root), create=True)
        try:
            run_fd = local_tree.open_folder(
                root_fd, self.folder, create=True, field="local_root", where=where
            )
            assert run_fd is not None  # create=True makes it
        finally:
            os.close(root_fd)
        try:
            for info in listed:
                relpath = self._relpath(info.path)
                if relpath is None:
                    continue
                copied = self._copied.get(relpath)
                if copied is not None and info.size == copied:
                    continue
                if copied is None or info.size < copied:
                    self._copied[relpath] = self._copy_whole(run_fd, info.path, relpath, where)
                else:
                    self._copied[relpath] = self._append(run_fd, info.path, relpath, copied, where)
        finally:
            os.close(run_fd)

    def _relpath(self, name: str) -> str | None:
        """The local path of the stored ``logs/...`` file ``name``, or None (with a warning,
        once) when it would not stay inside the run's folder."""
        if not name.startswith(LOGS_PREFIX):
            return None
        try:
            return clean_relpath("name", name[len(LOGS_PREFIX) :])
        except ValidationError as error:
            if name not in self._refused:
                self._refused.add(name)
                logger.warning("run %s: %r is not copied: %s", self.run_id, name, error)
            return None

    def _copy_whole(self, run_fd: int, name: str, relpath: str, where: str) -> int:
        size = 0
        with (
            self.backend.open_run_file(self.run_id, name) as source,
            local_tree.open_write_at(run_fd, relpath, field="local_root", where=where) as out,
        ):
            while chunk := source.read(_READ_BYTES):
                out.write(chunk)
                size += len(chunk)
        return size

    def _append(self, run_fd: int, name: str, relpath: str, copied: int, where: str) -> int:
        parent, _, base = relpath.rpartition("/")
        folder = local_tree.open_folder(
            run_fd, parent, create=False, field="local_root", where=where
        )
        if folder is None:  # removed here since the last sync: copied again
            return self._copy_whole(run_fd, name, relpath, where)
        try:
            try:
                fd = os.open(base, _APPEND, dir_fd=folder)
            except OSError as error:
                if error.errno not in (errno.ENOENT, errno.ELOOP):
                    raise
                # Gone, or a link put in its place: written whole again, the link replaced.
                return self._copy_whole(run_fd, name, relpath, where)
        finally:
            os.close(folder)
        with os.fdopen(fd, "ab") as out:
            if out.seek(0, os.SEEK_END) != copied:  # changed here since: start it again
                return self._copy_whole(run_fd, name, relpath, where)
            while chunk := self.backend.read_run_file(self.run_id, name, copied, _READ_BYTES):
                out.write(chunk)
                copied += len(chunk)
        return copied


class LogsFollower:
    """A background thread that syncs ``copies`` every ``interval`` seconds while any of
    their runs is active, and ends after the sync that follows the last run's end (or at
    :meth:`stop`). A failed round (the store briefly away) is logged and tried again."""

    def __init__(self, copies: Iterable[RunLogsCopy], interval: float) -> None:
        self.copies = list(copies)
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._follow, name="modelyard-tensorboard-logs", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop following and wait for the round under way to end."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _follow(self) -> None:
        active = list(self.copies)
        while active and not self._stopping.wait(self.interval):
            try:
                # Asked before the sync: a run found ended has stored all its logs, so this
                # round's copy of them is its last.
                ended = [copy for copy in active if not copy.is_active()]
                for copy in active:
                    copy.sync()
            except (ModelyardError, OSError) as error:
                logger.warning("copying runs' logs for TensorBoard failed, will retry: %s", error)
                continue
            active = [copy for copy in active if copy not in ended]
