"""Large files uploaded in parts: each part checked on arrival, the upload resumable.

A contract upload (``POST .../calls/upload_run_file?...``) whose request carries
``X-Modelyard-Upload-Id`` is one part of a file, not the whole of it:

=============================  ===========================================================
header                         meaning
=============================  ===========================================================
``X-Modelyard-Upload-Id``      the client's id for this upload of this file (16 to 64 of
                               ``A-Z a-z 0-9 _ -``), the same on every part
``Content-Range``              ``bytes START-END/TOTAL``: the body is bytes START to END
                               (inclusive) of a file of TOTAL bytes; ``bytes */TOTAL`` with
                               no body asks which parts the server holds
``X-Modelyard-SHA256``         the part's SHA-256, checked before the part counts
``X-Modelyard-File-SHA256``    the whole file's, checked once every part is there
=============================  ===========================================================

The reply to a part is ``202 {"received": [[start, end], ...]}`` (byte ranges held, ends
exclusive) until the part that completes the file; that one makes the call with the whole
file and answers as a one-request upload does (``200 {"result": ...}``). Every part is
authorized as the call itself, so a run's token uploads its own run's files in parts too.

A part that broke off or arrived altered is not kept, and is sent again alone; a client that
stopped (or a server that was killed) resumes by asking which parts are held. Parts may come
in any order, several at a time, to any of the server's worker processes: an upload's state
is its folder under ``<data-dir>/uploads/parts``, and the step that completes it holds a
lock there. A finished upload keeps its reply until it expires, so the answer to a last part
whose reply was lost is given again rather than the call made twice. Uploads untouched for
:data:`EXPIRY_S` are removed.

Example: the first part of 16 MiB of a 1 GiB file, as ``backend/remote/parted_upload.py``
sends it::

    POST /api/v1/workspaces/team/calls/upload_run_file?run_id=r1&name=outputs/big.bin
    X-Modelyard-Upload-Id: 6f1c9a0d2b7e4f58a1c3d5e7f9b0a2c4
    Content-Range: bytes 0-16777215/1073741824
    X-Modelyard-SHA256: <the part's digest>
    X-Modelyard-File-SHA256: <the file's digest>
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.concurrency import run_in_threadpool

from modelyard.backend.remote import FILE_SHA256_HEADER, SHA256_HEADER, UPLOAD_ID_HEADER
from modelyard.errors import TooLargeError, UserError, ValidationError
from modelyard.store.private import make_private_folder, write_private_file

# The server's folder (below its data dir) for files on their way in: one-request uploads
# spool there, and uploads in parts keep a folder each below PARTS_DIR.
UPLOADS_DIR = "uploads"
PARTS_DIR = "parts"
# The most one part may hold: a part is read into the upload's file as it arrives, but a
# part sent again is sent whole, so parts stay small enough to resend.
MAX_PART_BYTES = 256 << 20
EXPIRY_S = 24 * 3600.0

_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_RANGE = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+)")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DATA = "data"
_META = "meta.json"
_RESULT = "result.json"
_LOCK = "lock"
_HELD = "held"  # one empty file per part held, named START-END


@dataclass(frozen=True)
class Part:
    """What one request of a parted upload says it holds (:func:`part_of`)."""

    upload_id: str
    total: int
    file_sha256: str
    start: int | None = None  # None: no bytes, a question about the parts held
    end: int = 0  # exclusive
    sha256: str | None = None


def part_of(headers: Any, limit: int) -> Part | None:
    """The part a request's headers describe, None for a one-request upload.

    ValidationError for headers that do not make a part; TooLargeError for a file over the
    server's ``limit``.
    """
    upload_id = headers.get(UPLOAD_ID_HEADER)
    if upload_id is None:
        return None
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise ValidationError(
            UPLOAD_ID_HEADER, f"{upload_id[:80]!r} is not 16 to 64 of A-Z a-z 0-9 _ -"
        )
    asked = headers.get("content-range", "")
    match = _RANGE.fullmatch(asked.strip())
    if match is None:
        raise ValidationError(
            "Content-Range",
            f"{asked[:80]!r}: a part says 'bytes START-END/TOTAL' or 'bytes */TOTAL'",
        )
    total = int(match.group(3))
    if total > limit:
        raise TooLargeError("Content-Range", f"{total:,} bytes is over this server's {limit:,}")
    file_sha256 = _digest(headers, FILE_SHA256_HEADER)
    if match.group(1) is None:
        return Part(upload_id, total, file_sha256)
    start, last = int(match.group(1)), int(match.group(2))
    if not start <= last < total:
        raise ValidationError(
            "Content-Range", f"bytes {start}-{last} are not within a file of {total:,} bytes"
        )
    if last + 1 - start > MAX_PART_BYTES:
        raise TooLargeError(
            "Content-Range", f"a part of {last + 1 - start:,} bytes is over {MAX_PART_BYTES:,}"
        )
    return Part(upload_id, total, file_sha256, start, last + 1, _digest(headers, SHA256_HEADER))


def _digest(headers: Any, name: str) -> str:
    value = str(headers.get(name, "")).lower()
    if not _SHA256.fullmatch(value):
        raise ValidationError(name, "a part of an upload needs its SHA-256, as 64 hex digits")
    return value


class PartedUploads:
    """The uploads in parts of the server whose data folder is ``data_dir``, each a folder
    (0700) below ``<data_dir>/uploads/parts``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / UPLOADS_DIR / PARTS_DIR

    def folder(self, owner: str, workspace: str, upload_id: str) -> Path:
        """An upload's folder, named by who sends it, where and its id: another caller who
        knows the id reaches a folder of their own, never this one."""
        key = hashlib.sha256(f"{owner}\0{workspace}\0{upload_id}".encode()).hexdigest()
        return self.root / key[:40]

    async def receive(
        self,
        owner: str,
        workspace: str,
        target: dict[str, Any],
        part: Part,
        body: AsyncIterator[bytes],
        finish: Callable[[Path], bytes],
    ) -> tuple[int, bytes]:
        """Keep ``part`` of the upload to ``target`` (the call and its arguments); once the
        file is whole, check it and give it to ``finish`` (which makes the call and returns
        its reply). Returns the status and the JSON reply."""
        folder = self.folder(owner, workspace, part.upload_id)
        done = await run_in_threadpool(self._open, folder, target, part)
        if part.start is not None and not done:
            await _write_part(folder, part, body)
        return await run_in_threadpool(self._settle, folder, part, finish)

    def _open(self, folder: Path, target: dict[str, Any], part: Part) -> bool:
        """Begin the upload, or check that ``part`` belongs to the one begun; True when it
        is finished already (its reply kept)."""
        binding = {"target": target, "total": part.total, "file_sha256": part.file_sha256}
        meta = folder / _META
        try:
            kept = json.loads(meta.read_bytes())
        except FileNotFoundError:
            self._expire()
            make_private_folder(folder / _HELD)
            fd = os.open(folder / _DATA, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.ftruncate(fd, part.total)
            finally:
                os.close(fd)
            write_private_file(meta, json.dumps(binding, sort_keys=True).encode())
            return False
        if kept != json.loads(json.dumps(binding, sort_keys=True)):
            raise ValidationError(
                UPLOAD_ID_HEADER,
                f"upload {part.upload_id} was begun for another file or target; give each "
                "file's upload an id of its own",
            )
        os.utime(meta)  # in use: not expired
        return (folder / _RESULT).exists()

    def _settle(
        self, folder: Path, part: Part, finish: Callable[[Path], bytes]
    ) -> tuple[int, bytes]:
        with _locked(folder / _LOCK):
            result = folder / _RESULT
            if result.exists():
                return 200, result.read_bytes()
            received = _received(folder)
            if received != [(0, part.total)]:
                return 202, json.dumps({"received": received}).encode()
            data = folder / _DATA
            with open(data, "rb") as file:
                digest = hashlib.file_digest(file, "sha256").hexdigest()
            if digest != part.file_sha256:
                shutil.rmtree(folder, ignore_errors=True)
                raise ValidationError(
                    FILE_SHA256_HEADER,
                    f"the parts that arrived make a file with SHA-256 {digest}, not "
                    f"{part.file_sha256}; upload the file again",
                )
            try:
                reply = finish(data)
            except UserError:
                # Refused for good (the run is gone, the name is taken): nothing to resume.
                shutil.rmtree(folder, ignore_errors=True)
                raise
            write_private_file(result, reply)
            data.unlink()
            return 200, reply

    def _expire(self) -> None:
        """Remove the uploads nobody touched for :data:`EXPIRY_S`."""
        make_private_folder(self.root)
        cutoff = time.time() - EXPIRY_S
        for entry in os.scandir(self.root):
            with contextlib.suppress(OSError):
                if os.stat(Path(entry.path) / _META).st_mtime < cutoff:
                    shutil.rmtree(entry.path, ignore_errors=True)


async def _write_part(folder: Path, part: Part, body: AsyncIterator[bytes]) -> None:
    """Write the part's bytes in place in the upload's file, then mark it held: only once its
    length and digest are right, and its bytes are on disk."""
    assert part.start is not None
    digest = hashlib.sha256()
    offset = part.start
    fd = os.open(folder / _DATA, os.O_WRONLY)
    try:
        async for chunk in body:
            if offset + len(chunk) > part.end:
                raise ValidationError(
                    "body",
                    f"the part holds more than the {part.end - part.start:,} bytes its range says",
                )
            digest.update(chunk)
            await run_in_threadpool(os.pwrite, fd, chunk, offset)
            offset += len(chunk)
        if offset != part.end:
            raise ValidationError(
                "body",
                f"{offset - part.start:,} of the part's {part.end - part.start:,} bytes "
                "arrived; send the part again",
            )
        if digest.hexdigest() != part.sha256:
            raise ValidationError(
                "body",
                f"the part that arrived has SHA-256 {digest.hexdigest()}, not {part.sha256}: "
                "it was altered on the way; send it again",
            )
        await run_in_threadpool(os.fdatasync, fd)
    finally:
        os.close(fd)
    (folder / _HELD / f"{part.start}-{part.end}").touch(mode=0o600)


def _received(folder: Path) -> list[tuple[int, int]]:
    """The byte ranges held, merged where they meet or overlap."""
    spans = [tuple(map(int, name.split("-"))) for name in os.listdir(folder / _HELD)]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # flock, not a thread lock: the parts of one upload may reach different worker processes.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


__all__ = [
    "MAX_PART_BYTES",
    "UPLOADS_DIR",
    "Part",
    "PartedUploads",
    "part_of",
]
