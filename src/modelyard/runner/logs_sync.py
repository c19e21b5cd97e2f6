"""The files a script writes in its working folder, stored among its run's files.

``./logs`` is synced every few seconds while the script runs, by what changed since the last
sync: a file that only grew (same inode, bigger, and the bytes stored before unchanged: the
CRC of that prefix, read again, is the one stored) sends just its new tail, through
``append_run_file`` (on an object store, one chunk of the tail's size; see
:mod:`modelyard.store.log_chunks`); a new file, or one rewritten, shrunk or replaced, is
uploaded whole; an unchanged one (same inode, size and mtime) is not even opened. Checking
the prefix costs a local read of what was stored, never a transfer. ``./outputs`` is synced
with ``appends=False`` once, when the script has ended: every file whole.

The script made these files, so nothing is read through a link leading out of the working
folder: the listing takes a link to a file inside as that file (as a snapshot does) and
leaves other links out, each file is opened with ``O_NOFOLLOW`` and checked to lie inside the
working folder as opened (a link swapped in after the listing is not followed), and the
store's own temporary names are left alone.

Example::

    logs = LogsFolderSync(backend, run_id, workdir, "logs", say=print)
    logs.sync()     # new files whole, grown ones by their tails
"""

from __future__ import annotations

import io
import os
import stat
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from modelyard.backend.base import Backend
from modelyard.names import TMP_PREFIX
from modelyard.runner.log_shipping import MAX_CALL_BYTES
from modelyard.store import local_tree

_READ_BYTES = 1 << 20


@dataclass(frozen=True)
class _Stored:
    """What the store holds of one file, as of the last sync."""

    inode: int
    size: int
    mtime_ns: int
    # CRC-32 of the file's first ``size`` bytes, the ones stored: it tells a rewrite by the
    # script's own code (not an adversary: a script fooling it garbles only its own logs), at
    # about 3 GB/s here against 250 MB/s for SHA-256.
    crc: int


class LogsFolderSync:
    """Syncs ``<workdir>/<folder_name>`` into the run's files; see the module docstring.
    ``say`` gets a line for the supervisor's log (a folder that is a link)."""

    def __init__(
        self,
        backend: Backend,
        run_id: str,
        workdir: Path,
        folder_name: str = "logs",
        say: Callable[[str], None] = print,
        *,
        appends: bool = True,
    ) -> None:
        self.backend = backend
        self.run_id = run_id
        self.workdir = workdir
        self.folder_name = folder_name
        self.say = say
        self.appends = appends
        self._stored: dict[str, _Stored] = {}

    def sync(self) -> None:
        """Store what changed in the folder since the last call."""
        folder = self.workdir / self.folder_name
        if folder.is_symlink():
            self.say(f"./{self.folder_name} is a symbolic link; its files are not uploaded")
            return
        if not folder.is_dir():
            return
        found, _ = local_tree.list_source_files(os.fspath(folder))
        for source, relpath in found:
            if any(part.startswith(TMP_PREFIX) for part in relpath.split("/")):
                continue
            name = f"{self.folder_name}/{relpath}"
            try:
                listed = os.stat(source, follow_symlinks=False)
            except OSError:
                continue
            known = self._stored.get(name)
            if known is not None and (listed.st_ino, listed.st_size, listed.st_mtime_ns) == (
                known.inode,
                known.size,
                known.mtime_ns,
            ):
                continue  # unchanged since the last sync: not even opened
            fd = _open_inside(source, self.workdir)
            if fd is None:
                continue
            with os.fdopen(fd, "rb") as file:
                info = os.fstat(file.fileno())  # the mtime of what is read from here on
                stored = self._append_tail(name, file, info, known) if known else None
                if stored is None:
                    stored = self._upload_whole(name, file, info)
            self._stored[name] = stored

    def _append_tail(
        self, name: str, file: IO[bytes], info: os.stat_result, known: _Stored
    ) -> _Stored | None:
        """Append what ``file`` holds past the stored prefix, when it only grew; None when
        it must be uploaded whole instead."""
        if not self.appends or info.st_ino != known.inode or info.st_size < known.size:
            return None
        crc = 0
        left = known.size
        while left:
            block = file.read(min(left, _READ_BYTES))
            if not block:
                return None  # shrunk meanwhile
            crc = zlib.crc32(block, crc)
            left -= len(block)
        if crc != known.crc:
            return None  # the stored bytes were rewritten: the store's copy is stale
        size = known.size
        # Up to the size seen at open: bytes written after that go in the next sync.
        while size < info.st_size and (
            block := file.read(min(info.st_size - size, MAX_CALL_BYTES))
        ):
            self.backend.append_run_file(self.run_id, name, size, block)
            crc = zlib.crc32(block, crc)
            size += len(block)
        return _Stored(info.st_ino, size, info.st_mtime_ns, crc)

    def _upload_whole(self, name: str, file: IO[bytes], info: os.stat_result) -> _Stored:
        file.seek(0)
        reader = _HashingReader(file)
        self.backend.upload_run_file(self.run_id, name, io.BufferedReader(reader))
        return _Stored(info.st_ino, reader.size, info.st_mtime_ns, reader.crc)


class _HashingReader(io.RawIOBase):
    """A file read once from where it stands, counting the bytes it gives and their CRC."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__()
        self._file = file
        self.size = 0
        self.crc = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._file.read(len(view))
        view[: len(data)] = data
        self.size += len(data)
        self.crc = zlib.crc32(data, self.crc)
        return len(data)


def _open_inside(path: str, root: Path) -> int | None:
    """A read descriptor of the regular file ``path`` when it lies inside ``root`` as opened
    (a link swapped in after the listing is not followed), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    real = os.path.realpath(f"/proc/self/fd/{fd}") if os.path.isdir("/proc/self/fd") else path
    if not stat.S_ISREG(os.fstat(fd).st_mode) or not Path(real).is_relative_to(root.resolve()):
        os.close(fd)
        return None
    return fd
