"""Copying many files between the local disk and a :class:`~modelyard.store.files.FileStore`.

:func:`upload` copies local files into a store below a target prefix; :func:`download` copies
files of a store into a local folder. Both:

- **check every path before writing any file**: relative paths go through
  :func:`~modelyard.names.clean_relpath`, two files may not land on one name (or one on a
  folder of the other), sources must be files, and on a download every folder written to must
  resolve, symbolic links followed, inside the local target folder. A bad path raises
  :class:`~modelyard.errors.ValidationError` naming the field, and nothing has been written;
- **never replace a file when ``overwrite`` is False**: files that exist are skipped and listed
  in the result and the summary line. Even against another process writing the same name at the
  same time, a local file is put in place with ``link`` (which fails on an existing name) rather
  than ``rename`` (which replaces it);
- **write atomically**: a reader sees the old file or the whole new one. Between local folders
  this is :mod:`modelyard.store.local_copy`'s work (an unnamed file linked into place, or a
  temporary name renamed); on other filesystems a temporary name beside the target is moved
  into place, and on object stores, where a PUT is all-or-nothing, files are written directly;
- **show progress** with :class:`~modelyard.progress.TransferProgress`.

Between local folders, two threads overlap the system calls of many small files. Other stores
go through fsspec's ``put_file`` and ``get_file`` with a progress callback, several at a time on
object stores.

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
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from fsspec.callbacks import Callback
from rich.console import Console

from modelyard.backend.records import FileInfo
from modelyard.errors import NotFoundError, StorageError, ValidationError
from modelyard.names import MAX_PATH_LENGTH, clean_relpath, join_relpath
from modelyard.progress import TransferKind, TransferProgress
from modelyard.store.files import TMP_PREFIX, FileStore
from modelyard.store.local_copy import LocalCopier, place, remove_quietly, temp_name

# Two threads overlap the kernel's work of creating and renaming small files on two cores:
# 10,000 files of 1-4 KiB went at about 22,000 files/s with two against 16,000 with one on
# this ext4 disk; three or four were no faster.
LOCAL_WORKERS = 2
# Object stores answer each request after a network round trip: keep several in flight.
REMOTE_WORKERS = 8
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
    source: str  # local path or store path to read
    target: str  # local path or store path to write
    name: str  # the relative path users see in messages and in TransferResult.skipped
    size: int


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
        items.append(_Item(path, _store_path(store, name), name, _source_size(field, path)))
    if store.is_local:
        todo, skipped = _split_existing_local(field, items, overwrite, store.url)
        _make_parents(todo, os.makedirs)
        run: Callable[[int, _Item, _Context], None] = _copy_local
        workers = LOCAL_WORKERS
    else:
        existing = set() if overwrite else {info.path for info in store.list(prefix)}
        todo = [item for item in items if item.name not in existing]
        skipped = [item.name for item in items if item.name in existing]
        _make_parents(todo, lambda path, exist_ok: store.fs.makedirs(path, exist_ok=exist_ok))
        run = _put_renaming if store.renames else _put_direct
        workers = 1 if store.renames else REMOTE_WORKERS
    return _transfer(
        "upload", todo, skipped, run, store, workers, overwrite, show_progress, console, started
    )


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
    ``local_root``: a path with ``..``, or a folder under ``local_root`` that is a symbolic link
    leading out of it, raises ValidationError before anything is written. ``field`` and
    ``root_field`` name the arguments in error messages. Local files that exist are skipped
    unless ``overwrite``.

    Example::

        download(store, store.list("mnist"), "./data")   # ./data/mnist/...
    """
    started = time.perf_counter()
    names = _clean_names(field, [f.path if isinstance(f, FileInfo) else f for f in files], "")
    root = os.path.realpath(os.fspath(local_root))
    if os.path.exists(root) and not os.path.isdir(root):
        raise ValidationError(root_field, f"{os.fspath(local_root)!r} exists and is not a folder")
    _check_inside(field, root, names)
    items = []
    for entry, name in zip(files, names, strict=True):
        size = entry.size if isinstance(entry, FileInfo) else _store_size(store, name)
        items.append(_Item(_store_path(store, name), os.path.join(root, name), name, size))
    todo, skipped = _split_existing_local(field, items, overwrite, os.fspath(local_root))
    _make_parents(todo, os.makedirs)
    if store.is_local:
        run: Callable[[int, _Item, _Context], None] = _copy_local
        workers = LOCAL_WORKERS
    else:
        run = _get_remote
        workers = 1 if store.renames else REMOTE_WORKERS
    return _transfer(
        "download", todo, skipped, run, store, workers, overwrite, show_progress, console, started
    )


