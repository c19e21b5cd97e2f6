"""Snapshots of a run's source folder: taken when a run is submitted, restored where it runs.

Taking a snapshot walks ``source_directory``, leaves out what its ignore files say, hashes every
file and stores it content-addressed below a :class:`~modelyard.store.files.FileStore`::

    snapshots/blobs/<first 2 hex digits>/<sha256>   one file's bytes, written once
    snapshots/manifests/<id>.json                   the manifest, JSON:
        {"format": 1, "files": {relpath: {"sha256": ..., "size": ..., "executable": ...}}}

A snapshot's id is the SHA-256 of its manifest's bytes (canonical JSON, no timestamps), so the
same folder submitted twice has the same id and stores nothing new, and a changed folder stores
only its changed files. Blobs are written before their manifest: a manifest that exists has all
its blobs, which lets an unchanged folder skip every blob check.

What goes in:

- Ignore files, with gitignore semantics (``pathspec``): in each folder its ``.amlignore`` if it
  has one, else its ``.gitignore`` (as in Azure ML: an ``.amlignore`` replaces ``.gitignore``).
  Patterns apply below the folder that holds them and a deeper file's patterns win, as in git.
  An excluded folder is not entered, so nothing below it can be re-included (git's rule too).
  The ignore files themselves are included unless they exclude themselves.
- ``.git`` (a folder, or the file a worktree has) is always left out: git never tracks it, and
  its objects would count against the file limit.
- Symbolic links are never followed out of the folder. A link to a file inside the folder is
  stored as a regular file with that file's bytes. Links to folders (which could loop or repeat
  a tree), links that point outside the folder, broken links and special files (FIFOs, sockets,
  devices) are left out, logged as a warning and listed in :attr:`Snapshot.skipped`.
- Empty folders are not recorded (as in git).
- More than ``max_files`` files or ``max_bytes`` bytes after the ignore rules raises
  :class:`SnapshotTooLargeError`, naming the largest entries; nothing is stored then.

Restoring copies each blob into the target folder with its executable bit. Blobs are copied,
never hard-linked: the script owns its working folder and could write through a hard link (even
to a read-only file, after a chmod) and corrupt the snapshot for every later run. On a local
store the copy uses ``copy_file_range`` (a reflink where the filesystem has them, an in-kernel
copy elsewhere); from other stores the bytes are streamed and their SHA-256 checked.

Example::

    store = FileStore("file:///ws/artifacts")
    snap = take_snapshot(Path("./tf-mnist"), store)
    snap.id, snap.file_count                     # ('3f1c…', 2)
    restore_snapshot(store, snap.id, Path("/tmp/run-1/wd"))
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from modelyard.backend.source_tree import SourceFile, check_source_dir, walk_source
from modelyard.errors import NotFoundError, StorageError, ValidationError
from modelyard.names import clean_relpath
from modelyard.store.files import FileStore
from modelyard.store.local_copy import copy_fd

BLOBS = "snapshots/blobs"
MANIFESTS = "snapshots/manifests"
MANIFEST_FORMAT = 1
DEFAULT_MAX_BYTES = 300 * 1024**2
DEFAULT_MAX_FILES = 2000

# Below 1 MiB a file is read in one call and hashed in one call: hashlib.file_digest allocates a
# 256 KiB buffer per file, which costs more than the hashing for the typical 2 KB source file.
_SMALL_FILE = 1 << 20
_COPY_CHUNK = 8 << 20
_THREADED_HASHING = 64 << 20
# Object stores answer one request per blob in tens of milliseconds: overlap them.
_REMOTE_WORKERS = 16
_LARGEST_SHOWN = 5
_ID = re.compile(r"[0-9a-f]{64}")

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class Snapshot:
    """A stored snapshot: its id (the SHA-256 of its manifest), file count and total bytes.

    ``skipped`` lists the paths that :func:`take_snapshot` left out although no ignore rule
    named them (links it would not follow, special files); it is empty on a snapshot read back
    with :func:`get_snapshot` or :func:`restore_snapshot`.
    """

    id: str
    file_count: int
    total_bytes: int
    skipped: tuple[str, ...] = ()


class SnapshotTooLargeError(ValidationError):
    """The source folder holds more files or bytes than a snapshot may, after the ignore rules.

    ``largest`` holds ``(entry, bytes, files)`` for the entries named in the message; folders
    end with ``/``.
    """

    code = "snapshot_too_large"

    def __init__(
        self,
        source_dir: Path,
        file_count: int,
        total_bytes: int,
        max_files: int,
        max_bytes: int,
        largest: list[tuple[str, int, int]],
    ) -> None:
        self.source_dir = source_dir
        self.file_count = file_count
        self.total_bytes = total_bytes
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.largest = largest
        over = []
        if file_count > max_files:
            over.append(f"{file_count:,} files (the limit is {max_files:,})")
        if total_bytes > max_bytes:
            over.append(f"{_human(total_bytes)} (the limit is {_human(max_bytes)})")
        shown = ", ".join(_describe(entry, size, count) for entry, size, count in largest)
        ignore_file = source_dir / ".amlignore"
        replaces = ""
        if not ignore_file.exists() and (source_dir / ".gitignore").exists():
            replaces = " (an .amlignore replaces the folder's .gitignore: copy its lines over)"
        example = f"; for example the line '{largest[0][0]}'" if largest else ""
        super().__init__(
            "source_directory",
            f"{str(source_dir)!r} is too big to snapshot: {' and '.join(over)} after the ignore "
            f"rules. Largest entries: {shown}. Leave out what the run does not need by listing "
            f"it in {ignore_file}{replaces}, with gitignore syntax{example}; or raise the limit "
            "(max_files / max_bytes).",
        )


def take_snapshot(
    source_dir: Path | str,
    store: FileStore,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
) -> Snapshot:
    """Snapshot ``source_dir`` into ``store``; see the module docstring for the rules.

    Idempotent: taking the same folder again returns the same snapshot and writes nothing.
    Raises :class:`~modelyard.errors.ValidationError` (field ``source_directory``) for a missing
    folder, a file, a file name that cannot be stored or a file that changes while it is read,
    and :class:`SnapshotTooLargeError` over the limits.

    Example::

        snap = take_snapshot(Path("./tf-mnist"), FileStore("file:///ws/artifacts"))
        print(snap.id, snap.file_count, snap.total_bytes)
    """
    root = check_source_dir(source_dir)
    for field, limit in (("max_bytes", max_bytes), ("max_files", max_files)):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValidationError(field, f"expected a whole number >= 0, got {limit!r}")

    files, skipped = walk_source(root)
    total = sum(item.size for item in files)
    if len(files) > max_files or total > max_bytes:
        largest = _largest(files, by_bytes=total > max_bytes)
        raise SnapshotTooLargeError(root, len(files), total, max_files, max_bytes, largest)
    if skipped:
        logger.warning(
            "snapshot of %s leaves out %d links or special files it will not follow: %s",
            root,
            len(skipped),
            ", ".join(skipped[:10]) + (", …" if len(skipped) > 10 else ""),
        )

    # Threads pay only for big files (hashlib drops the GIL on large buffers); for small ones
    # they cost more than they save (2,000 files of 2 KB: 16 ms in one thread, 36 ms in two).
    workers = min(8, os.cpu_count() or 1) if total >= _THREADED_HASHING else 1
    hashed = _map(store, _hash_file, files, workers=workers)
    entries = {
        item.relpath: {"sha256": digest, "size": size, "executable": executable}
        for item, (digest, size, executable) in zip(files, hashed, strict=True)
    }
    manifest = json.dumps(
        {"format": MANIFEST_FORMAT, "files": entries}, sort_keys=True, separators=(",", ":")
    ).encode()
    snapshot_id = hashlib.sha256(manifest).hexdigest()
    snapshot = Snapshot(
        snapshot_id, len(entries), sum(size for _, size, _ in hashed), tuple(skipped)
    )
    if store.exists(_manifest_path(snapshot_id)):
        return snapshot

    first_of: dict[str, SourceFile] = {}
    for item, (digest, _, _) in zip(files, hashed, strict=True):
        first_of.setdefault(digest, item)
    present = _map(store, lambda d: store.exists(_blob_path(d)), list(first_of))
    missing = [(d, first_of[d]) for d, found in zip(first_of, present, strict=True) if not found]
    _map(store, lambda pair: _upload_blob(store, *pair), missing)
    store.write_bytes(_manifest_path(snapshot_id), manifest)
    return snapshot


def get_snapshot(store: FileStore, snapshot_id: str) -> Snapshot:
    """The stored snapshot ``snapshot_id``; raises NotFoundError when it does not exist.

    Example::

        get_snapshot(store, run.snapshot_id).file_count      # 2
    """
    entries = _load_manifest(store, snapshot_id)
    return Snapshot(snapshot_id, len(entries), sum(entry.size for entry in entries))


def restore_snapshot(store: FileStore, snapshot_id: str, target_dir: Path | str) -> Snapshot:
    """Write the files of snapshot ``snapshot_id`` into ``target_dir``, with executable bits.

    ``target_dir`` must be missing or empty; it is created with its parents. Every path in the
    manifest is checked to stay inside ``target_dir`` before anything is written, and files
    are created without following links. If a copy fails, what was written is removed again.

    Example::

        restore_snapshot(store, snap.id, Path("/tmp/run-1/wd"))
        # /tmp/run-1/wd/tf_mnist.py ...
    """
    entries = _load_manifest(store, snapshot_id)
    target = Path(target_dir)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ValidationError("target_dir", f"{target} exists and is not a folder")
    if target.exists() and any(target.iterdir()):
        raise ValidationError("target_dir", f"{target} is not empty; restore into a new folder")
    target.mkdir(parents=True, exist_ok=True)

    try:
        # Sorted, each folder comes after its parent; the set holds every ancestor, so mkdir
        # (which never follows a link at the last part) is enough.
        folders = sorted(_folders(entry.relpath for entry in entries))
        for folder in folders:
            os.mkdir(target / folder)
        if store.is_local:
            for entry in entries:
                _copy_local_blob(store, entry, target / entry.relpath)
        else:
            _map(store, lambda entry: _stream_blob(store, entry, target / entry.relpath), entries)
    except BaseException:
        for child in target.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        raise
    return Snapshot(snapshot_id, len(entries), sum(entry.size for entry in entries))


# --- taking -----------------------------------------------------------------------------------


def _largest(files: list[SourceFile], *, by_bytes: bool) -> list[tuple[str, int, int]]:
    """The entries that weigh most (bytes or files), without repeating a single-child chain."""
    totals: dict[str, list[int]] = {}
    for item in files:
        parts = item.relpath.split("/")
        for depth in range(1, len(parts)):
            total = totals.setdefault("/".join(parts[:depth]) + "/", [0, 0])
            total[0] += item.size
            total[1] += 1
        totals[item.relpath] = [item.size, 1]
    metric = 0 if by_bytes else 1
    ranked = sorted(
        totals.items(), key=lambda kv: (-kv[1][metric], kv[0].rstrip("/").count("/"), kv[0])
    )
    chosen: list[tuple[str, int, int]] = []
    for entry, (size, count) in ranked:
        # A folder that holds nothing but one heavier entry says the same thing twice.
        same = (size, count)[metric]
        if any(entry.startswith(c) and (s, n)[metric] == same for c, s, n in chosen):
            continue
        chosen.append((entry, size, count))
        if len(chosen) == _LARGEST_SHOWN:
            break
    return chosen


def _hash_file(item: SourceFile) -> tuple[str, int, bool]:
    """SHA-256, size and executable bit of one file, all read from the same open file."""
    fd = _open_no_follow(item)
    try:
        info = os.fstat(fd)
        if info.st_size < _SMALL_FILE:
            parts = [os.read(fd, info.st_size + 1)]
            while parts[-1]:
                parts.append(os.read(fd, _COPY_CHUNK))
            data = b"".join(parts)
            return hashlib.sha256(data).hexdigest(), len(data), bool(info.st_mode & stat.S_IXUSR)
        with os.fdopen(fd, "rb", closefd=False) as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        return digest, info.st_size, bool(info.st_mode & stat.S_IXUSR)
    finally:
        os.close(fd)


def _open_no_follow(item: SourceFile) -> int:
    """Open a file found by the walk, refusing whatever took its place since.

    O_NOFOLLOW: a file swapped for a link must not lead outside the folder; O_NONBLOCK and the
    S_ISREG check: a file swapped for a FIFO must not block the snapshot forever.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(item.path, flags)
    except OSError as error:
        raise ValidationError(
            "source_directory",
            f"cannot read {item.relpath!r}: {error.strerror}; make it readable or list it in "
            ".amlignore",
        ) from error
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValidationError(
            "source_directory",
            f"{item.relpath!r} stopped being a regular file while the snapshot was taken",
        )
    return fd


