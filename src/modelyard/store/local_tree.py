"""Files below a local root, reached without following a symbolic link that stands below it.

The one way modelyard reads and writes inside a local root: a datastore folder, the
workspace's artifacts, a download target. The root itself is opened as given (a link the user
chose for it is followed); every folder below it is opened relative to its parent's descriptor
with ``O_NOFOLLOW | O_DIRECTORY``, and files are opened with ``O_NOFOLLOW`` and renamed within
their folder's descriptor. So a link below the root, planted before the copy started or while
it runs (a run given ``as_mount()`` can write into its datastore), never carries a read or a
write anywhere else: it raises :class:`~modelyard.errors.ValidationError` naming it.

Relative paths given here are clean already (:func:`modelyard.names.clean_relpath`).

Example::

    root = open_root("/data/ds", create=True)
    folder = open_folder(root, "mnist/train", create=True, field="target_path", where="/data/ds")
    write_file(folder, "labels.txt", b"0 1 2")
    os.close(folder)
    os.close(root)
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import IO

from modelyard.errors import ConflictError, UserError, ValidationError
from modelyard.names import TMP_PREFIX, temp_name

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC
# O_NONBLOCK: a FIFO planted where a file was expected must not block the reader for ever.
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC


def open_root(root: str, *, create: bool = False) -> int:
    """A descriptor of the folder ``root`` (followed if it is a link: the caller chose it);
    with ``create`` it is made, with its parents, when missing."""
    if create:
        os.makedirs(root, exist_ok=True)
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)


def open_folder(
    root_fd: int, relfolder: str, *, create: bool, field: str, where: str
) -> int | None:
    """A descriptor of ``relfolder`` below the root, each part opened without following links.

    Missing parts are made with ``create``, else the answer is None. A part that is a link or
    a file raises ValidationError (``field`` and ``where`` name the argument and the root in
    the message). The caller closes the descriptor.
    """
    fd = os.dup(root_fd)
    done: list[str] = []
    try:
        for part in relfolder.split("/") if relfolder else ():
            child = _open_child(fd, part, done, field, where)
            if child is None:
                if not create:
                    os.close(fd)
                    return None
                with contextlib.suppress(FileExistsError):  # another writer made it meanwhile
                    os.mkdir(part, 0o777, dir_fd=fd)
                child = _open_child(fd, part, done, field, where)
                if child is None:
                    raise FileNotFoundError(errno.ENOENT, "removed as it was made", part)
            os.close(fd)
            fd = child
            done.append(part)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_child(fd: int, part: str, done: list[str], field: str, where: str) -> int | None:
    """The folder ``part`` in ``fd``, opened without following a link; None when missing."""
    try:
        return os.open(part, _FOLDER, dir_fd=fd)
    except FileNotFoundError:
        return None
    except OSError as error:
        # O_NOFOLLOW | O_DIRECTORY on a link gives ENOTDIR on Linux, ELOOP elsewhere.
        if error.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        raise _not_a_folder(fd, part, done, field, where) from None


def _not_a_folder(fd: int, part: str, done: list[str], field: str, where: str) -> UserError:
    relpath = "/".join([*done, part])
    if is_link(fd, part):
        return ValidationError(
            field,
            f"{relpath!r} in {where} is a symbolic link; links inside it are not followed: "
            "remove the link, or choose another path",
        )
    return ConflictError(
        f"{relpath!r} in {where} is a file, not a folder: a file and a folder would have one "
        "name; choose another name"
    )


def is_link(folder_fd: int, name: str) -> bool:
    info = lstat(folder_fd, name)
    return info is not None and stat.S_ISLNK(info.st_mode)


def lstat(folder_fd: int, name: str) -> os.stat_result | None:
    """What stands at ``name`` in the folder (a link itself, not what it names), or None."""
    try:
        return os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def open_file(root_fd: int, relpath: str, *, field: str, where: str) -> int | None:
    """A read descriptor of the regular file ``relpath`` below the root, or None when there is
    none. A link anywhere on the way, or at the file itself, raises ValidationError."""
    parent, _, name = relpath.rpartition("/")
    folder = open_folder(root_fd, parent, create=False, field=field, where=where)
    if folder is None:
        return None
    try:
        try:
            fd = os.open(name, _READ, dir_fd=folder)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise ValidationError(
                    field,
                    f"{relpath!r} in {where} is a symbolic link; links inside it are not followed",
                ) from None
            if error.errno == errno.EISDIR:
                return None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ValidationError(field, f"{relpath!r} in {where} is not a regular file")
        return fd
    finally:
        os.close(folder)


def create_temp(folder_fd: int, mode: int = 0o666) -> tuple[str, int]:
    """A new file under a temporary name in the folder: (its name, a write descriptor)."""
    name = temp_name()
    return name, os.open(name, _CREATE, mode, dir_fd=folder_fd)


def replace(folder_fd: int, temp: str, name: str) -> None:
    """Rename ``temp`` to ``name`` in the folder; a link at ``name`` is replaced, not followed."""
    os.replace(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)


def place(folder_fd: int, temp: str, name: str, overwrite: bool) -> bool:
    """Rename ``temp`` to ``name``; with ``overwrite`` False only if nothing (not even a link)
    stands at ``name``, decided by the kernel at that instant. Return whether it was placed."""
    if overwrite:
        replace(folder_fd, temp, name)
        return True
    try:
        os.link(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd, follow_symlinks=False)
    except FileExistsError:
        remove(folder_fd, temp)
        return False
    except OSError:
        # No hard links on this filesystem (FAT, some network mounts): check, then rename.
        if lstat(folder_fd, name) is not None:
            remove(folder_fd, temp)
            return False
        replace(folder_fd, temp, name)
        return True
    remove(folder_fd, temp)
    return True


def remove(folder_fd: int, name: str) -> None:
    """Remove the file or link ``name`` from the folder; a missing one is no error."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=folder_fd)