# -- checks, all done before the first byte is written -------------------------------------


def _clean_names(field: str, names: Sequence[str], prefix: str) -> list[str]:
    """Clean each relative path and join it to ``prefix``; refuse duplicates and names that
    another name needs as a folder."""
    cleaned = []
    for raw in names:
        name = join_relpath(prefix, clean_relpath(field, raw))
        if len(name) > MAX_PATH_LENGTH:
            raise ValidationError(field, f"{name!r} is longer than {MAX_PATH_LENGTH} characters")
        if name.rsplit("/", 1)[-1].startswith(TMP_PREFIX):
            raise ValidationError(
                field, f"{raw!r}: names starting with {TMP_PREFIX!r} are kept for temporary files"
            )
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


def _store_size(store: FileStore, name: str) -> int:
    if store.is_local:
        try:
            return os.stat(_store_path(store, name)).st_size
        except FileNotFoundError:
            raise NotFoundError(f"file {name!r} does not exist in {store.url}") from None
    return store.size(name)


def _check_inside(field: str, root: str, names: Sequence[str]) -> None:
    """Every folder that ``names`` need below ``root`` must resolve inside ``root``: a symbolic
    link among the existing ones could otherwise carry a write anywhere on the disk."""
    checked: set[str] = set()
    for name in names:
        folder = name.rpartition("/")[0]
        if folder in checked:
            continue
        checked.add(folder)
        real = os.path.realpath(os.path.join(root, folder))
        if real != root and not real.startswith(root + os.sep):
            raise ValidationError(
                field, f"{name!r} would be written outside {root} (through a symbolic link)"
            )


def _split_existing_local(
    field: str, items: list[_Item], overwrite: bool, where: str
) -> tuple[list[_Item], list[str]]:
    """Split into the items to copy and the names skipped because their local target exists.

    A folder is looked at once: in one that does not exist yet (an upload to a new target
    path), no file can exist, and its files need no look of their own.
    """
    todo: list[_Item] = []
    skipped: list[str] = []
    folder_exists: dict[str, bool] = {}
    for item in items:
        folder = item.target.rpartition("/")[0]
        exists = folder_exists.get(folder)
        if exists is None:
            exists = folder_exists[folder] = _folder_exists(field, folder, item.name, where)
        if not exists:
            todo.append(item)
            continue
        try:
            mode = os.lstat(item.target).st_mode
        except FileNotFoundError:
            todo.append(item)
            continue
        if stat.S_ISDIR(mode):
            raise ValidationError(field, f"{item.name!r} is a folder in {where}")
        if overwrite:
            todo.append(item)
        else:
            skipped.append(item.name)
    return todo, skipped


def _folder_exists(field: str, folder: str, name: str, where: str) -> bool:
    try:
        mode = os.stat(folder).st_mode
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        mode = 0
    if not stat.S_ISDIR(mode):
        raise ValidationError(field, f"{name!r}: a folder it needs is a file in {where}")
    return True


def _make_parents(items: list[_Item], makedirs: Callable[..., Any]) -> None:
    done: set[str] = set()
    for item in items:
        parent = item.target.rpartition("/")[0]
        if parent and parent not in done:
            done.add(parent)
            makedirs(parent, exist_ok=True)


# -- running the copies ---------------------------------------------------------------------


@dataclass
class _Context:
    store: FileStore
    progress: TransferProgress
    overwrite: bool
    token: str  # makes temporary names unique to this transfer
    stop: threading.Event
    copier: LocalCopier | None = None  # when both ends are local