def _upload_blob(store: FileStore, digest: str, item: SourceFile) -> None:
    """Store one file's bytes under its digest, checking they are still the bytes hashed."""
    fd = _open_no_follow(item)
    check = hashlib.sha256()
    with os.fdopen(fd, "rb") as src, store.open_write(_blob_path(digest)) as dst:
        while chunk := src.read(_COPY_CHUNK):
            check.update(chunk)
            dst.write(chunk)
        if check.hexdigest() != digest:
            # Raising inside open_write drops the temporary file: a blob is never stored under
            # a digest that is not its own.
            raise ValidationError(
                "source_directory",
                f"{item.relpath!r} changed while the snapshot was taken; submit again once "
                "nothing is writing to it, or list it in .amlignore",
            )


# --- restoring --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    relpath: str
    sha256: str
    size: int
    executable: bool


def _load_manifest(store: FileStore, snapshot_id: str) -> list[_Entry]:
    if not isinstance(snapshot_id, str) or not _ID.fullmatch(snapshot_id):
        raise ValidationError(
            "snapshot_id", f"{snapshot_id!r} is not a snapshot id (64 hex digits)"
        )
    path = _manifest_path(snapshot_id)
    if not store.exists(path):
        raise NotFoundError(f"snapshot {snapshot_id} does not exist in {store.url}")
    data = store.read_bytes(path)
    if hashlib.sha256(data).hexdigest() != snapshot_id:
        raise StorageError(f"snapshot {snapshot_id} in {store.url} is corrupt: its bytes changed")
    try:
        manifest = json.loads(data, object_pairs_hook=_no_duplicate_keys)
        if manifest["format"] != MANIFEST_FORMAT:
            raise StorageError(
                f"snapshot {snapshot_id} has manifest format {manifest['format']!r}; this "
                f"modelyard reads format {MANIFEST_FORMAT}: upgrade modelyard"
            )
        entries = [_parse_entry(relpath, item) for relpath, item in manifest["files"].items()]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise StorageError(f"snapshot {snapshot_id} has a malformed manifest: {error}") from error
    _check_manifest_paths(entries)
    return entries


