"""The manifest of a source snapshot: its bytes, its id, and the checks made on it.

A manifest is canonical JSON (sorted keys, no spaces, ASCII) of::

    {"format": 1, "files": {relpath: {"sha256": ..., "size": ..., "executable": ...}}}

and its id is the SHA-256 of those bytes, so the same files always give the same id. Both
sides check a manifest with :func:`parse_manifest`: a backend before it stores one (the
client may be anyone), and the reader before it restores one (the store may have been
damaged, or written by another version).

Example::

    data = encode_manifest([ManifestEntry("train.py", sha, 12, False)])
    parse_manifest(data, "manifest")[0].relpath        # 'train.py'
    sha256_hex(data)                                   # the snapshot's id
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelyard.errors import ValidationError
from modelyard.names import clean_relpath

MANIFEST_FORMAT = 1
_DIGEST = re.compile(r"[0-9a-f]{64}")


class ManifestError(ValueError):
    """The bytes are not a manifest this version reads; callers turn it into the error of
    their side (ValidationError for a client's manifest, StorageError for a stored one)."""


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of a snapshot: where it goes, the blob that holds it, and its mode."""

    relpath: str
    sha256: str
    size: int
    executable: bool


def check_digest(field: str, value: object) -> str:
    """``value`` when it is a SHA-256 digest (64 lowercase hex digits), else ValidationError
    naming ``field``: checked before a digest becomes part of a path in a store."""
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise ValidationError(field, f"{value!r} is not a SHA-256 digest (64 lowercase hex digits)")
    return value


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_manifest(entries: Iterable[ManifestEntry]) -> bytes:
    """The canonical bytes of a manifest of ``entries``."""
    files = {
        entry.relpath: {"sha256": entry.sha256, "size": entry.size, "executable": entry.executable}
        for entry in entries
    }
    return json.dumps(
        {"format": MANIFEST_FORMAT, "files": files}, sort_keys=True, separators=(",", ":")
    ).encode()


def parse_manifest(data: bytes, field: str) -> list[ManifestEntry]:
    """The entries of manifest ``data``. Raises :class:`ManifestError` for bytes that are
    not a manifest of this format, and ValidationError naming ``field`` for a path that is
    not clean and relative, or that is both a file and a folder."""
    try:
        manifest = json.loads(data, object_pairs_hook=_no_duplicate_keys)
        if manifest["format"] != MANIFEST_FORMAT:
            raise ManifestError(
                f"manifest format {manifest['format']!r}; this modelyard reads format "
                f"{MANIFEST_FORMAT}: upgrade modelyard"
            )
        entries = [_parse_entry(relpath, item) for relpath, item in manifest["files"].items()]
    except ManifestError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ManifestError(f"malformed manifest: {error}") from error
    for entry in entries:
        if clean_relpath(field, entry.relpath) != entry.relpath:
            raise ValidationError(field, f"path {entry.relpath!r} is not in normal form")
    folders = manifest_folders(entry.relpath for entry in entries)
    for entry in entries:
        if entry.relpath in folders:
            raise ValidationError(field, f"{entry.relpath!r} is both a file and a folder")
    return entries


def manifest_folders(relpaths: Iterable[str]) -> set[str]:
    """Every folder that holds one of ``relpaths``, at any depth."""
    folders: set[str] = set()
    for relpath in relpaths:
        parts = relpath.split("/")
        folders.update("/".join(parts[:depth]) for depth in range(1, len(parts)))
    return folders


def _parse_entry(relpath: str, item: dict[str, Any]) -> ManifestEntry:
    digest, size, executable = item["sha256"], item["size"], item["executable"]
    if not (isinstance(digest, str) and _DIGEST.fullmatch(digest)):
        raise ValueError(f"{relpath!r} has no valid sha256")
    if type(size) is not int or size < 0 or type(executable) is not bool:
        raise ValueError(f"{relpath!r} has a bad size or executable flag")
    return ManifestEntry(relpath, digest, size, executable)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key appears twice")
    return result


__all__ = [
    "MANIFEST_FORMAT",
    "ManifestEntry",
    "ManifestError",
    "check_digest",
    "encode_manifest",
    "manifest_folders",
    "parse_manifest",
    "sha256_hex",
]