def _transfer(
    kind: TransferKind,
    todo: list[_Item],
    skipped: list[str],
    run: Callable[[int, _Item, _Context], None],
    store: FileStore,
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
    context = _Context(store, progress, overwrite, uuid.uuid4().hex[:12], threading.Event())
    if run is _copy_local:
        context.copier = LocalCopier(
            overwrite=overwrite, token=context.token, stop=context.stop, on_chunk=progress.advance
        )
    try:
        with progress:
            _run_all(todo, run, context, workers if len(todo) >= _MIN_FILES_FOR_THREADS else 1)
    finally:
        if context.copier is not None:
            context.copier.close()
    return TransferResult(
        progress.files_done, progress.bytes_done, tuple(progress.skipped), progress.seconds
    )


def _run_all(
    items: list[_Item], run: Callable[[int, _Item, _Context], None], context: _Context, workers: int
) -> None:
    """Run ``run`` on every item, on this thread and ``workers - 1`` more.

    The threads pull from one shared iterator (no future per file: at 10,000 files a second a
    future costs as much as the copy). The first error stops the others after their current
    file, and is raised here, translated to StorageError when the filesystem raised it.
    """
    lock = threading.Lock()
    pending: Iterator[tuple[int, _Item]] = enumerate(items)
    errors: list[tuple[str, BaseException]] = []

    def work() -> None:
        name = ""
        try:
            while not context.stop.is_set():
                with lock:
                    next_item = next(pending, None)
                if next_item is None:
                    return
                name = next_item[1].name
                run(next_item[0], next_item[1], context)
        except BaseException as error:
            errors.append((name, error))  # before stop is set, so that it comes first
            context.stop.set()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers - 1)]
    for thread in threads:
        thread.start()
    try:
        work()
    finally:
        # Ctrl-C lands in this thread: stop the others, and wait for them so that their
        # temporary files are removed before the caller sees the exception.
        context.stop.set()
        for thread in threads:
            thread.join()
    if errors:
        name, error = errors[0]
        if isinstance(error, OSError):
            raise StorageError(
                f"{context.progress.kind} of {name!r} failed: {error}; the files copied before "
                "it are complete, the others were not written"
            ) from error
        raise error


def _copy_local(index: int, item: _Item, context: _Context) -> None:
    """Copy one file between local folders (see :mod:`modelyard.store.local_copy`)."""
    assert context.copier is not None
    copied, unreported, placed = context.copier.copy(index, item.source, item.target, item.size)
    if placed:
        context.progress.advance(unreported, files=1)
    else:
        context.progress.withdraw(item.name, item.size, copied - unreported)


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


def _put_direct(index: int, item: _Item, context: _Context) -> None:
    """Upload to an object store, where one PUT is all-or-nothing: no temporary name."""
    callback = _ProgressCallback(context.progress)
    context.store.fs.put_file(item.source, item.target, callback=callback)
    _finish_remote(item, callback, context)


def _put_renaming(index: int, item: _Item, context: _Context) -> None:
    """Upload to a filesystem with folders and renames (memory://, sftp): temp name, then mv."""
    fs = context.store.fs
    temp = temp_name(item.target, context.token, index)
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


def _get_remote(index: int, item: _Item, context: _Context) -> None:
    """Download one file from a non-local store to a temporary local name, then place it."""
    temp = temp_name(item.target, context.token, index)
    callback = _ProgressCallback(context.progress)
    try:
        context.store.fs.get_file(item.source, temp, callback=callback)
        placed = place(temp, item.target, context.overwrite)
    except BaseException:
        remove_quietly(temp)
        raise
    if placed:
        _finish_remote(item, callback, context)
    else:
        context.progress.withdraw(item.name, item.size, callback.copied)


def _finish_remote(item: _Item, callback: _ProgressCallback, context: _Context) -> None:
    # Not every filesystem reports bytes through the callback (or all of them): count the rest.
    context.progress.advance(max(item.size - callback.copied, 0), files=1)


__all__ = ["TransferResult", "download", "upload"]