def write_file(folder_fd: int, name: str, data: bytes) -> None:
    """Write ``name`` in the folder whole: a temporary name first, then a rename."""
    temp, fd = create_temp(folder_fd)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        replace(folder_fd, temp, name)
    except BaseException:
        remove(folder_fd, temp)
        raise


@contextlib.contextmanager
def open_write_at(root_fd: int, relpath: str, *, field: str, where: str) -> Iterator[IO[bytes]]:
    """Open ``relpath`` below the open root for writing; it appears, whole, only when the block
    ends cleanly. Missing folders are made; none is reached through a link (ValidationError);
    a link at the file's own name is replaced, not written through."""
    parent, _, name = relpath.rpartition("/")
    folder = open_folder(root_fd, parent, create=True, field=field, where=where)
    assert folder is not None  # create=True makes it
    try:
        temp, fd = create_temp(folder)
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
            replace(folder, temp, name)
        except BaseException:
            remove(folder, temp)
            raise
    finally:
        os.close(folder)


def check_folders(root: str, relpaths: Iterable[str], *, field: str) -> None:
    """Raise ValidationError when a link or a file stands where a folder of one of the files
    ``relpaths`` below ``root`` goes: the check before writing any of them."""
    try:
        root_fd = open_root(root)
    except FileNotFoundError:
        return  # nothing is below a folder that does not exist yet
    try:
        for folder in sorted({relpath.rpartition("/")[0] for relpath in relpaths}):
            fd = open_folder(root_fd, folder, create=False, field=field, where=root)
            if fd is not None:
                os.close(fd)
    finally:
        os.close(root_fd)


@contextlib.contextmanager
def open_write(root: str, relpath: str, *, field: str) -> Iterator[IO[bytes]]:
    """:func:`open_write_at` below the folder ``root`` (made when missing)."""
    root_fd = open_root(root, create=True)
    try:
        with open_write_at(root_fd, relpath, field=field, where=root) as out:
            yield out
    finally:
        os.close(root_fd)


def remove_tree(root_fd: int, relpath: str, *, field: str, where: str) -> None:
    """Remove ``relpath`` (a file, a link, or a folder and all below it); links are removed,
    never followed. A missing path is no error."""
    parent, _, name = relpath.rpartition("/")
    folder = open_folder(root_fd, parent, create=False, field=field, where=where)
    if folder is None:
        return
    try:
        info = lstat(folder, name)
        if info is None:
            return
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(name, dir_fd=folder)
        else:
            remove(folder, name)
    finally:
        os.close(folder)


