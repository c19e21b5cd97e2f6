"""Which files ``modelyard migrate`` takes, and how it writes them.

A path given is a ``.py`` file, an ``.ipynb`` notebook, or a folder searched for both. The
search never follows a link (to a folder or a file: writing through one would change a file
elsewhere) and skips hidden folders (``.git``, ``.ipynb_checkpoints``, ``.modelyard``, virtual
environments) and ``__pycache__``.

Files are written atomically (a temporary file beside the target, renamed over it) with the
mode the original had. In place, the original is kept beside it as ``<name>.bak`` unless
``backup`` is off; with ``out`` every file found is written under that folder at its path
relative to the path given (the tree mirrored), and nothing is written outside it: a target
that resolves elsewhere (through a link inside ``out``) is refused.

Example::

    report = migrate_file(Path("nb/train.ipynb"), Path("nb"), write=True)
    report.changed, report.written          # True, 'nb/train.ipynb'
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from modelyard.porting.check import Surface
from modelyard.porting.notebook import NotebookError, rewrite_notebook
from modelyard.porting.rewrite import ERROR, Finding, rewrite_source
from modelyard.store.private import write_file_atomically

SUFFIXES = (".py", ".ipynb")
BACKUP_SUFFIX = ".bak"
_SKIPPED_FOLDERS = {"__pycache__", "node_modules", "site-packages"}


@dataclass(frozen=True, slots=True)
class Note:
    """A finding or a change at one place: ``cell`` is the notebook cell (1-based), or None
    in a ``.py`` file; ``line`` is the line in the file or the cell."""

    cell: int | None
    line: int
    kind: str
    message: str


@dataclass
class FileReport:
    """What ``migrate`` did with one file."""

    path: str
    changes: list[Note] = field(default_factory=list)
    findings: list[Note] = field(default_factory=list)
    written: str | None = None
    backup: str | None = None
    # The file could not be read, parsed or written: the message (exit code 2 at the end).
    error: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def where(self, note: Note) -> str:
        """``path:line`` or ``path:cell N:line``."""
        cell = f"cell {note.cell}:" if note.cell is not None else ""
        return f"{self.path}:{cell}{note.line}"


def find_files(paths: list[Path], out: Path | None = None) -> Iterator[tuple[Path, Path]]:
    """(root, file) for every file to look at, in a stable order; a path that does not exist,
    or a file that is not ``.py``/``.ipynb``, comes back as itself (``migrate_file`` says
    what is wrong with it)."""
    out_real = os.path.realpath(out) if out is not None else None
    for path in paths:
        if not path.is_dir() or path.is_symlink():
            yield path.parent, path
            continue
        for folder, subfolders, files in os.walk(path):  # followlinks=False: links not entered
            subfolders[:] = sorted(
                name
                for name in subfolders
                if not name.startswith(".")
                and name not in _SKIPPED_FOLDERS
                and os.path.realpath(os.path.join(folder, name)) != out_real
            )
            for name in sorted(files):
                file = Path(folder) / name
                if file.suffix in SUFFIXES and not file.is_symlink():
                    yield path, file


def migrate_file(
    path: Path,
    root: Path,
    *,
    write: bool,
    out: Path | None = None,
    backup: bool = True,
    surface: Surface | None = None,
) -> FileReport:
    """Rewrite one file; with ``write`` False only report (``--check``)."""
    report = FileReport(str(path))
    try:
        data = _read(path)
    except _Refused as error:
        report.error = str(error)
        return report
    surface = surface or Surface()
    new = data
    if path.suffix == ".ipynb":
        try:
            new, cells, relaid = rewrite_notebook(data, surface)
        except NotebookError as error:
            report.error = str(error)
            return report
        for cell in cells:
            for change in cell.changes:
                report.changes.append(
                    Note(cell.index, change.line, "rewrite", f"{change.old} -> {change.new}")
                )
            for finding in cell.findings:
                report.findings.append(_note(cell.index, finding))
        if relaid:
            report.findings.append(
                Note(
                    None, 1, "layout", "its JSON layout could not be kept; written as nbformat does"
                )
            )
        if any(note.kind == ERROR for note in report.findings):
            report.error = "cells that cannot be parsed were left as they are"
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            report.error = f"not Python source: byte {error.start} is not UTF-8 text"
            return report
        try:
            result = rewrite_source(text, surface=surface)
        except SyntaxError as error:
            report.error = f"cannot parse line {error.lineno}: {error.msg}; left as it is"
            return report
        new = result.text.encode("utf-8")
        report.changes = [
            Note(None, c.line, "rewrite", f"{c.old} -> {c.new}") for c in result.changes
        ]
        report.findings = [_note(None, f) for f in result.findings]
    if not write:
        return report
    try:
        if out is not None:
            target = _target_in(out, root, path)
            write_file_atomically(target, new, path.stat().st_mode)
            report.written = str(target)
        elif new != data:
            if backup:
                bak = path.with_name(path.name + BACKUP_SUFFIX)
                write_file_atomically(bak, data, path.stat().st_mode)
                report.backup = str(bak)
            write_file_atomically(path, new, path.stat().st_mode)
            report.written = str(path)
    except (OSError, _Refused) as error:
        report.error = f"cannot write: {error}"
    return report


class _Refused(Exception):
    """A file migrate will not read or write; the message says why."""


def _note(cell: int | None, finding: Finding) -> Note:
    return Note(cell, finding.line, finding.kind, finding.message)


def _read(path: Path) -> bytes:
    if not path.exists() and not path.is_symlink():
        raise _Refused("does not exist")
    if path.is_symlink():
        raise _Refused("is a symbolic link; give the file it points to")
    if not path.is_file():
        raise _Refused("is not a regular file or a folder")
    if path.suffix not in SUFFIXES:
        raise _Refused("is not a .py file or an .ipynb notebook")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise _Refused(f"cannot be read: {error.strerror}") from None
    if b"\0" in data:
        raise _Refused("is a binary file (it holds NUL bytes), not Python source or a notebook")
    return data


def _target_in(out: Path, root: Path, path: Path) -> Path:
    """Where ``path`` (found under ``root``) goes under ``out``; refused outside it."""
    relative = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    target = out / relative
    out_real = os.path.realpath(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    resolved = os.path.realpath(target)
    if target.is_symlink() or os.path.commonpath([out_real, resolved]) != out_real:
        raise _Refused(f"{target} leads outside {out} (a link); not written")
    return target


__all__ = ["BACKUP_SUFFIX", "FileReport", "Note", "find_files", "migrate_file"]
