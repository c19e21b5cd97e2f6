"""Source snapshots in the file store: content-addressed blobs and their manifests.

The layout is the one workspaces have always had, so their snapshots stay readable::

    snapshots/blobs/<first 2 hex digits>/<sha256>   one file's bytes, written once
    snapshots/manifests/<id>.json                   a manifest (backend/snapshot_manifest.py)

A blob is stored only once its bytes have been seen to hash to its name: they are checked as
they are written through ``FileStore.open_write``, which stores nothing when the block raises
(a temporary name renamed, or on an object store bytes spooled and sent at the end). A
manifest is stored only once every blob it lists is, with the size it gives: a manifest that
exists has all its blobs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from modelyard.backend.base import FileSource
from modelyard.backend.local.base import LocalBase
from modelyard.backend.snapshot_manifest import (
    ManifestError,
    check_digest,
    encode_manifest,
    parse_manifest,
    sha256_hex,
)
from modelyard.errors import ConflictError, NotFoundError, StorageError, ValidationError

BLOBS = "snapshots/blobs"
MANIFESTS = "snapshots/manifests"

_CHUNK = 8 << 20
# An object store answers each existence check in tens of milliseconds: overlap them.
_REMOTE_CHECKS = 16


def blob_path(digest: str) -> str:
    return f"{BLOBS}/{digest[:2]}/{digest}"


def manifest_path(snapshot_id: str) -> str:
    return f"{MANIFESTS}/{snapshot_id}.json"


class SnapshotStore(LocalBase):
    """Snapshot blobs and manifests in the workspace's file store (see the module docstring)."""

    def missing_snapshot_blobs(self, digests: list[str]) -> list[str]:
        if not isinstance(digests, list):
            raise ValidationError("digests", f"expected a list of digests, got {digests!r}")
        sizes = self._blob_sizes([check_digest("digests", digest) for digest in digests])
        return [digest for digest, size in sizes.items() if size is None]

    def upload_snapshot_blob(self, digest: str, source: FileSource) -> None:
        check_digest("digest", digest)
        path = blob_path(digest)
        # On an object store the caller has just been told the blob is missing, and a look
        # costs as much as the PUT of a small file: the checked bytes are simply put again,
        # which leaves a stored blob as it was (same name, same bytes; a PUT is atomic).
        if self.files.renames and self.files.exists(path):
            return
        with _opened(source) as stream, self.files.open_write(path, "digest") as target:
            _copy_checked(stream, target, digest)  # raising here stores nothing

    def put_snapshot_manifest(self, manifest: bytes) -> str:
        if not isinstance(manifest, bytes):
            raise ValidationError("manifest", "expected the manifest's bytes")
        snapshot_id = sha256_hex(manifest)
        path = manifest_path(snapshot_id)
        if self.files.exists(path):
            return snapshot_id
        try:
            entries = parse_manifest(manifest, "manifest")
        except ManifestError as error:
            raise ValidationError("manifest", f"not a snapshot manifest: {error}") from None
        if encode_manifest(entries) != manifest:
            raise ValidationError(
                "manifest",
                "not in canonical form (JSON with sorted keys, no spaces, ASCII, only the "
                "format's fields): encode it with encode_manifest",
            )
        sizes = self._blob_sizes([entry.sha256 for entry in entries])
        missing = sum(size is None for size in sizes.values())
        for entry in entries:
            size = sizes[entry.sha256]
            if size is None:
                raise ConflictError(
                    f"snapshot blob {entry.sha256} (for {entry.relpath!r}) is not stored in "
                    f"{self.files.url} ({missing} of the manifest's blobs are missing); "
                    "upload the missing blobs (missing_snapshot_blobs) before the manifest"
                )
            if size != entry.size:
                raise ValidationError(
                    "manifest",
                    f"{entry.relpath!r} is listed with {entry.size} bytes, but its blob "
                    f"{entry.sha256} holds {size}",
                )
        self.files.write_bytes(path, manifest)
        return snapshot_id

    def get_snapshot_manifest(self, snapshot_id: str) -> bytes:
        check_digest("snapshot_id", snapshot_id)
        try:
            data = self.files.read_bytes(manifest_path(snapshot_id))
        except NotFoundError:
            raise NotFoundError(
                f"snapshot {snapshot_id} does not exist in workspace {self.workspace_name!r} "
                f"({self.files.url})"
            ) from None
        if sha256_hex(data) != snapshot_id:
            raise StorageError(
                f"snapshot {snapshot_id} in {self.files.url} is corrupt: its bytes changed"
            )
        return data

    def open_snapshot_blob(self, digest: str) -> IO[bytes]:
        check_digest("digest", digest)
        try:
            return self.files.open_read(blob_path(digest), "digest")
        except NotFoundError:
            raise NotFoundError(
                f"snapshot blob {digest} is missing from {self.files.url}"
            ) from None

    def _blob_sizes(self, digests: list[str]) -> dict[str, int | None]:
        """The size of each stored blob of ``digests`` (valid ones), None for those not
        stored, in the order given. On an object store every look is a round trip, so they
        overlap in threads; a folder answers at once."""
        wanted = list(dict.fromkeys(digests))
        if self.files.renames or len(wanted) < 2:
            sizes = [self._blob_size(digest) for digest in wanted]
        else:
            with ThreadPoolExecutor(_REMOTE_CHECKS, thread_name_prefix="snapshot-check") as pool:
                sizes = list(pool.map(self._blob_size, wanted))
        return dict(zip(wanted, sizes, strict=True))

    def _blob_size(self, digest: str) -> int | None:
        try:
            return self.files.size(blob_path(digest))
        except NotFoundError:
            return None


@contextmanager
def _opened(source: FileSource) -> Iterator[IO[bytes]]:
    """``source`` as a stream: a path is opened (and closed again), a stream is used as it is."""
    if isinstance(source, Path):
        try:
            stream = source.open("rb")
        except OSError as error:
            raise ValidationError(
                "source", f"cannot read {source}: {error.strerror or error}"
            ) from error
        with stream:
            yield stream
        return
    yield source


def _copy_checked(source: IO[bytes], target: IO[bytes], digest: str) -> None:
    """Copy ``source`` to ``target``; ValidationError (field ``source``) when the bytes do not
    hash to ``digest``."""
    check = hashlib.sha256()
    while chunk := source.read(_CHUNK):
        check.update(chunk)
        target.write(chunk)
    if check.hexdigest() != digest:
        raise ValidationError(
            "source",
            f"the bytes sent hash to {check.hexdigest()}, not to {digest}: a blob is stored "
            "only under its own SHA-256; hash the bytes again (did the file change?) and retry",
        )


__all__ = ["BLOBS", "MANIFESTS", "SnapshotStore", "blob_path", "manifest_path"]
