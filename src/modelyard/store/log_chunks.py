"""Live logs on object stores, kept as chunks so that an append costs its own bytes.

An object store cannot append to an object: growing one means writing it again whole, so
3,000 appends of 4 KiB to a live log rewrote about 18 GiB. A log that is appended to on such a
store (see :meth:`modelyard.store.files.FileStore.append`) is instead a folder of chunks beside
its name::

    runs/r1/user_logs/std_log.txt.chunks/00000000000000000000   bytes 0 .. 4095
    runs/r1/user_logs/std_log.txt.chunks/00000000000000004096   bytes 4096 .. 8191

Each chunk is named by the offset of its first byte in the log (20 digits, so names sort in
offset order) and holds the bytes appended there. The log's bytes are its chunks in offset
order, up to the first gap (a chunk that does not start where the one before it ends is not
part of the log). Chunks are written with the store's exclusive create (S3 ``If-None-Match``),
so a chunk, once there, never changes: a repeated append finds its bytes already there, and a
writer with a stale idea of the end learns the real one instead of overwriting it.

A plain object of the log's name, when there is one, is the file (it was written whole later);
the next append moves it into chunk 0 (copied there, then removed). A reader that opened the
plain object just before it was removed goes on from the chunks (:class:`PlainOrChunks`).

Example::

    parse_chunk("logs/a.txt.chunks/00000000000000004096")   # ("logs/a.txt", 4096)
    chunk_path("logs/a.txt", 4096)                          # "logs/a.txt.chunks/000...4096"
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SUFFIX = ".chunks"
_DIGITS = 20


@dataclass(frozen=True)
class Chunk:
    """One chunk of a log: where its bytes start in the log, its object's path, its size."""

    offset: int
    path: str
    size: int

    @property
    def end(self) -> int:
        return self.offset + self.size


def chunk_folder(path: str) -> str:
    """The folder of the chunks of the log at ``path`` (a path in the filesystem)."""
    return path + SUFFIX


def chunk_path(path: str, offset: int) -> str:
    """The path of the chunk of the log at ``path`` whose bytes start at ``offset``."""
    return f"{path}{SUFFIX}/{offset:0{_DIGITS}d}"


def parse_chunk(path: str) -> tuple[str, int] | None:
    """``(log path, offset)`` when ``path`` names a chunk, else None."""
    folder, _, name = path.rpartition("/")
    if folder.endswith(SUFFIX) and len(name) == _DIGITS and name.isdigit():
        return folder[: -len(SUFFIX)], int(name)
    return None


def contiguous(chunks: Iterable[Chunk]) -> list[Chunk]:
    """The chunks that make up a log: in offset order from 0, up to the first gap."""
    log: list[Chunk] = []
    for chunk in sorted(chunks, key=lambda c: c.offset):
        if chunk.offset != (log[-1].end if log else 0):
            break
        log.append(chunk)
    return log


def find_chunks(fs: Any, path: str) -> list[Chunk]:
    """The chunks of the log at ``path`` in ``fs`` (empty when it has none), listed afresh."""
    try:
        found = fs.find(chunk_folder(path), detail=True)
    except FileNotFoundError:
        return []
    chunks = []
    for name, info in found.items():
        parsed = parse_chunk(name.rstrip("/"))
        if parsed is not None and info.get("type") != "directory":
            chunks.append(Chunk(parsed[1], name, int(info.get("size") or 0)))
    return contiguous(chunks)


class ChunkReader(io.RawIOBase):
    """The bytes of a chunked log as one seekable stream; each read fetches the chunks it
    spans together (``cat_ranges``, concurrent on s3fs)."""

    def __init__(self, fs: Any, chunks: list[Chunk]) -> None:
        super().__init__()
        self._fs = fs
        self._chunks = chunks
        self._size = chunks[-1].end if chunks else 0
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        start, stop = self._pos, min(self._pos + len(view), self._size)
        if start >= stop:
            return 0
        spans = [c for c in self._chunks if c.offset < stop and c.end > start]
        starts = [max(start, c.offset) - c.offset for c in spans]
        ends = [min(stop, c.end) - c.offset for c in spans]
        parts = self._fs.cat_ranges([c.path for c in spans], starts, ends)
        written = 0
        for part in parts:
            if isinstance(part, Exception):
                raise part
            view[written : written + len(part)] = part
            written += len(part)
        self._pos += written
        return written


class PlainOrChunks(io.RawIOBase):
    """A plain object of a log's name, read as a stream that survives its move into chunk 0:
    when the object is gone mid-read (an append moved it), reading goes on from the log's
    chunks at the same position, which hold the same bytes and maybe more."""

    def __init__(self, fs: Any, path: str, plain: Any) -> None:
        super().__init__()
        self._fs = fs
        self._path = path
        self._stream: Any = plain
        self._moved = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return int(self._stream.tell())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return int(self._stream.seek(offset, whence))

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._stream.read(len(view))
        except FileNotFoundError:
            if self._moved:
                raise
            self._switch_to_chunks()
            data = self._stream.read(len(view))
        view[: len(data)] = data
        return len(data)

    def _switch_to_chunks(self) -> None:
        position = self._stream.tell()
        chunks = find_chunks(self._fs, self._path)
        if not chunks:
            raise FileNotFoundError(self._path)
        self._stream.close()
        self._stream = ChunkReader(self._fs, chunks)
        self._stream.seek(position)
        self._moved = True

    def close(self) -> None:
        self._stream.close()
        super().close()
