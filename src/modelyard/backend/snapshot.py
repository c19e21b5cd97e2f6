"""Snapshots of a run's source folder: taken when a run is submitted, restored where it runs.

Taking a snapshot walks ``source_directory``, leaves out what its ignore files say, hashes every
file and stores it content-addressed through the Backend contract, so that it works the same on
a workspace folder, an object store, a server or a run's channel: one blob per distinct file
(named by the SHA-256 of its bytes) and a manifest that lists them (its format is in
:mod:`modelyard.backend.snapshot_manifest`; where a LocalBackend keeps them, in
:mod:`modelyard.backend.local.snapshots`).

A snapshot's id is the SHA-256 of its manifest's bytes (canonical JSON, no timestamps), so the
same folder submitted twice has the same id and stores nothing new, and a changed folder stores
only its changed files: the backend is asked once per thousand files which blobs it lacks
(``missing_snapshot_blobs``), only those are uploaded, a few at a time, and the manifest comes
last. A backend stores a manifest only once it has all its blobs, which lets an unchanged
folder skip every blob check (one call finds its manifest).

What goes in:

- Ignore files, with gitignore semantics (``pathspec``): in each folder its ``.amlignore`` if it
  has one, else its ``.gitignore`` (as in Azure ML: an ``.amlignore`` replaces ``.gitignore``).
  Patterns apply below the folder that holds them and a deeper file's patterns win, as in git.
  An excluded folder is not entered, so nothing below it can be re-included (git's rule too).
  The ignore files themselves are included unless they exclude themselves.
- ``.git`` (a folder, or the file a worktree has) is always left out: git never tracks it, and
  its objects would count against the file limit.
- Workspace folders are always left out: every ``.modelyard`` folder (where workspaces go by
  default, ``./.modelyard/<name>``), every folder holding a modelyard ``workspace.json``, and
  the submitting workspace's folder (``leave_out``). A notebook submits
  ``source_directory="."`` from the folder that holds its workspace; the snapshot would take
  the database and the earlier runs' working folders, which change while it is taken. What
  was left out is logged and listed in :attr:`Snapshot.workspaces`.
- Symbolic links are never followed out of the folder. A link to a file inside the folder is
  stored as a regular file with that file's bytes. Links to folders (which could loop or repeat
  a tree), links that point outside the folder, broken links and special files (FIFOs, sockets,
  devices) are left out, logged as a warning and listed in :attr:`Snapshot.skipped`.
- Empty folders are not recorded (as in git).
- More than ``max_files`` files or ``max_bytes`` bytes after the ignore rules raises
  :class:`SnapshotTooLargeError`, naming the largest entries; nothing is stored then.

Restoring copies each blob into the target folder with its executable bit. Blobs are copied,
never hard-linked: the script owns its working folder and could write through a hard link (even
to a read-only file, after a chmod) and corrupt the snapshot for every later run. When the
backend's stream of a blob is a local file (it has a file descriptor: a LocalBackend on a
folder), the copy uses ``copy_file_range`` (a reflink where the filesystem has them, an
in-kernel copy elsewhere) and the blob's size is checked; any other stream is copied through
and its SHA-256 checked.

Example::

    backend = LocalBackend("demo", "sqlite:///ws/modelyard.db", "file:///ws/artifacts")
    snap = take_snapshot(Path("./tf-mnist"), backend)
    snap.id, snap.file_count                     # ('3f1c…', 2)
    restore_snapshot(backend, snap.id, Path("/tmp/run-1/wd"))
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from modelyard.backend.base import Backend
from modelyard.backend.snapshot_manifest import (
    ManifestEntry,
    ManifestError,
    check_digest,
    encode_manifest,
    manifest_folders,
    parse_manifest,
    sha256_hex,
)
from modelyard.backend.source_tree import SourceFile, check_source_dir, walk_source
from modelyard.errors import NotFoundError, StorageError, ValidationError
from modelyard.store.local_copy import copy_fd

DEFAULT_MAX_BYTES = 300 * 1024**2
DEFAULT_MAX_FILES = 2000

# Below 1 MiB a file is read in one call and hashed in one call: hashlib.file_digest allocates a
# 256 KiB buffer per file, which costs more than the hashing for the typical 2 KB source file.
_SMALL_FILE = 1 << 20
_COPY_CHUNK = 8 << 20
_THREADED_HASHING = 64 << 20
# Digests per missing_snapshot_blobs call: 1,000 digests are ~70 KB of JSON, one round trip.
_BATCH = 1000
# Blobs moved at once: an object store or a server answers each in tens of milliseconds, so a
# few calls in flight hide the latency without holding many files open (300 files on the
# test S3 endpoint: restored in 9.8 s with 4 threads, 8.3 s with 8).
_TRANSFERS = 8
_LARGEST_SHOWN = 5

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True)
class Snapshot:
    """A stored snapshot: its id (the SHA-256 of its manifest), file count and total bytes.

    ``skipped`` lists the paths that :func:`take_snapshot` left out although no ignore rule
    named them (links it would not follow, special files), and ``workspaces`` the workspace
    folders it left out; both are empty on a snapshot read back with :func:`get_snapshot` or
    :func:`restore_snapshot`.
    """

    id: str
    file_count: int
    total_bytes: int
    skipped: tuple[str, ...] = ()
    workspaces: tuple[str, ...] = ()


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
    backend: Backend,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
    leave_out: Iterable[Path] = (),
) -> Snapshot:
    """Snapshot ``source_dir`` into ``backend``; see the module docstring for the rules.
    ``leave_out``: folders never taken (the submitting workspace's).

    Idempotent: taking the same folder again returns the same snapshot and writes nothing.
    Raises :class:`~modelyard.errors.ValidationError` (field ``source_directory``) for a missing
    folder, a file, a file name that cannot be stored or a file that changes while it is read,
    and :class:`SnapshotTooLargeError` over the limits.

    Example::

        snap = take_snapshot(Path("./tf-mnist"), backend)
        print(snap.id, snap.file_count, snap.total_bytes)
    """
    root = check_source_dir(source_dir)
    for field, limit in (("max_bytes", max_bytes), ("max_files", max_files)):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValidationError(field, f"expected a whole number >= 0, got {limit!r}")

    tree = walk_source(root, leave_out)
    files, skipped = tree.files, tree.skipped
    if tree.workspaces:
        # Expected (notebooks submit "." beside ./.modelyard): said in the log, not warned of.
        logger.info(
            "snapshot of %s leaves out %s: workspace folders are never part of a run's source",
            root,
            ", ".join(tree.workspaces),
        )
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
    hashed = _map(_hash_file, files, workers=workers)
    entries = [
        ManifestEntry(item.relpath, digest, size, executable)
        for item, (digest, size, executable) in zip(files, hashed, strict=True)
    ]
    manifest = encode_manifest(entries)
    snapshot_id = sha256_hex(manifest)
    snapshot = Snapshot(
        snapshot_id,
        len(entries),
        sum(entry.size for entry in entries),
        tuple(skipped),
        tuple(tree.workspaces),
    )
    try:
        backend.get_snapshot_manifest(snapshot_id)
        return snapshot  # stored before, with all its blobs
    except NotFoundError:
        pass

    first_of: dict[str, SourceFile] = {}
    for item, entry in zip(files, entries, strict=True):
        first_of.setdefault(entry.sha256, item)
    digests = list(first_of)
    missing: list[str] = []
    for start in range(0, len(digests), _BATCH):
        missing.extend(backend.missing_snapshot_blobs(digests[start : start + _BATCH]))
    _map(lambda digest: _upload_blob(backend, digest, first_of[digest]), missing)
    stored_id = backend.put_snapshot_manifest(manifest)
    if stored_id != snapshot_id:
        raise StorageError(
            f"the backend stored snapshot {snapshot_id} as {stored_id!r}: it does not name "
            "manifests by their SHA-256"
        )
    return snapshot


def get_snapshot(backend: Backend, snapshot_id: str) -> Snapshot:
    """The stored snapshot ``snapshot_id``; raises NotFoundError when it does not exist.

    Example::

        get_snapshot(backend, run.snapshot_id).file_count      # 2
    """
    entries = _load_manifest(backend, snapshot_id)
    return Snapshot(snapshot_id, len(entries), sum(entry.size for entry in entries))


def restore_snapshot(backend: Backend, snapshot_id: str, target_dir: Path | str) -> Snapshot:
    """Write the files of snapshot ``snapshot_id`` into ``target_dir``, with executable bits.

    ``target_dir`` must be missing or empty; it is created with its parents. Every path in the
    manifest is checked to stay inside ``target_dir`` before anything is written, and files
    are created without following links. If a copy fails, what was written is removed again;
    a blob that is missing or whose bytes are not the manifest's is a StorageError naming the
    file.

    Example::

        restore_snapshot(backend, snap.id, Path("/tmp/run-1/wd"))
        # /tmp/run-1/wd/tf_mnist.py ...
    """
    entries = _load_manifest(backend, snapshot_id)
    target = Path(target_dir)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ValidationError("target_dir", f"{target} exists and is not a folder")
    if target.exists() and any(target.iterdir()):
        raise ValidationError("target_dir", f"{target} is not empty; restore into a new folder")
    target.mkdir(parents=True, exist_ok=True)

    try:
        # Sorted, each folder comes after its parent; the set holds every ancestor, so mkdir
        # (which never follows a link at the last part) is enough.
        for folder in sorted(manifest_folders(entry.relpath for entry in entries)):
            os.mkdir(target / folder)
        _map(
            lambda entry: _restore_blob(backend, snapshot_id, entry, target / entry.relpath),
            entries,
            workers=_TRANSFERS,
        )
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


def _upload_blob(backend: Backend, digest: str, item: SourceFile) -> None:
    """Upload one file's bytes under its digest; the backend checks they are still the bytes
    hashed (a file written to meanwhile is refused, and nothing is stored)."""
    with os.fdopen(_open_no_follow(item), "rb") as source:
        try:
            backend.upload_snapshot_blob(digest, source)
        except ValidationError as error:
            if error.field != "source":
                raise
            raise ValidationError(
                "source_directory",
                f"{item.relpath!r} changed while the snapshot was taken; submit again once "
                "nothing is writing to it, or list it in .amlignore",
            ) from None


# --- restoring --------------------------------------------------------------------------------


def _load_manifest(backend: Backend, snapshot_id: str) -> list[ManifestEntry]:
    check_digest("snapshot_id", snapshot_id)
    data = backend.get_snapshot_manifest(snapshot_id)
    # The backend checks its stored bytes too; this checks what came over the wire.
    if sha256_hex(data) != snapshot_id:
        raise StorageError(f"snapshot {snapshot_id} came back corrupt: its bytes changed")
    try:
        return parse_manifest(data, "snapshot manifest")
    except ManifestError as error:
        raise StorageError(f"snapshot {snapshot_id} cannot be read: {error}") from error


def _create(dest: Path, executable: bool) -> int:
    # O_EXCL | O_NOFOLLOW: never write through something already at the path; the umask
    # applies to the mode as it does for any file the user creates.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(dest, flags, 0o777 if executable else 0o666)


def _restore_blob(backend: Backend, snapshot_id: str, entry: ManifestEntry, dest: Path) -> None:
    try:
        blob = backend.open_snapshot_blob(entry.sha256)
    except NotFoundError as error:
        raise StorageError(
            f"blob {entry.sha256} for {entry.relpath!r} of snapshot {snapshot_id} is missing "
            f"from workspace {backend.workspace_name!r}"
        ) from error
    with blob:
        fd = _local_file(blob)
        if fd is not None:
            _copy_local_blob(fd, entry, dest)
        else:
            _stream_blob(blob, entry, dest)


def _local_file(stream: IO[bytes]) -> int | None:
    """The descriptor of ``stream`` when it is a regular local file read from its start."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    return fd if stat.S_ISREG(os.fstat(fd).st_mode) and stream.tell() == 0 else None


def _copy_local_blob(src: int, entry: ManifestEntry, dest: Path) -> None:
    size = os.fstat(src).st_size
    if size != entry.size:
        raise _corrupt(entry, f"it holds {size} bytes, not {entry.size}")
    dst = _create(dest, entry.executable)
    try:
        copied, _ = copy_fd(src, dst, entry.size)
    finally:
        os.close(dst)
    if copied != entry.size:
        raise _corrupt(entry, f"it ended after {copied} of {entry.size} bytes")


def _stream_blob(src: IO[bytes], entry: ManifestEntry, dest: Path) -> None:
    check = hashlib.sha256()
    with os.fdopen(_create(dest, entry.executable), "wb") as dst:
        while chunk := src.read(_COPY_CHUNK):
            check.update(chunk)
            dst.write(chunk)
    if check.hexdigest() != entry.sha256:
        raise _corrupt(entry, f"its bytes hash to {check.hexdigest()}")


def _corrupt(entry: ManifestEntry, why: str) -> StorageError:
    return StorageError(
        f"blob {entry.sha256} for {entry.relpath!r} is corrupt: {why}; the snapshot cannot be "
        "restored (submit the run again from its source folder)"
    )


# --- shared -----------------------------------------------------------------------------------


def _map(fn: Callable[[_T], _R], items: Iterable[_T], *, workers: int = _TRANSFERS) -> list[_R]:
    """``[fn(x) for x in items]`` in up to ``workers`` threads; results keep the order of
    ``items``. On an error (or Ctrl-C) the calls not started yet are dropped."""
    items = list(items)
    if workers <= 1 or len(items) < 2:
        return [fn(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="snapshot")
    try:
        return list(pool.map(fn, items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
