"""File storage under one root, on any fsspec filesystem, with atomic writes.

A :class:`FileStore` is a root URL (``file:///ws/artifacts``, ``memory://x``, ``s3://bucket/p``)
and the relative paths below it. Every relative path goes through
:func:`modelyard.names.clean_relpath`, so nothing is written outside the root. Writes go to a
temporary name beside the target and are renamed into place, so a reader never sees half a
file; on object stores, where a PUT is already all-or-nothing and rename is a copy, the file is
written directly.

A live log (a file grown by :meth:`FileStore.append`) is appended to in place on the local
filesystem; on an object store it is kept as chunks beside its name (layout in
:mod:`modelyard.store.log_chunks`), which every reading method (``open_read``, ``read_range``,
``size``, ``exists``, ``list``) joins back into the file's bytes, and ``delete`` removes.

On the local filesystem every path below the root is reached through
:mod:`modelyard.store.local_tree`, without following symbolic links: a link in the way of a
write or a read raises :class:`~modelyard.errors.ValidationError` naming it, ``list`` leaves
links out (and whatever a link to a folder leads to), and ``exists`` / ``size`` see a link as
no file. Links have no place in a store (modelyard never makes one there), but a run given
``as_mount()`` of a local datastore can plant one; this keeps it from carrying a later write or
read anywhere else on the disk.

Example::

    store = FileStore("memory://demo")
    with store.open_write("a/b.txt") as f:
        f.write(b"hello")
    store.read_bytes("a/b.txt")          # b'hello'
    [i.path for i in store.list("a")]    # ['a/b.txt']
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import functools
import inspect
import io
import os
import shutil
import stat
import tempfile
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar, cast

import fsspec
import fsspec.asyn
from fsspec.implementations.local import LocalFileSystem

from modelyard.backend.records import FileInfo
from modelyard.errors import (
    ConflictError,
    ModelyardError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from modelyard.names import TMP_PREFIX, clean_relpath, temp_name
from modelyard.store import local_tree, log_chunks
from modelyard.store.local_copy import copy_fd

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | _CLOEXEC
_RENAMING_PROTOCOLS = {"file", "local", "memory"}
# Most file systems (ext4, xfs, btrfs, tmpfs, APFS) allow 255 bytes per name.
_NAME_MAX = 255

# What s3fs lets through untranslated when an S3 endpoint does not answer (a connection
# closed or refused): botocore's own errors. Without the s3 extra there are none.
try:
    from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]

    _TRANSLATED: tuple[type[Exception], ...] = (OSError, BotoCoreError)
except ImportError:
    _TRANSLATED = (OSError,)

_P = ParamSpec("_P")
_T = TypeVar("_T")


def s3_storage_options(
    endpoint_url: str | None = None, environ: Mapping[str, str] = os.environ
) -> dict[str, Any]:
    """The fsspec options of an S3-compatible store: its endpoint (None: AWS's own), and the
    key and secret of ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` when they are set.
    Given to ``Workspace.create``, they are kept in its private ``workspace.json``: the local
    compute agent, which opens the store for the runs, does not inherit a client's AWS
    variables.

    Example::

        s3_storage_options("http://minio:9000")
        # {'client_kwargs': {'endpoint_url': 'http://minio:9000'}, 'key': ..., 'secret': ...}
    """
    options: dict[str, Any] = {}
    if endpoint_url:
        options["client_kwargs"] = {"endpoint_url": endpoint_url}
    if environ.get("AWS_ACCESS_KEY_ID"):
        options["key"] = environ["AWS_ACCESS_KEY_ID"]
        options["secret"] = environ.get("AWS_SECRET_ACCESS_KEY", "")
    return options


def local_url(folder: Path) -> str:
    """The fsspec URL of a local folder.

    Not ``Path.as_uri()``: fsspec does not undo its percent-escapes, so a folder with a space
    in its name would be read from ``...%20...``.
    """
    return "file://" + folder.as_posix()


def os_error(
    error: OSError, store_url: str, relpath: str, field: str, doing: str
) -> ModelyardError:
    """The modelyard error for an OS error met while ``doing`` ``relpath`` in a store: a
    ValidationError naming ``field`` when the name itself is at fault (too long), a
    ConflictError when a file stands where a folder must be or the other way round, else a
    StorageError with the path and the cause."""
    # os.replace and shutil.copyfile name two files; a temporary one means nothing to users.
    named = (str(name) for name in (error.filename2, error.filename) if name is not None)
    where = next((name for name in named if TMP_PREFIX not in name), relpath)
    if error.errno == errno.ENAMETOOLONG:
        long_parts = [p for p in relpath.split("/") if len(p.encode()) > _NAME_MAX]
        what = (
            f"its part {long_parts[0][:24]!r}... is {len(long_parts[0].encode())} bytes, and "
            f"the file system of {store_url} allows {_NAME_MAX} bytes per part"
            if long_parts
            else f"it is longer than the file system of {store_url} allows"
        )
        return ValidationError(field, f"{relpath!r} is too long: {what}; use shorter names")
    if error.errno in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST):
        return ConflictError(
            f"{doing} {relpath!r} in {store_url} failed: a file and a folder would have one "
            f"name ({where}: {error.strerror}); choose another name"
        )
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(
            f"{doing} {relpath!r} in {store_url} failed: {error.strerror}; free some space "
            "(or raise the quota) and try again"
        )
    return StorageError(
        f"{doing} {relpath!r} in {store_url} failed: {error.strerror or error} ({where})"
    )


def _translate_os_errors(doing: str) -> Callable[[Callable[_P, _T]], Callable[_P, _T]]:
    """Let a FileStore method raise modelyard errors, never a raw OSError (see os_error) or
    an object store client's error (a StorageError: the store did not answer).

    For a generator (the body of a ``contextmanager``) the errors of the caller's ``with``
    block, which reach the generator at its ``yield``, are translated too: a full disk while
    the caller writes into ``open_write`` is a StorageError naming the file.
    """

    def decorate(method: Callable[_P, _T]) -> Callable[_P, _T]:
        signature = inspect.signature(method)

        def translate(error: Exception, args: Any, kwargs: Any) -> ModelyardError:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            named = bound.arguments
            relpath = named.get("relpath", named.get("prefix", ""))
            field = named.get("field", "path")
            url = named["self"].url
            if not isinstance(error, OSError):
                return StorageError(
                    f"{doing} {relpath!r} in {url} failed: the store did not answer ({error}); "
                    "check that it is reachable and try again"
                )
            return os_error(error, url, str(relpath), str(field), doing)

        if inspect.isgeneratorfunction(method):

            @functools.wraps(method)
            def generator(*args: Any, **kwargs: Any) -> Any:
                try:
                    return (yield from cast(Any, method)(*args, **kwargs))
                except _TRANSLATED as error:
                    raise translate(error, args, kwargs) from error

            return cast(Callable[_P, _T], generator)

        @functools.wraps(method)
        def plain(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            try:
                return method(*args, **kwargs)
            except _TRANSLATED as error:
                raise translate(error, args, kwargs) from error

        return plain

    return decorate


# Bytes of an object-store write kept in memory before they spill to a temporary file.
SPOOL_IN_MEMORY = 8 << 20

# The stores on object stores that this process made (see _reopen_in_child).
_object_stores: weakref.WeakSet[FileStore] = weakref.WeakSet()


def _reopen_in_child() -> None:
    # fsspec's asynchronous filesystems (s3fs) run their requests on an event loop in a thread
    # of the process that made them; a forked child (the agent forks each run's supervisor)
    # has neither the thread nor a usable loop ("This class is not fork-safe"). It gets a
    # fresh loop and filesystem objects of its own; nothing is sent until it uses them.
    if len(_object_stores):
        fsspec.asyn.reset_lock()
        for store in list(_object_stores):
            store._reopen()


os.register_at_fork(after_in_child=_reopen_in_child)


class FileStore:
    """Files below one root URL; see the module docstring. Its methods raise modelyard
    errors (NotFoundError, ValidationError, StorageError), never a raw OSError."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url
        self._storage_options = dict(storage_options or {})
        self.fs, root = fsspec.core.url_to_fs(url, **self._storage_options)
        self.root = root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.renames = bool(_RENAMING_PROTOCOLS.intersection(protocols))
        self.is_local = isinstance(self.fs, LocalFileSystem)
        # Where each live log this store appended to ends, as far as this store knows: an
        # append at that end is one PUT. Only a hint: a chunk is created exclusively, so a
        # stale end (another writer went on) fails the PUT and the real end is listed.
        self._log_ends: dict[str, int] = {}
        if not self.is_local:
            _object_stores.add(self)

    def _reopen(self) -> None:
        """A filesystem object of this process's own (after a fork, see below)."""
        options = {**self._storage_options, "skip_instance_cache": True}
        self.fs, _ = fsspec.core.url_to_fs(self.url, **options)

    def __repr__(self) -> str:
        return f"FileStore({self.url!r})"

    def below(self, relpath: str) -> FileStore:
        """The store rooted at the folder ``relpath`` of this one, with the same options (a
        dataset's files below the folder its patterns share).

        Example::

            FileStore("memory://data").below("mnist").url      # 'memory://data/mnist'
        """
        clean = clean_relpath("path", relpath, allow_root=True)
        if not clean:
            return self
        return FileStore(f"{self.url.rstrip('/')}/{clean}", self._storage_options)

    def full_path(self, relpath: str, field: str = "path") -> str:
        """The filesystem path of ``relpath`` (validated to stay below the root)."""
        clean = clean_relpath(field, relpath, allow_root=True)
        return f"{self.root}/{clean}" if clean else self.root

    def local_path(self, relpath: str, field: str = "path") -> Path:
        """The local path of ``relpath``; only for stores on the local filesystem."""
        if not self.is_local:
            raise TypeError(f"{self.url} is not on the local filesystem")
        return Path(self.full_path(relpath, field))

    def exists(self, relpath: str) -> bool:
        if self.is_local:
            return self._local_stat(relpath) is not None
        path = self.full_path(relpath)
        return bool(self.fs.exists(path) or log_chunks.find_chunks(self.fs, path))

    @_translate_os_errors("reading the size of")
    def size(self, relpath: str) -> int:
        if self.is_local:
            info = self._local_stat(relpath)
            if info is None or not stat.S_ISREG(info.st_mode):
                raise NotFoundError(f"file {relpath!r} does not exist in {self.url}")
            return info.st_size
        path = self.full_path(relpath)
        try:
            return int(self.fs.size(path))
        except FileNotFoundError as error:
            chunks = log_chunks.find_chunks(self.fs, path)
            if not chunks:
                raise NotFoundError(f"file {relpath!r} does not exist in {self.url}") from error
            return chunks[-1].end

    def _local_stat(self, relpath: str) -> os.stat_result | None:
        """What stands at ``relpath`` (a file or a folder; a link is none), found without
        following links; None when nothing is there."""
        parent, _, name = clean_relpath("path", relpath, allow_root=True).rpartition("/")
        try:
            with self._local_folder(parent, "path", create=False) as folder:
                if folder is None:
                    return None
                info = local_tree.lstat(folder, name) if name else os.fstat(folder)
        except ValidationError:
            return None  # a link or a file where a folder should be: nothing by this name
        return None if info is None or stat.S_ISLNK(info.st_mode) else info

    @contextlib.contextmanager
    def _local_folder(self, relfolder: str, field: str, *, create: bool) -> Iterator[int | None]:
        """The open folder ``relfolder`` of a local store (None when missing and not
        ``create``), reached without following links."""
        try:
            root = local_tree.open_root(self.root, create=create)
        except FileNotFoundError:
            yield None
            return
        try:
            folder = local_tree.open_folder(
                root, relfolder, create=create, field=field, where=self.url
            )
        finally:
            os.close(root)
        try:
            yield folder
        finally:
            if folder is not None:
                os.close(folder)

    @contextlib.contextmanager
    @_translate_os_errors("writing")
    def open_write(self, relpath: str, field: str = "path") -> Iterator[IO[bytes]]:
        """Open ``relpath`` for writing; it appears, whole, only when the block ends cleanly."""
        if self.is_local:
            clean = clean_relpath(field, relpath)
            with local_tree.open_write(self.root, clean, field=field) as f:
                yield f
            return
        target = self.full_path(relpath, field)
        self._log_ends.pop(target, None)  # a whole file now hides the chunks of a log
        parent = target.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        if not self.renames:
            # An object store's file is uploaded when it closes, even when the block raised
            # (s3fs completes the upload on close): the bytes are spooled (in memory up to
            # SPOOL_IN_MEMORY, then in a temporary file) and sent only after a clean end, so
            # a write that fails half-way leaves no object.
            with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
                yield spool
                spool.seek(0)
                with self.fs.open(target, "wb") as f:
                    shutil.copyfileobj(spool, f, SPOOL_IN_MEMORY)
            return
        temp = f"{parent}/{temp_name()}"
        try:
            with self.fs.open(temp, "wb") as f:
                yield f
            self.fs.mv(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                self.fs.rm(temp)
            raise

    @_translate_os_errors("writing")
    def put_file(self, source: Path, relpath: str, field: str = "path") -> None:
        """Copy the local file ``source`` to ``relpath``, atomically."""
        if not self.is_local:
            # An object store PUT is all-or-nothing already.
            target = self.full_path(relpath, field)
            self._log_ends.pop(target, None)  # a whole file now hides the chunks of a log
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(source), target)
            return
        clean = clean_relpath(field, relpath)
        # ``source`` is the caller's own file: a link there is followed, as ``cp`` would.
        source_fd = os.open(source, os.O_RDONLY | _CLOEXEC)
        try:
            with local_tree.open_write(self.root, clean, field=field) as f:
                # In the kernel (copy_file_range / sendfile) where it can.
                copy_fd(source_fd, f.fileno(), os.fstat(source_fd).st_size)
        finally:
            os.close(source_fd)

    def write_bytes(self, relpath: str, data: bytes) -> None:
        with self.open_write(relpath) as f:
            f.write(data)

    @_translate_os_errors("appending to")
    def append(self, relpath: str, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` of a growing file (a live log).

        Idempotent: bytes already there are not written twice, so a caller may repeat a call
        after a timeout. A gap (offset past the end) is a ConflictError. On object stores,
        which cannot append, the new bytes become a chunk of their own (see
        :mod:`modelyard.store.log_chunks`): one PUT, whatever the size of the log.
        """
        if self.is_local:
            folder_path, _, name = clean_relpath("path", relpath).rpartition("/")
            with self._local_folder(folder_path, "path", create=True) as folder:
                assert folder is not None  # create=True makes it
                info = local_tree.lstat(folder, name)
                if info is not None and not stat.S_ISREG(info.st_mode):
                    # A folder's size is not a log's: without this, a short append to a
                    # folder of the log's name would look stored.
                    raise ConflictError(
                        f"cannot append to {relpath!r} in {self.url}: something other than a "
                        "file (a folder or a link) has its name; remove it or use another name"
                    )
                size = 0 if info is None else info.st_size
                if offset > size:
                    raise ConflictError(f"{relpath!r} has {size} bytes; cannot append at {offset}")
                if data[size - offset :]:
                    with os.fdopen(os.open(name, _APPEND, 0o666, dir_fd=folder), "ab") as f:
                        f.write(data[size - offset :])
            return
        target = self.full_path(relpath)
        end = self._log_ends.get(target)
        while True:
            if end is None or offset > end:
                end = self._log_end(target)
            if offset > end:
                raise ConflictError(f"{relpath!r} has {end} bytes; cannot append at {offset}")
            new = data[end - offset :]
            if not new:
                return
            try:
                self.fs.pipe_file(log_chunks.chunk_path(target, end), new, mode="create")
            except FileExistsError:
                end = None  # another writer went on from there: find where the log ends now
                continue
            self._log_ends[target] = end + len(new)
            return

    def _log_end(self, path: str) -> int:
        """Where the log at ``path`` of an object store ends, listed afresh. A plain object
        of its name (written whole after the log) becomes its chunk 0, replacing the chunks
        it hid, so that the log goes on from its bytes."""
        if self.fs.isfile(path):
            folder = log_chunks.chunk_folder(path)
            if self.fs.exists(folder):
                self.fs.rm(folder, recursive=True)
            self.fs.copy(path, log_chunks.chunk_path(path, 0))
            self.fs.rm(path)
        chunks = log_chunks.find_chunks(self.fs, path)
        return chunks[-1].end if chunks else 0

    @_translate_os_errors("reading")
    def read_range(self, relpath: str, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes of a file from ``offset``; empty at or past its end."""
        with self.open_read(relpath) as f:
            f.seek(offset)
            return f.read(size)

    @_translate_os_errors("reading")
    def open_read(self, relpath: str, field: str = "name") -> IO[bytes]:
        path = self.full_path(relpath, field)
        if self.is_local:
            try:
                root = local_tree.open_root(self.root)
            except FileNotFoundError:
                raise NotFoundError(f"file {relpath!r} does not exist in {self.url}") from None
            try:
                fd = local_tree.open_file(
                    root, clean_relpath(field, relpath), field=field, where=self.url
                )
            finally:
                os.close(root)
            if fd is None:
                raise NotFoundError(f"file {relpath!r} does not exist in {self.url}")
            return os.fdopen(fd, "rb")
        try:
            plain = self.fs.open(path, "rb")
            return io.BufferedReader(log_chunks.PlainOrChunks(self.fs, path, plain), 1 << 20)
        except (FileNotFoundError, IsADirectoryError) as error:
            chunks = log_chunks.find_chunks(self.fs, path)
            if not chunks:
                raise NotFoundError(f"file {relpath!r} does not exist in {self.url}") from error
        return io.BufferedReader(log_chunks.ChunkReader(self.fs, chunks), 1 << 20)

    def read_bytes(self, relpath: str) -> bytes:
        with self.open_read(relpath) as f:
            return f.read()

    @_translate_os_errors("listing")
    def list(self, prefix: str = "") -> list[FileInfo]:
        """Every file at or below ``prefix``, sorted by path; temporary files are left out."""
        if self.is_local:
            return self._list_local(clean_relpath("prefix", prefix, allow_root=True))
        base = self.full_path(prefix, "prefix")
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            found = {}
        if not found:
            # ``base`` may name a chunked log, whose chunks lie beside it, not below it.
            chunks = log_chunks.find_chunks(self.fs, base)
            found = {c.path: {"type": "file", "size": c.size} for c in chunks}
        start = len(self.root) + 1
        files: dict[str, int] = {}
        logs: dict[str, builtins.list[log_chunks.Chunk]] = {}
        for path, info in found.items():
            path = path.rstrip("/")
            if info.get("type") == "directory" or path.rsplit("/", 1)[-1].startswith(TMP_PREFIX):
                continue
            chunk = log_chunks.parse_chunk(path)
            if chunk is not None:
                log, offset = chunk
                logs.setdefault(log, []).append(
                    log_chunks.Chunk(offset, path, int(info.get("size") or 0))
                )
                continue
            files[path] = int(info.get("size") or 0)
        for log, chunks in logs.items():
            joined = log_chunks.contiguous(chunks)
            if log not in files and joined:  # a plain object of the name is the file
                files[log] = joined[-1].end
        return sorted(
            (FileInfo(path[start:], size) for path, size in files.items()), key=lambda i: i.path
        )

    def _list_local(self, prefix: str) -> builtins.list[FileInfo]:
        parent, _, name = prefix.rpartition("/")
        with self._local_folder(parent, "prefix", create=False) as folder:
            if folder is None:
                return []
            info = local_tree.lstat(folder, name) if name else os.fstat(folder)
            if info is None:
                return []
            if stat.S_ISLNK(info.st_mode):
                raise ValidationError(
                    "prefix",
                    f"{prefix!r} in {self.url} is a symbolic link; links inside a store are not "
                    "followed",
                )
            if stat.S_ISREG(info.st_mode):
                return [] if name.startswith(TMP_PREFIX) else [FileInfo(prefix, info.st_size)]
            if not stat.S_ISDIR(info.st_mode):
                return []
            below = (
                os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
                if name
                else os.dup(folder)
            )
        try:
            found = [*local_tree.walk_files(below, f"{prefix}/" if prefix else "")]
        finally:
            os.close(below)
        return sorted((FileInfo(path, size) for path, size in found), key=lambda i: i.path)

    def copy(self, src_relpath: str, dst_relpath: str) -> None:
        """Copy one file within the store, atomically at the destination."""
        with self.open_read(src_relpath) as src, self.open_write(dst_relpath) as dst:
            while chunk := src.read(8 << 20):
                dst.write(chunk)

    @_translate_os_errors("deleting")
    def delete(self, prefix: str) -> None:
        """Delete ``prefix`` and everything below it; a missing prefix is not an error."""
        path = self.full_path(prefix, "prefix")
        clean = clean_relpath("prefix", prefix, allow_root=True)
        if self.is_local and clean:
            try:
                root = local_tree.open_root(self.root)
            except FileNotFoundError:
                return
            try:
                local_tree.remove_tree(root, clean, field="prefix", where=self.url)
            finally:
                os.close(root)
            return
        for known in [p for p in self._log_ends if p == path or p.startswith(path + "/")]:
            del self._log_ends[known]
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)
        # A log named ``prefix`` keeps its chunks beside it, not below it.
        folder = log_chunks.chunk_folder(path)
        if clean and self.fs.exists(folder):
            self.fs.rm(folder, recursive=True)
