"""Copying many files between the local disk and a :class:`~modelyard.store.files.FileStore`.

:func:`upload` copies local files into a store below a target prefix; :func:`download` copies
files of a store into a local folder. Both:

- **check every path before writing any file**: relative paths go through
  :func:`~modelyard.names.clean_relpath`, two files may not land on one name (or one on a
  folder of the other) and sources must be files. A bad path raises
  :class:`~modelyard.errors.ValidationError` naming the field, and nothing has been written;
- **never follow a symbolic link below a local root**, the store's folder or the download
  target: a link where a folder is needed raises ValidationError (before anything is written
  when it is there from the start; the copy stops at it when it appears meanwhile), a link
  where a file goes is replaced (with ``overwrite``) or counts as an existing file, and the
  files read from a local store are opened the same way (a store's listing leaves links out).
  Every local path is reached through :mod:`modelyard.store.local_tree`;
- **never replace a file when ``overwrite`` is False**: files that exist are skipped and listed
  in the result and the summary line. Even against another process writing the same name at the
  same time, a local file is put in place with ``link`` (which fails on an existing name) rather
  than ``rename`` (which replaces it);
- **write atomically**: a reader sees the old file or the whole new one. Between local folders
  this is :mod:`modelyard.store.local_copy`'s work (an unnamed file linked into place, or a
  temporary name renamed); on other filesystems a temporary name beside the target is moved
  into place, and on object stores, where a PUT is all-or-nothing, files are written directly;
- **show progress** with :class:`~modelyard.progress.TransferProgress`.

Between local folders, two threads overlap the system calls of many small files. Object stores
take :data:`REMOTE_WORKERS` threads, each with one request in flight, so that no mix of files
and parts opens more connections than that. On S3 a file larger than
:data:`~modelyard.store.s3_transfer.MULTIPART_THRESHOLD` is uploaded in parts, each part an
item of its own that any thread takes, and progress moves as each part arrives; a transfer
that stops aborts the multipart uploads it began, so no object and no stray parts are left. A
download from S3 is one streamed GET per file (:mod:`modelyard.store.s3_transfer` says why).
Other stores go through fsspec's ``put_file`` and ``open`` with a progress callback.

Example::

    store = FileStore("memory://data")
    result = upload([(Path("train.csv"), "train.csv")], store, "mnist", overwrite=True)
    result.files, result.bytes        # (1, 5120)
    download(store, ["mnist/train.csv"], Path("copy"), show_progress=False).files   # 1
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

from fsspec.callbacks import Callback
from rich.console import Console

from modelyard.backend.records import FileInfo
from modelyard.errors import NotFoundError, StorageError, ValidationError
from modelyard.names import MAX_PATH_LENGTH, clean_relpath, join_relpath, temp_name
from modelyard.progress import TransferKind, TransferProgress
from modelyard.store import local_tree, s3_transfer
from modelyard.store.files import FileStore
from modelyard.store.local_copy import CHUNK_SIZE, LocalCopier

# Two threads overlap the kernel's work of creating and renaming small files on two cores:
# 10,000 files of 1-4 KiB went at about 22,000 files/s with two against 16,000 with one on
# this ext4 disk; three or four were no faster.
LOCAL_WORKERS = 2
# Object stores answer each request after a network round trip: keep several in flight, one
# per thread. 10 is botocore's max_pool_connections (s3fs's pool: more threads would wait for
# a connection) and the AWS CLI's max_concurrent_requests; against moto's server here, 1,000
# small files went up at 44 files/s with 10 against 35 with 8 (one pair, on a loaded machine).
REMOTE_WORKERS = 10
# Below this many files a second thread costs more than it saves.
_MIN_FILES_FOR_THREADS = 64
PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class TransferResult:
    """What a transfer did: files and bytes copied, names skipped because they exist, seconds."""

    files: int
    bytes: int
    skipped: tuple[str, ...]
    seconds: float


class _Item(NamedTuple):  # a tuple: made 10,000 times per upload, at a third of a dataclass's cost
    source: str  # local path, or store path (relative to the root of a local store) to read
    target: str  # relative to a local root, or a store path to write
    name: str  # the relative path users see in messages and in TransferResult.skipped
    size: int
    part: int = 0  # of a file uploaded to S3 in parts, the part to put (from 1); 0: all of it


def upload(
    files: Sequence[tuple[PathLike, str]],
    store: FileStore,
    target_prefix: str = "",
    *,
    overwrite: bool = False,
    show_progress: bool = True,
    field: str = "files",
    console: Console | None = None,
) -> TransferResult:
    """Copy local files into ``store`` below ``target_prefix``.

    ``files`` pairs each local file with its relative path below the prefix. ``field`` names
    the argument that those relative paths came from in error messages (``target_path`` is
    used for the prefix). Files that exist in the store are skipped unless ``overwrite``.

    Example::

        upload([("data/a.csv", "a.csv"), ("data/b/c.csv", "b/c.csv")], store, "raw")
        # store now holds raw/a.csv and raw/b/c.csv
    """
    started = time.perf_counter()
    prefix = clean_relpath("target_path", target_prefix, allow_root=True)
    names = _clean_names(field, [name for _, name in files], prefix)
    items = []
    for (source, _), name in zip(files, names, strict=True):
        path = os.fspath(source)
        dest = name if store.is_local else _store_path(store, name)
        items.append(_Item(path, dest, name, _source_size(field, path)))
    if not store.is_local:
        existing = set() if overwrite else {info.path for info in store.list(prefix)}
        todo = [item for item in items if item.name not in existing]
        skipped = [item.name for item in items if item.name in existing]
        if s3_transfer.is_s3(store.fs):
            # No folders to make on S3 (and s3fs's makedirs would create a missing bucket).
            run: Callable[[_Item, _Context], None] = _put_s3
        else:
            _make_parents(todo, lambda path, exist_ok: store.fs.makedirs(path, exist_ok=exist_ok))
            run = _put_renaming if store.renames else _put_direct
        workers = 1 if store.renames else REMOTE_WORKERS
        return _transfer(
            "upload",
            todo,
            skipped,
            run,
            store,
            None,
            workers,
            overwrite,
            show_progress,
            console,
            started,
        )
    root_fd = local_tree.open_root(store.root, create=True)
    try:
        where = store.url
        todo, skipped = _split_existing_local("target_path", items, overwrite, root_fd, where)
        return _transfer(
            "upload",
            todo,
            skipped,
            _copy_local,
            store,
            _LocalRoot(root_fd, "target_path", where),
            LOCAL_WORKERS,
            overwrite,
            show_progress,
            console,
            started,
        )
    finally:
        os.close(root_fd)


def download(
    store: FileStore,
    files: Sequence[str | FileInfo],
    local_root: PathLike,
    *,
    overwrite: bool = False,
    show_progress: bool = True,
    field: str = "names",
    root_field: str = "target_path",
    console: Console | None = None,
) -> TransferResult:
    """Copy files of ``store`` into the local folder ``local_root``, keeping their paths.

    ``files`` are relative paths in the store, or the :class:`FileInfo` entries of
    ``store.list()`` (which saves asking the store for each size). Every file lands inside
    ``local_root``: a path with ``..``, or a symbolic link below ``local_root`` where a folder
    is needed (wherever it leads), raises ValidationError before anything is written; a link
    where a file goes counts as an existing file. ``field`` and ``root_field`` name the
    arguments in error messages. Local files that exist are skipped unless ``overwrite``.

    Example::

        download(store, store.list("mnist"), "./data")   # ./data/mnist/...
    """
    started = time.perf_counter()
    names = _clean_names(field, [f.path if isinstance(f, FileInfo) else f for f in files], "")
    root = os.fspath(local_root)
    if os.path.exists(root) and not os.path.isdir(root):
        raise ValidationError(root_field, f"{root!r} exists and is not a folder")
    items = []
    for entry, name in zip(files, names, strict=True):
        size = entry.size if isinstance(entry, FileInfo) else store.size(name)
        source = name if store.is_local else _store_path(store, name)
        items.append(_Item(source, name, name, size))
    root_fd = local_tree.open_root(root, create=True)
    try:
        todo, skipped = _split_existing_local(root_field, items, overwrite, root_fd, root)
        if store.is_local:
            run: Callable[[_Item, _Context], None] = _copy_local
            workers = LOCAL_WORKERS
        else:
            run = _get_remote
            workers = 1 if store.renames else REMOTE_WORKERS
        target = _LocalRoot(root_fd, root_field, root)
        return _transfer(
            "download",
            todo,
            skipped,
            run,
            store,
            target,
            workers,
            overwrite,
            show_progress,
            console,
            started,
        )
    finally:
        os.close(root_fd)


def upload_through(
    put: Callable[[str, str], bool],
    files: Sequence[tuple[PathLike, str]],
    target_prefix: str,
    existing: Callable[[], set[str]],
    *,
    overwrite: bool = False,
    show_progress: bool = True,
    field: str = "files",
    console: Console | None = None,
) -> TransferResult:
    """Copy local files into a store that is reached through calls, not opened here (a
    datastore through the Backend contract): ``put(local path, name)`` stores one file and
    says whether it did (False: the name exists and ``overwrite`` is off). The same checks as
    :func:`upload` come first; ``existing()`` gives the names there already, asked only
    without ``overwrite``. :data:`REMOTE_WORKERS` calls are in flight at once; progress moves
    a file at a time.

    Example::

        upload_through(lambda path, name: backend.upload_datastore_file("raw", name,
                       Path(path)), [("a.csv", "a.csv")], "x", lambda: set())
    """
    started = time.perf_counter()
    prefix = clean_relpath("target_path", target_prefix, allow_root=True)
    names = _clean_names(field, [name for _, name in files], prefix)
    items = [
        _Item(os.fspath(source), name, name, _source_size(field, os.fspath(source)))
        for (source, _), name in zip(files, names, strict=True)
    ]
    there = set() if overwrite else existing()
    todo = [item for item in items if item.name not in there]
    skipped = [item.name for item in items if item.name in there]

    def run(item: _Item, context: _Context) -> None:
        if put(item.source, item.target):
            context.progress.advance(item.size, files=1)
        else:
            context.progress.withdraw(item.name, item.size, 0)

    return _transfer(
        "upload",
        todo,
        skipped,
        run,
        None,
        None,
        REMOTE_WORKERS,
        overwrite,
        show_progress,
        console,
        started,
    )


def download_through(
    open_file: Callable[[str], IO[bytes]],
    files: Sequence[FileInfo],
    local_root: PathLike,
    *,
    overwrite: bool = False,
    show_progress: bool = True,
    field: str = "names",
    root_field: str = "target_path",
    console: Console | None = None,
) -> TransferResult:
    """:func:`download` from a store reached through calls: ``open_file(name)`` gives a stream
    of one file (a datastore's, through the Backend contract). The same checks and rules as
    :func:`download`, with :data:`REMOTE_WORKERS` files in flight at once.

    Example::

        download_through(lambda name: backend.open_datastore_file("raw", name),
                         backend.list_datastore_files("raw", "mnist"), "./data")
    """
    started = time.perf_counter()
    names = _clean_names(field, [info.path for info in files], "")
    root = os.fspath(local_root)
    if os.path.exists(root) and not os.path.isdir(root):
        raise ValidationError(root_field, f"{root!r} exists and is not a folder")
    items = [_Item(name, name, name, info.size) for info, name in zip(files, names, strict=True)]
    root_fd = local_tree.open_root(root, create=True)
    try:
        todo, skipped = _split_existing_local(root_field, items, overwrite, root_fd, root)

        def run(item: _Item, context: _Context) -> None:
            with open_file(item.source) as source:
                _write_local(item, iter(lambda: source.read(s3_transfer.READ_SIZE), b""), context)

        target = _LocalRoot(root_fd, root_field, root)
        return _transfer(
            "download",
            todo,
            skipped,
            run,
            None,
            target,
            REMOTE_WORKERS,
            overwrite,
            show_progress,
            console,
            started,
        )
    finally:
        os.close(root_fd)


# -- checks, all done before the first byte is written -------------------------------------


def _clean_names(field: str, names: Sequence[str], prefix: str) -> list[str]:
    """Clean each relative path and join it to ``prefix``; refuse duplicates and names that
    another name needs as a folder."""
    cleaned = []
    for raw in names:
        name = join_relpath(prefix, clean_relpath(field, raw))
        if len(name) > MAX_PATH_LENGTH:
            raise ValidationError(field, f"{name!r} is longer than {MAX_PATH_LENGTH} characters")
        cleaned.append(name)
    unique = set(cleaned)
    if len(unique) != len(cleaned):
        seen: set[str] = set()
        for name in cleaned:
            if name in seen:
                raise ValidationError(field, f"two files would both be written to {name!r}")
            seen.add(name)
    folders = {name.rsplit("/", 1)[0] for name in cleaned if "/" in name}
    for folder in list(folders):
        while "/" in folder:
            folder = folder.rsplit("/", 1)[0]
            folders.add(folder)
    clash = unique & folders
    if clash:
        name = min(clash)
        raise ValidationError(field, f"{name!r} would be both a file and a folder")
    return cleaned


def _source_size(field: str, path: str) -> int:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ValidationError(field, f"{path!r} does not exist") from None
    except OSError as error:
        raise ValidationError(field, f"{path!r} cannot be read: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValidationError(field, f"{path!r} is not a file")
    return info.st_size


def _store_path(store: FileStore, name: str) -> str:
    # ``name`` is clean already; FileStore.full_path would check it a second time.
    return f"{store.root}/{name}"


def _split_existing_local(
    field: str, items: list[_Item], overwrite: bool, root_fd: int, where: str
) -> tuple[list[_Item], list[str]]:
    """Split into the items to copy and the names skipped because their local target exists.

    Each folder is opened once, without following links (a link in the way raises
    ValidationError naming ``field``): in one that does not exist yet (an upload to a new
    target path), no file can exist, and its files need no look of their own. A link where a
    file goes counts as an existing file.
    """
    todo: list[_Item] = []
    skipped: list[str] = []
    folder_fds: dict[str, int | None] = {}
    try:
        for item in items:
            folder, _, base = item.target.rpartition("/")
            if folder not in folder_fds:
                folder_fds[folder] = local_tree.open_folder(
                    root_fd, folder, create=False, field=field, where=where
                )
            folder_fd = folder_fds[folder]
            info = None if folder_fd is None else local_tree.lstat(folder_fd, base)
            if info is None:
                todo.append(item)
            elif stat.S_ISDIR(info.st_mode):
                raise ValidationError(field, f"{item.name!r} is a folder in {where}")
            elif overwrite:
                todo.append(item)
            else:
                skipped.append(item.name)
    finally:
        for fd in folder_fds.values():
            if fd is not None:
                os.close(fd)
    return todo, skipped


def _make_parents(items: list[_Item], makedirs: Callable[..., Any]) -> None:
    done: set[str] = set()
    for item in items:
        parent = item.target.rpartition("/")[0]
        if parent and parent not in done:
            done.add(parent)
            makedirs(parent, exist_ok=True)


# -- running the copies ---------------------------------------------------------------------


@dataclass(frozen=True)
class _LocalRoot:
    """The local folder a transfer writes into, open; ``field`` names it in errors."""

    fd: int
    field: str
    where: str


@dataclass
class _Context:
    store: FileStore | None  # None when the files go through calls (upload_through, ...)
    progress: TransferProgress
    overwrite: bool
    stop: threading.Event
    target: _LocalRoot | None  # when the files land in a local folder
    copier: LocalCopier | None = None  # when both ends are local
    source_root_fd: int | None = None  # a local store's root, when files are read from it
    local: threading.local = field(default_factory=threading.local)  # each thread's folders
    caches: list[local_tree.FolderCache] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # The files uploaded to S3 in parts, by target: each part is an item of its own.
    uploads: dict[str, s3_transfer.MultipartUpload] = field(default_factory=dict)

    @property
    def opened(self) -> FileStore:
        """The store of a transfer that opened one (not one through calls)."""
        assert self.store is not None
        return self.store

    def folder(self, relfolder: str) -> int:
        """This thread's descriptor of a folder below the local target (made if missing)."""
        cache: local_tree.FolderCache | None = getattr(self.local, "cache", None)
        if cache is None:
            assert self.target is not None
            cache = local_tree.FolderCache(
                self.target.fd, field=self.target.field, where=self.target.where
            )
            self.local.cache = cache
            with self.lock:
                self.caches.append(cache)
        return cache.get(relfolder)


def _transfer(
    kind: TransferKind,
    todo: list[_Item],
    skipped: list[str],
    run: Callable[[_Item, _Context], None],
    store: FileStore | None,
    target: _LocalRoot | None,
    workers: int,
    overwrite: bool,
    show_progress: bool,
    console: Console | None,
    started: float,
) -> TransferResult:
    total = sum(item.size for item in todo)
    progress = TransferProgress(
        kind, len(todo), total, show_progress=show_progress, console=console, started=started
    )
    for name in skipped:
        progress.skip(name)
    context = _Context(store, progress, overwrite, threading.Event(), target)
    if run is _copy_local:
        context.copier = LocalCopier(
            overwrite=overwrite, stop=context.stop, on_chunk=progress.advance
        )
    if kind == "download" and store is not None and store.is_local:
        context.source_root_fd = local_tree.open_root(store.root)
    jobs = _in_parts(todo, context) if run is _put_s3 else todo
    if run is _copy_local:
        workers = workers if len(jobs) >= _MIN_FILES_FOR_THREADS else 1
    try:
        with progress:
            _run_all(jobs, run, context, min(workers, len(jobs)) or 1)
    finally:
        # After every thread has stopped: no part of these can be on its way any more.
        for upload in context.uploads.values():
            if not upload.complete:
                upload.abort()
            upload.close()
        if context.copier is not None:
            context.copier.close()
        if context.source_root_fd is not None:
            os.close(context.source_root_fd)
        for cache in context.caches:
            cache.close()
    return TransferResult(
        progress.files_done, progress.bytes_done, tuple(progress.skipped), progress.seconds
    )


def _in_parts(items: list[_Item], context: _Context) -> list[_Item]:
    """The items of an upload to S3, with each large file replaced by its parts, side by side
    in the list so that the threads take them together."""
    jobs: list[_Item] = []
    for item in items:
        if item.size <= s3_transfer.MULTIPART_THRESHOLD:
            jobs.append(item)
            continue
        upload = s3_transfer.MultipartUpload(context.opened.fs, item.source, item.target, item.size)
        context.uploads[item.target] = upload
        jobs.extend(item._replace(part=number) for number in upload.numbers())
    return jobs


def _run_all(
    items: list[_Item], run: Callable[[_Item, _Context], None], context: _Context, workers: int
) -> None:
    """Run ``run`` on every item, on this thread and ``workers - 1`` more.

    The threads pull from one shared iterator (no future per file: at 10,000 files a second a
    future costs as much as the copy). The first error stops the others after their current
    file, and is raised here, translated to StorageError when the filesystem raised it.
    """
    lock = threading.Lock()
    pending: Iterator[_Item] = iter(items)
    errors: list[tuple[str, BaseException]] = []

    def work() -> None:
        name = ""
        try:
            while not context.stop.is_set():
                with lock:
                    next_item = next(pending, None)
                if next_item is None:
                    return
                name = next_item.name
                run(next_item, context)
        except BaseException as error:
            errors.append((name, error))  # before stop is set, so that it comes first
            context.stop.set()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers - 1)]
    for thread in threads:
        thread.start()
    try:
        work()
        # Not ``stop``: the others may be in the middle of a big file, which stop would
        # abandon (and call a failure) although nothing went wrong.
        for thread in threads:
            thread.join()
    except BaseException:
        # Ctrl-C landed in this thread while it waited: stop the others, and wait for them so
        # that their temporary files are removed before the caller sees the exception.
        context.stop.set()
        for thread in threads:
            thread.join()
        raise
    if errors:
        name, error = errors[0]
        if isinstance(error, OSError):
            raise StorageError(
                f"{context.progress.kind} of {name!r} failed: {error}; the files copied before "
                "it are complete, the others were not written"
            ) from error
        raise error