def _parse_entry(relpath: str, item: dict[str, Any]) -> _Entry:
    digest, size, executable = item["sha256"], item["size"], item["executable"]
    if not (isinstance(digest, str) and _ID.fullmatch(digest)):
        raise ValueError(f"{relpath!r} has no valid sha256")
    if type(size) is not int or size < 0 or type(executable) is not bool:
        raise ValueError(f"{relpath!r} has a bad size or executable flag")
    return _Entry(relpath, digest, size, executable)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key appears twice")
    return result


def _check_manifest_paths(entries: list[_Entry]) -> None:
    """Every path is clean, relative, inside its root, and no file is also a folder."""
    field = "snapshot manifest"
    for entry in entries:
        if clean_relpath(field, entry.relpath) != entry.relpath:
            raise ValidationError(field, f"path {entry.relpath!r} is not in normal form")
    folders = _folders(entry.relpath for entry in entries)
    for entry in entries:
        if entry.relpath in folders:
            raise ValidationError(field, f"{entry.relpath!r} is both a file and a folder")


def _folders(relpaths: Iterable[str]) -> set[str]:
    """Every folder that holds one of ``relpaths``, at any depth."""
    folders: set[str] = set()
    for relpath in relpaths:
        parts = relpath.split("/")
        folders.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    return folders