def walk_files(folder_fd: int, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(relative path, size) of every regular file below the folder, in no order.

    Links, and whatever a link to a folder leads to, are left out; so are temporary files.
    ``prefix`` is put before each path (``"a/"`` gives ``a/b.txt``).
    """
    with os.scandir(folder_fd) as entries:
        children = list(entries)
    for entry in children:
        if entry.is_dir(follow_symlinks=False):
            try:
                child = os.open(entry.name, _FOLDER, dir_fd=folder_fd)
            except OSError as error:
                if error.errno in (errno.ENOTDIR, errno.ELOOP, errno.ENOENT):
                    continue  # replaced by a link or removed since it was listed
                raise
            try:
                yield from walk_files(child, f"{prefix}{entry.name}/")
            finally:
                os.close(child)
        elif entry.is_file(follow_symlinks=False) and not entry.name.startswith(TMP_PREFIX):
            try:
                size = entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
            yield prefix + entry.name, size


def linked_file_inside(link: str, root_real: str) -> str | None:
    """The real path a link names when that is a regular file inside ``root_real`` (a
    realpath), else None: the rule for links in a folder that is read (a snapshot's source, an
    upload's ``src_dir``, a model's folder)."""
    real = os.path.realpath(link)
    if not real.startswith(root_real + os.sep):
        return None
    info = lstat_path(real)
    return real if info is not None and stat.S_ISREG(info.st_mode) else None


def lstat_path(path: str) -> os.stat_result | None:
    try:
        return os.stat(path, follow_symlinks=False)
    except OSError:
        return None


def list_source_files(folder: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The files of a folder that is read whole (an upload's ``src_dir``, a model's folder),
    by a snapshot's rule for links: (path to read, relative path) of each, sorted by relative
    path, and the relative paths left out.

    A link to a regular file inside ``folder`` is taken as that file (its real path is the one
    to read); links to folders, links leading out, broken links and special files are left
    out. Plain string joins: os.path.relpath costs more than the copy of a small file.
    """
    root_real = os.path.realpath(folder)
    found: list[tuple[str, str]] = []
    skipped: list[str] = []
    pending = [(folder, "")]
    while pending:
        path, rel = pending.pop()
        with os.scandir(path) as entries:
            for entry in entries:
                name = rel + entry.name
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, name + "/"))
                elif entry.is_file(follow_symlinks=False):
                    found.append((entry.path, name))
                elif entry.is_symlink() and (real := linked_file_inside(entry.path, root_real)):
                    found.append((real, name))
                else:
                    skipped.append(name)
    found.sort(key=lambda pair: pair[1])
    skipped.sort()
    return found, skipped


def describe_skipped(skipped: list[str]) -> str:
    """The first few of the paths a walk left out, for a warning."""
    return ", ".join(skipped[:10]) + (", …" if len(skipped) > 10 else "")


def files_to_read(folder: str, doing: str, log: logging.Logger) -> list[tuple[str, str]]:
    """:func:`list_source_files` of ``folder``, warning on ``log`` of what it leaves out
    (``doing`` says what reads the folder: "upload of", "registering", ...)."""
    found, skipped = list_source_files(folder)
    if skipped:
        log.warning(
            "%s %s leaves out %d links or special files it will not follow: %s",
            doing,
            folder,
            len(skipped),
            describe_skipped(skipped),
        )
    return found


class FolderCache:
    """Descriptors of the last few folders one thread wrote to below a root.

    Files of one folder come one after another in a transfer, so a handful of open folders
    saves opening each path part again for every file. Not shared between threads.
    """

    SIZE = 8

    def __init__(self, root_fd: int, *, field: str, where: str) -> None:
        self.root_fd = root_fd
        self.field = field
        self.where = where
        self._open: OrderedDict[str, int] = OrderedDict()

    def get(self, relfolder: str) -> int:
        """The folder's descriptor (made when missing); owned by the cache."""
        fd = self._open.get(relfolder)
        if fd is not None:
            self._open.move_to_end(relfolder)
            return fd
        fd = open_folder(self.root_fd, relfolder, create=True, field=self.field, where=self.where)
        assert fd is not None  # create=True makes it
        self._open[relfolder] = fd
        if len(self._open) > self.SIZE:
            os.close(self._open.popitem(last=False)[1])
        return fd

    def close(self) -> None:
        while self._open:
            os.close(self._open.popitem()[1])


__all__ = [
    "FolderCache",
    "check_folders",
    "create_temp",
    "describe_skipped",
    "files_to_read",
    "is_link",
    "linked_file_inside",
    "list_source_files",
    "lstat",
    "open_file",
    "open_folder",
    "open_root",
    "open_write",
    "open_write_at",
    "place",
    "remove",
    "remove_tree",
    "replace",
    "walk_files",
    "write_file",
]
