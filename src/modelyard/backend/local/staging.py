"""Locks that mark a model upload as alive while its files are staged.

``Model.register`` copies a model's files under ``models/<name>/<upload id>`` before the
version's row exists. A process killed halfway would leave them there for ever, so each upload
holds an exclusive ``flock`` on ``models/.staging/<upload id>.lock`` (which names the staging
folder) until its row is written. The kernel drops the lock when the process dies, however it
dies, so a lock that can be taken marks an abandoned upload; a process id in a file could not
say as much, since ids are reused.

Only stores on the local filesystem have these locks; on an object store staging is not swept.

Example::

    locks = StagingLocks(Path("ws/artifacts/models/.staging"))
    locks.hold("0f3c...", "models/mnist/0f3c...")
    ...                                   # stage files, write the row
    locks.release("0f3c...")
    for staging, forget in locks.abandoned():
        ...                               # delete the staging folder, then
        forget()
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from modelyard.store.private import make_private_folder

# A lock file is written under a temporary name, locked, then renamed: a sweeper never sees
# one that is not locked yet. A temporary file this old belongs to a process that died in
# between (a matter of microseconds), so it can go.
_TEMP_MAX_AGE_S = 3600.0

# Locks this process holds, by lock file path: file descriptors, closed on release.
_held: dict[str, int] = {}
_held_lock = threading.Lock()


class StagingLocks:
    """The lock files of one store's model uploads, in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, upload_id: str) -> Path:
        return self.folder / f"{upload_id}.lock"

    def hold(self, upload_id: str, staging: str) -> None:
        """Mark the upload ``upload_id``, staged at ``staging``, alive until :meth:`release`
        or the end of this process. Holding it again is a no-op."""
        path = str(self._path(upload_id))
        with _held_lock:
            if path in _held:
                return
            make_private_folder(self.folder)
            temp = self.folder / f".{upload_id}.{uuid.uuid4().hex}.tmp"
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.write(fd, staging.encode())
                os.replace(temp, path)
            except BaseException:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
            _held[path] = fd

    def holds(self, upload_id: str) -> bool:
        """Whether this process holds the upload's lock."""
        with _held_lock:
            return str(self._path(upload_id)) in _held

    def release(self, upload_id: str) -> None:
        """The upload is done (its row is written): drop its lock file."""
        path = str(self._path(upload_id))
        with _held_lock:
            fd = _held.pop(path, None)
            if fd is None:
                return
            # Unlink before close: while the file exists, it is locked.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.close(fd)

    def abandoned(self) -> Iterator[tuple[str, Callable[[], None]]]:
        """The staging folders of uploads whose process is gone, each with a function that
        forgets the upload (call it once its folder is dealt with). While the caller handles
        one, it holds that upload's lock, so two sweepers never work on one upload."""
        try:
            entries = list(os.scandir(self.folder))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    if time.time() - entry.stat().st_mtime > _TEMP_MAX_AGE_S:
                        os.unlink(entry.path)
                continue
            if not entry.name.endswith(".lock") or entry.path in _held:
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # released or swept meanwhile
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its upload is alive
                if os.fstat(fd).st_nlink == 0:
                    continue  # released or swept between scandir and open
                staging = os.read(fd, 4096).decode(errors="replace")

                def forget(path: str = entry.path) -> None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)

                yield staging, forget
            finally:
                os.close(fd)