def _create(dest: Path, executable: bool) -> int:
    # O_EXCL | O_NOFOLLOW: never write through something already at the path; the umask
    # applies to the mode as it does for any file the user creates.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(dest, flags, 0o777 if executable else 0o666)


def _copy_local_blob(store: FileStore, entry: _Entry, dest: Path) -> None:
    try:
        # Through the store: no link below its root is followed.
        blob = store.open_read(_blob_path(entry.sha256))
    except NotFoundError as error:
        raise _missing_blob(store, entry) from error
    with blob:
        src = blob.fileno()
        if os.fstat(src).st_size != entry.size:
            raise StorageError(
                f"blob {entry.sha256} for {entry.relpath!r} in {store.url} is corrupt: it holds "
                f"{os.fstat(src).st_size} bytes, not {entry.size}"
            )
        dst = _create(dest, entry.executable)
        try:
            copied, _ = copy_fd(src, dst, entry.size)
        finally:
            os.close(dst)
        if copied != entry.size:
            raise StorageError(f"a snapshot blob ended after {copied} of {entry.size} bytes")


def _stream_blob(store: FileStore, entry: _Entry, dest: Path) -> None:
    check = hashlib.sha256()
    try:
        src = store.open_read(_blob_path(entry.sha256))
    except NotFoundError as error:
        raise _missing_blob(store, entry) from error
    with src, os.fdopen(_create(dest, entry.executable), "wb") as dst:
        while chunk := src.read(_COPY_CHUNK):
            check.update(chunk)
            dst.write(chunk)
    if check.hexdigest() != entry.sha256:
        raise StorageError(f"blob {entry.sha256} for {entry.relpath!r} in {store.url} is corrupt")


