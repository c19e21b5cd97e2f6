"""S3's side of a transfer: large files uploaded in parts, objects read as one stream.

:mod:`modelyard.store.transfer` runs many requests side by side on a few threads, each with at
most one request in flight, so that the number of connections stays bounded whatever the mix
of files and parts. This module holds what only S3 needs for that:

- :class:`MultipartUpload`: one local file larger than :data:`MULTIPART_THRESHOLD` uploaded in
  parts of :func:`part_size` bytes, any number of them at a time from any thread. The upload is
  begun by its first part, completed by its last (only then does the object appear, whole), and
  :meth:`MultipartUpload.abort` throws away the parts of one that cannot finish, so a failure
  leaves no object and no parts kept (and billed) by the store.
- :func:`read_object`: an object's bytes as one streamed GET, in chunks as they arrive. One
  request per file: moto's server copies the whole object for every ranged GET, and there one
  GET of a 256 MiB object streamed at about 690 MiB/s against 260 MiB/s for 2 ranges side by
  side and 140 MiB/s for 8, and a 1 GiB download took 7 s this way against 169 s for
  ``aws s3 cp`` (ranges of 8 MiB, 10 at a time; ``benchmarks/bench_s3_datastore.py``). So
  downloads take no ranges until a server that gains from them is measured.

The numbers follow the AWS CLI (``multipart_threshold`` and ``multipart_chunksize``, 8 MiB);
S3 allows parts of 5 MiB to 5 GiB and at most 10,000 of them.

Example::

    upload = MultipartUpload(store.fs, "data/big.bin", "bucket/raw/big.bin", size)
    for number in upload.numbers():
        upload.put_part(number)       # True for the part that completed the object
    for chunk in read_object(store.fs, "bucket/raw/big.bin"):
        ...
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import math
import mimetypes
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from fsspec.asyn import sync

from modelyard.errors import StorageError

try:
    from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]
except ImportError:  # s3fs (which brings botocore) is an optional dependency: no S3 then
    BotoCoreError = OSError

MULTIPART_THRESHOLD = 8 << 20
PART_SIZE = 8 << 20
MAX_PARTS = 10_000
# How long a completion that an earlier try may still be doing is waited for: moto's server
# took over 15 s to join 1 GiB on a loaded machine, and S3 may take minutes for large objects.
COMPLETION_WAIT = 120.0
# What one read of a streamed GET waits for: progress moves by this much, and each thread holds
# at most this much in memory.
READ_SIZE = 1 << 20

logger = logging.getLogger(__name__)


def is_s3(fs: Any) -> bool:
    """Whether ``fs`` is s3fs's filesystem (an optional dependency, so not imported here)."""
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "s3" in protocols and hasattr(fs, "call_s3")


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Let botocore's own errors out as OSError, as s3fs does with the store's answers.

    s3fs turns an error the store answered (no such bucket, access denied) into an OSError,
    but a request that got no answer after its retries (a connection closed, a timeout)
    raises botocore's exception as it is.
    """
    try:
        yield
    except BotoCoreError as error:
        raise OSError(errno.EIO, str(error)) from error


def part_size(size: int) -> int:
    """The size of each part (but the last) of a ``size``-byte upload: :data:`PART_SIZE`,
    or more (whole MiB) where 10,000 of those would not hold the file."""
    least = math.ceil(size / MAX_PARTS)
    return max(PART_SIZE, math.ceil(least / (1 << 20)) << 20)


class MultipartUpload:
    """The local file ``source`` (``size`` bytes) going to ``target`` on S3 in parts.

    Thread-safe: the first :meth:`put_part` begins the upload on the store (so a transfer
    stopped before the file began leaves nothing to clean), the one that puts the last part
    completes it. The source is opened once and read with ``pread``, so every part comes from
    the same file even if its name is reused meanwhile; one that ends early (the file shrank)
    raises StorageError. Call :meth:`abort` when the transfer stops before the upload is
    complete, and :meth:`close` in every case.

    Example::

        upload = MultipartUpload(fs, "big.bin", "bucket/big.bin", os.path.getsize("big.bin"))
        try:
            for number in upload.numbers():
                upload.put_part(number)
        except BaseException:
            upload.abort()
            raise
        finally:
            upload.close()
    """

    def __init__(self, fs: Any, source: str, target: str, size: int) -> None:
        self.fs = fs
        self.source = source
        self.target = target
        self.size = size
        self.part_size = part_size(size)
        self.bucket, self.key, _ = fs.split_path(target)
        self.complete = False
        self._lock = threading.Lock()
        self._upload_id: str | None = None
        self._fd: int | None = None
        self._etags: dict[int, str] = {}
        self._closed = False

    def numbers(self) -> range:
        """The part numbers, from 1."""
        return range(1, math.ceil(self.size / self.part_size) + 1)

    def part_bytes(self, number: int) -> int:
        """How many bytes part ``number`` holds."""
        start = (number - 1) * self.part_size
        return min(self.part_size, self.size - start)

    def put_part(self, number: int) -> bool:
        """Upload part ``number``; return True when it was the last and the object is whole."""
        upload_id, fd = self._begin()
        length = self.part_bytes(number)
        data = os.pread(fd, length, (number - 1) * self.part_size)
        if len(data) != length:
            raise StorageError(
                f"{self.source!r} became shorter while it was uploaded ({self.size} bytes at "
                "the start); upload it again once nothing writes it"
            )
        answer = _call(
            self.fs,
            "upload_part",
            Bucket=self.bucket,
            Key=self.key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
        )
        with self._lock:
            self._etags[number] = answer["ETag"]
            if len(self._etags) < len(self.numbers()):
                return False
        parts = [{"PartNumber": n, "ETag": self._etags[n]} for n in self.numbers()]
        try:
            _call(
                self.fs,
                "complete_multipart_upload",
                Bucket=self.bucket,
                Key=self.key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except OSError:
            # Joining the parts of 1 GiB took moto's server more than s3fs's 15 s read
            # timeout: s3fs asked again, and the store, in the middle of the first request
            # or done with it, no longer knew the upload (a 500 from moto, NoSuchUpload from
            # S3). The object is there, whole, once it has the ETag these parts make.
            if not self._completed_meanwhile(upload_id, parts):
                raise
        self.complete = True
        self.fs.invalidate_cache(self.target)
        return True

    def _completed_meanwhile(self, upload_id: str, parts: list[dict[str, Any]]) -> bool:
        """Whether a completion that failed was done by an earlier try of it: the store no
        longer knows the upload, and the object these parts make appears within
        :data:`COMPLETION_WAIT` seconds (the earlier try may still be joining the parts)."""
        try:
            _call(
                self.fs,
                "list_parts",
                Bucket=self.bucket,
                Key=self.key,
                UploadId=upload_id,
                MaxParts=1,
            )
            return False  # the upload is still there: the completion really failed
        except OSError:
            pass
        deadline = time.monotonic() + COMPLETION_WAIT
        while not self._made_of(parts):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return True

    def _made_of(self, parts: list[dict[str, Any]]) -> bool:
        """Whether the object at the target is the one these parts make: S3's ETag of a
        multipart object is the MD5 of its parts' MD5s, a dash, and the number of parts."""
        try:
            digests = b"".join(bytes.fromhex(str(part["ETag"]).strip('"')) for part in parts)
        except ValueError:  # not MD5s (objects encrypted with KMS keys): no way to tell
            return False
        expected = f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"
        try:
            head = _call(self.fs, "head_object", Bucket=self.bucket, Key=self.key)
        except OSError:
            return False
        return str(head.get("ETag", "")).strip('"') == expected

    def _begin(self) -> tuple[str, int]:
        with self._lock:
            if self._closed:
                raise StorageError(f"the upload of {self.source!r} was stopped")
            if self._fd is None:
                self._fd = os.open(self.source, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            if self._upload_id is None:
                extra = {}
                content_type, _ = mimetypes.guess_type(self.source)
                if content_type is not None:  # as s3fs's put_file sets it for smaller files
                    extra["ContentType"] = content_type
                answer = _call(
                    self.fs, "create_multipart_upload", Bucket=self.bucket, Key=self.key, **extra
                )
                self._upload_id = str(answer["UploadId"])
            return self._upload_id, self._fd

    def abort(self) -> None:
        """Throw away the parts uploaded so far (no object appears). Safe to call at any
        time; a store that cannot be reached any more (its bucket removed) is logged, since
        the transfer's own error says more."""
        with self._lock:
            self._closed = True
            upload_id, self._upload_id = self._upload_id, None
        if upload_id is None or self.complete:
            return
        try:
            _call(
                self.fs,
                "abort_multipart_upload",
                Bucket=self.bucket,
                Key=self.key,
                UploadId=upload_id,
            )
        except OSError as error:
            logger.warning(
                "could not abort the unfinished upload %s of s3://%s/%s (%s); its parts stay "
                "until the bucket's lifecycle rules remove them",
                upload_id,
                self.bucket,
                self.key,
                error,
            )

    def close(self) -> None:
        """Close the source file."""
        with self._lock:
            self._closed = True
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def read_object(fs: Any, path: str) -> Iterator[bytes]:
    """The bytes of the object ``path`` (``bucket/key``), in chunks of up to
    :data:`READ_SIZE` as one GET streams them; FileNotFoundError when there is none."""
    bucket, key, version = fs.split_path(path)
    extra = {} if version is None else {"VersionId": version}
    answer = _call(fs, "get_object", Bucket=bucket, Key=key, **extra)
    body = answer["Body"]
    try:
        while True:
            try:
                chunk = sync(fs.loop, _read_chunk, body, READ_SIZE)
            except OSError:
                raise
            except Exception as error:  # aiohttp's and botocore's own, for a broken stream
                raise OSError(errno.EIO, f"the connection broke off ({error!r})") from error
            if not chunk:
                return
            yield chunk
    finally:
        with contextlib.suppress(Exception):  # a broken connection has nothing left to close
            body.close()


def _call(fs: Any, method: str, **kwargs: Any) -> Any:
    with translated():
        return fs.call_s3(method, **kwargs)


async def _read_chunk(body: Any, size: int) -> bytes:
    # The stream hands over what has arrived (often 16 KiB): gather up to ``size`` here, on
    # the event loop, rather than cross threads for every piece.
    pieces = []
    wanted = size
    while wanted:
        piece = await body.read(wanted)
        if not piece:
            break
        pieces.append(piece)
        wanted -= len(piece)
    return b"".join(pieces)


__all__ = [
    "COMPLETION_WAIT",
    "MAX_PARTS",
    "MULTIPART_THRESHOLD",
    "PART_SIZE",
    "READ_SIZE",
    "MultipartUpload",
    "is_s3",
    "part_size",
    "read_object",
    "translated",
]