def _copy_local(item: _Item, context: _Context) -> None:
    """Copy one file between local folders (see :mod:`modelyard.store.local_copy`)."""
    assert context.copier is not None
    folder, _, name = item.target.rpartition("/")
    source_fd = _open_source(item, context)
    try:
        copied, unreported, placed = context.copier.copy(
            source_fd, context.folder(folder), name, item.size
        )
    finally:
        os.close(source_fd)
    if placed:
        context.progress.advance(unreported, files=1)
    else:
        context.progress.withdraw(item.name, item.size, copied - unreported)


def _open_source(item: _Item, context: _Context) -> int:
    """The file to copy, open: a local file as given, or a file of a local store, reached
    without following links below the store's root."""
    if context.source_root_fd is None:
        return os.open(item.source, os.O_RDONLY | os.O_CLOEXEC)
    fd = local_tree.open_file(
        context.source_root_fd, item.source, field="names", where=context.opened.url
    )
    if fd is None:
        raise NotFoundError(f"file {item.name!r} does not exist in {context.opened.url}")
    return fd


class _ProgressCallback(Callback):  # type: ignore[misc]  # fsspec has no type hints
    """Feeds fsspec's byte counts of one file into the transfer's progress."""

    def __init__(self, progress: TransferProgress) -> None:
        super().__init__()
        self.progress = progress
        self.copied = 0

    def relative_update(self, inc: int = 1) -> None:
        self.copied += inc
        self.progress.advance(inc)

    def absolute_update(self, value: int) -> None:
        self.relative_update(value - self.copied)