def _missing_blob(store: FileStore, entry: _Entry) -> StorageError:
    return StorageError(f"blob {entry.sha256} for {entry.relpath!r} is missing from {store.url}")


# --- shared -----------------------------------------------------------------------------------


def _blob_path(digest: str) -> str:
    return f"{BLOBS}/{digest[:2]}/{digest}"


def _manifest_path(snapshot_id: str) -> str:
    return f"{MANIFESTS}/{snapshot_id}.json"


def _map(
    store: FileStore,
    fn: Callable[[_T], _R],
    items: Iterable[_T],
    *,
    workers: int | None = None,
) -> list[_R]:
    """``[fn(x) for x in items]``, overlapped in threads where it pays.

    Object stores overlap round trips; ``workers`` asks for threads on any store (for hashing,
    which releases the GIL on large buffers). Results keep the order of ``items``.
    """
    items = list(items)
    # Stores that rename (local folders, memory://) answer at once; object stores are the
    # remote kind, where every call is a round trip.
    count = workers if workers is not None else (1 if store.renames else _REMOTE_WORKERS)
    if count <= 1 or len(items) < 2:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="snapshot") as pool:
        return list(pool.map(fn, items))


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value, unit = size / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def _describe(entry: str, size: int, count: int) -> str:
    if entry.endswith("/"):
        return f"{entry} ({_human(size)} in {count:,} file{'s' if count != 1 else ''})"
    return f"{entry} ({_human(size)})"


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_FILES",
    "Snapshot",
    "SnapshotTooLargeError",
    "get_snapshot",
    "restore_snapshot",
    "take_snapshot",
]
