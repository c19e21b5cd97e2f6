"""Progress of a transfer of many files: files done, bytes and speed, then one summary line.

A :class:`TransferProgress` is a tally that the copying code feeds with ``advance`` and
``skip``, from one thread or several. On a terminal it draws a
`rich <https://rich.readthedocs.io>`_ progress bar while the transfer runs; elsewhere (a pipe, a
log file, a notebook) it prints nothing until the end. When the transfer ends cleanly it prints
one summary line, on a terminal and elsewhere alike::

    Uploaded 9,998 files (24.4 MiB) in 0.9 s (27.1 MiB/s); skipped 2 that exist: a.txt, b.txt ...

With ``show_progress=False`` it prints nothing at all and only counts.

Updates must be cheap, since a copy of many small files calls ``advance`` 10,000 times a second
or more: each call adds to counters under a lock, and only every
``interval`` seconds are the counters handed to rich, whose own thread redraws the bar a few
times a second. Nothing renders per call.

Example::

    with TransferProgress("upload", total_files=2, total_bytes=300) as progress:
        progress.advance(100, files=1)
        progress.advance(200, files=1)
    # prints: Uploaded 2 files (300 B) in 0.0 s (...)
    progress.files_done, progress.bytes_done     # (2, 300)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from modelyard.hints import say

TransferKind = Literal["upload", "download"]

_WORDS: dict[str, tuple[str, str]] = {
    "upload": ("Uploading", "Uploaded"),
    "download": ("Downloading", "Downloaded"),
}
# How many skipped names the summary line spells out before "and N more".
_SKIPPED_NAMES_SHOWN = 5


def format_bytes(size: float) -> str:
    """``size`` in binary units with one decimal, as the summary line shows it.

    Example::

        >>> format_bytes(1536)
        '1.5 KiB'
    """
    if size < 1024:
        return f"{int(size)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024 or unit == "TiB":
            break
    return f"{size:.1f} {unit}"


def format_duration(seconds: float) -> str:
    """A duration as people read it: ``4.2 s``, ``3 m 05 s`` or ``2 h 07 m``.

    Example::

        >>> format_duration(185)
        '3 m 05 s'
    """
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def summary_line(
    kind: TransferKind, files: int, nbytes: int, seconds: float, skipped: Sequence[str]
) -> str:
    """The line printed when a transfer ends, e.g. ``Uploaded 3 files (1.5 KiB) in 0.1 s ...``.

    Example::

        >>> summary_line("download", 1, 2048, 0.5, [])
        'Downloaded 1 file (2.0 KiB) in 0.5 s (4.0 KiB/s)'
    """
    line = f"{_WORDS[kind][1]} {_count(files, 'file')} ({format_bytes(nbytes)}) in {seconds:.1f} s"
    if nbytes and seconds > 0:
        line += f" ({format_bytes(nbytes / seconds)}/s)"
    if skipped:
        names = ", ".join(skipped[:_SKIPPED_NAMES_SHOWN])
        if len(skipped) > _SKIPPED_NAMES_SHOWN:
            names += f" and {len(skipped) - _SKIPPED_NAMES_SHOWN:,} more"
        line += (
            f"; skipped {len(skipped):,} that exist: {names} "
            f"(pass {say('overwrite=True')} to replace them)"
        )
    return line


class _SpeedColumn(TransferSpeedColumn):
    """rich's speed column in binary units (MiB/s), as the byte counts and summary line."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        text = "?" if speed is None else f"{format_bytes(speed)}/s"
        return Text(text, style="progress.data.speed")


class TransferProgress:
    """A thread-safe tally of one transfer, drawn as a progress bar on a terminal.

    ``total_files`` and ``total_bytes`` are what the transfer will copy (not counting files it
    skips). Use it as a context manager: the bar starts on entry, and on a clean exit the
    summary line is printed (unless ``show_progress`` is False). ``console`` defaults to rich's
    console on standard output. ``started`` (a ``time.perf_counter()`` value) is when the
    transfer began, if before entry: the summary's time and speed count from it.

    Example::

        with TransferProgress("download", total_files=1, total_bytes=10, show_progress=False) as p:
            p.advance(10, files=1)
        p.files_done, p.bytes_done   # (1, 10)
    """

    def __init__(
        self,
        kind: TransferKind,
        total_files: int,
        total_bytes: int,
        *,
        show_progress: bool = True,
        console: Console | None = None,
        interval: float = 0.2,
        started: float | None = None,
    ) -> None:
        self.kind: TransferKind = kind
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.show_progress = show_progress
        self.files_done = 0
        self.bytes_done = 0
        self.skipped: list[str] = []
        self.seconds = 0.0
        self._console = console if console is not None or not show_progress else Console()
        self._interval = interval
        self._lock = threading.Lock()
        self._started = started or 0.0
        self._next_push = 0.0
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> TransferProgress:
        self._started = self._started or time.perf_counter()
        console = self._console
        # A live bar only where someone watches it redraw: in a pipe or a log file it would
        # leave one frame per refresh, and in Jupyter rich needs ipywidgets for it.
        if console is not None and console.is_terminal and not console.is_dumb_terminal:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[files]} files"),
                DownloadColumn(binary_units=True),
                _SpeedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
                refresh_per_second=5,
            )
            self._task = self._bar.add_task(
                _WORDS[self.kind][0], total=self.total_bytes, files=self._files_text()
            )
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.seconds = time.perf_counter() - self._started
        if self._bar is not None:
            self._push()
            self._bar.stop()
            self._bar = None
        # After a failure the exception tells the story; a summary would read like success.
        if exc_type is None and self._console is not None:
            self._console.print(self.summary(), highlight=False, markup=False, soft_wrap=True)

    def advance(self, nbytes: int, files: int = 0) -> None:
        """Count ``nbytes`` more bytes copied and ``files`` more files finished."""
        with self._lock:
            self.bytes_done += nbytes
            self.files_done += files
            if self._bar is not None:
                now = time.monotonic()
                if now >= self._next_push:
                    self._next_push = now + self._interval
                    self._push()

    def skip(self, name: str) -> None:
        """Record that ``name`` exists and was left alone; it was not in the totals."""
        with self._lock:
            self.skipped.append(name)

    def withdraw(self, name: str, planned_bytes: int, copied_bytes: int) -> None:
        """Take back a file that was in the totals and copied, but found to exist when it was
        to be put in place (another process wrote it meanwhile), so it was skipped after all."""
        with self._lock:
            self.skipped.append(name)
            self.total_files -= 1
            self.total_bytes -= planned_bytes
            self.bytes_done -= copied_bytes

    def summary(self) -> str:
        """The summary line for the counts so far."""
        seconds = self.seconds or (time.perf_counter() - self._started if self._started else 0.0)
        return summary_line(self.kind, self.files_done, self.bytes_done, seconds, self.skipped)

    def _files_text(self) -> str:
        return f"{self.files_done:,}/{self.total_files:,}"

    def _push(self) -> None:
        # Called with the lock held (or after the workers are done): hands the counters to rich,
        # whose refresh thread draws them.
        if self._bar is not None and self._task is not None:
            self._bar.update(
                self._task,
                completed=self.bytes_done,
                total=self.total_bytes,
                files=self._files_text(),
            )