def _put_direct(item: _Item, context: _Context) -> None:
    """Upload to an object store, where one PUT is all-or-nothing: no temporary name."""
    callback = _ProgressCallback(context.progress)
    context.opened.fs.put_file(item.source, item.target, callback=callback)
    _finish_remote(item, callback, context)


def _put_renaming(item: _Item, context: _Context) -> None:
    """Upload to a filesystem with folders and renames (memory://, sftp): temp name, then mv."""
    fs = context.opened.fs
    temp = f"{item.target.rpartition('/')[0]}/{temp_name()}"
    callback = _ProgressCallback(context.progress)
    try:
        fs.put_file(item.source, temp, callback=callback)
        if not context.overwrite and fs.exists(item.target):
            fs.rm(temp)
            context.progress.withdraw(item.name, item.size, callback.copied)
            return
        fs.mv(temp, item.target)
    except BaseException:
        if fs.exists(temp):
            fs.rm(temp)
        raise
    _finish_remote(item, callback, context)


def _get_remote(item: _Item, context: _Context) -> None:
    """Download one file from a non-local store to a temporary local name, then place it."""
    _write_local(item, _remote_chunks(context.opened, item.source), context)


def _write_local(item: _Item, chunks: Iterator[bytes], context: _Context) -> None:
    """Write the bytes of one file as they arrive to a temporary local name, then place it."""
    folder, _, name = item.target.rpartition("/")
    folder_fd = context.folder(folder)
    copied = 0
    temp, fd = local_tree.create_temp(folder_fd)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
                copied += len(chunk)
                context.progress.advance(len(chunk))
                if context.stop.is_set():  # another file failed, or Ctrl-C: leave this one
                    local_tree.remove(folder_fd, temp)
                    return
        placed = local_tree.place(folder_fd, temp, name, context.overwrite)
    except BaseException:
        local_tree.remove(folder_fd, temp)
        raise
    if placed:
        context.progress.advance(max(item.size - copied, 0), files=1)
    else:
        context.progress.withdraw(item.name, item.size, copied)


