"""Files and folders that only their owner may read: the workspace, its database, its config
and secrets files.

Files are created with ``open``'s mode 0600, which a umask can only narrow, then set to
exactly 0600 with ``fchmod`` before any byte is written, so no umask (022, 000 or 277) changes
who can read them. Folders get ``chmod`` 0700 after ``mkdir``.

Example::

    make_private_folder(Path("ws"))                    # ws/ is 0700
    write_private_file(Path("ws/secrets.json"), b"{}")  # 0600, whole or not at all
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` (and missing parents, with the usual umask) and make it 0700.

    An existing folder is made 0700 too: this is for folders that hold the workspace's own
    state, never for a user's folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, PRIVATE_FOLDER_MODE)


def create_private_file(path: Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; True when this call made it.

    For files another program fills in place (SQLite's database file): SQLite gives its
    ``-wal`` and ``-shm`` files the mode of the database file, so creating that one 0600 first
    keeps all three private whatever the umask.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    return True


def write_private_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically: a temporary file beside it, made
    0600 before the first byte is written, then renamed over ``path``. The parent folder must
    exist. Readers see the old contents or the new ones, never a mix, and never a moment when
    the file is readable by others.

    Example::

        write_private_file(folder / "config.json", b'{"workspace_name": "demo"}')
    """
    write_file_atomically(path, data, PRIVATE_FILE_MODE)


def write_file_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` atomically, as :func:`write_private_file` does, ending with
    permission bits ``mode`` (the temporary file is 0600 until then; a link at ``path`` is
    replaced, never followed). For a file rewritten in place that keeps its mode.

    Example::

        write_file_atomically(script, new_source, script.stat().st_mode)
    """
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        try:
            os.fchmod(fd, PRIVATE_FILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode & 0o7777)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)  # the rename itself survives a crash
    finally:
        os.close(folder)