def _remote_chunks(store: FileStore, path: str) -> Iterator[bytes]:
    """The bytes of a file of a non-local store, as they arrive: from S3 one streamed GET
    (see :func:`~modelyard.store.s3_transfer.read_object` for why), elsewhere fsspec's reads."""
    if s3_transfer.is_s3(store.fs):
        yield from s3_transfer.read_object(store.fs, path)
        return
    with store.fs.open(path, "rb") as source:
        while chunk := source.read(CHUNK_SIZE):
            yield chunk


def _put_s3(item: _Item, context: _Context) -> None:
    """Upload a small file to S3 in one PUT, or one part of a large one (see _in_parts)."""
    if not item.part:
        with s3_transfer.translated():
            _put_direct(item, context)
        return
    upload = context.uploads[item.target]
    last = upload.put_part(item.part)
    # Progress moves as parts arrive; the file counts once its last part made the object.
    context.progress.advance(upload.part_bytes(item.part), files=1 if last else 0)


def _finish_remote(item: _Item, callback: _ProgressCallback, context: _Context) -> None:
    # Not every filesystem reports bytes through the callback (or all of them): count the rest.
    context.progress.advance(max(item.size - callback.copied, 0), files=1)


__all__ = ["TransferResult", "download", "download_through", "upload", "upload_through"]
