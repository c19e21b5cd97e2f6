"""Which files of a source folder a snapshot takes (the rules are in ``backend/snapshot.py``'s
docstring): ignore files with gitignore semantics, ``.git`` left out, links never followed
out of the folder.

Example::

    files, skipped = walk_source(Path("./tf-mnist"))
    [f.relpath for f in files]        # ['.amlignore', 'tf_mnist.py']
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

from modelyard.errors import ValidationError
from modelyard.names import TMP_PREFIX, clean_relpath
from modelyard.store.local_tree import linked_file_inside

IGNORE_FILES = (".amlignore", ".gitignore")
ALWAYS_LEFT_OUT = ".git"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file a snapshot takes: the path it records, what to read, and its size."""

    relpath: str  # the path the manifest records
    path: str  # what to open: the file itself, or the real file a link inside the folder names
    size: int


# (folder relpath, its ignore rules), outermost first
_Rules = tuple[tuple[str, GitIgnoreSpec], ...]


def check_source_dir(source_dir: Path | str) -> Path:
    root = Path(source_dir)
    if not root.exists():
        raise ValidationError(
            "source_directory",
            f"{str(root)!r} does not exist (resolved from {os.getcwd()}); give the folder that "
            "holds the entry script",
        )
    if not root.is_dir():
        raise ValidationError(
            "source_directory",
            f"{str(root)!r} is a file, not a folder; give the folder that holds it "
            f"({str(root.parent)!r}) and the file's name as the entry script",
        )
    return root


def check_taken(root: Path, relpath: str, field: str) -> None:
    """Raise ValidationError (``field``) unless a snapshot of ``root`` takes the file
    ``relpath`` (clean): a regular file, or a link to one inside the folder, below folders
    that are not links (the walk does not enter links to folders). Ignore rules aside."""
    root_real = os.path.realpath(root)
    parts = relpath.split("/")
    for depth in range(1, len(parts)):
        folder = os.path.join(root, *parts[:depth])
        if os.path.islink(folder):
            raise ValidationError(
                field,
                f"{relpath!r}: {'/'.join(parts[:depth])!r} in {root} is a symbolic link to a "
                "folder, which a run's snapshot does not follow; give the path through real "
                "folders, or copy the script into the source folder",
            )
    path = os.path.join(root, relpath)
    if os.path.islink(path) and linked_file_inside(path, root_real) is None:
        raise ValidationError(
            field,
            f"{relpath!r} is a symbolic link leading outside {root} (to "
            f"{os.path.realpath(path)!r}); a run's snapshot does not follow such links, so the "
            "script would be missing where the run starts: copy it into the source folder, or "
            "make source_directory a folder that holds it",
        )


def walk_source(root: Path) -> tuple[list[SourceFile], list[str]]:
    """The files a snapshot takes (sorted by path) and the paths it will not follow."""
    root_real = os.path.realpath(root)
    files: list[SourceFile] = []
    skipped: list[str] = []
    stack: list[tuple[str, str, _Rules]] = [(str(root), "", ())]
    while stack:
        folder, folder_rel, outer_rules = stack.pop()
        try:
            with os.scandir(folder) as scan:
                children = sorted(scan, key=lambda child: child.name)
        except PermissionError as error:
            raise ValidationError(
                "source_directory", f"cannot read {folder!r}: {error.strerror}"
            ) from error
        rules = outer_rules + _read_rules(children, folder_rel, root_real)
        for child in children:
            if child.name == ALWAYS_LEFT_OUT:
                continue
            relpath = f"{folder_rel}/{child.name}" if folder_rel else child.name
            if child.is_dir(follow_symlinks=False):
                if not _ignored(rules, relpath + "/"):
                    stack.append((child.path, relpath, rules))
                continue
            if _ignored(rules, relpath):
                continue
            if child.is_file(follow_symlinks=False):
                real = child.path
            elif child.is_symlink() and (linked := linked_file_inside(child.path, root_real)):
                real = linked
            else:
                skipped.append(relpath)
                continue
            _check_storable(relpath)
            files.append(SourceFile(relpath, real, os.stat(real).st_size))
    files.sort(key=lambda item: item.relpath)
    skipped.sort()
    return files, skipped


def _read_rules(children: list[os.DirEntry[str]], folder_rel: str, root_real: str) -> _Rules:
    by_name = {child.name: child for child in children}
    for name in IGNORE_FILES:
        child = by_name.get(name)
        if child is None:
            continue
        path = child.path if child.is_file(follow_symlinks=False) else None
        if path is None and child.is_symlink():
            path = linked_file_inside(child.path, root_real)
        if path is None:
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            spec = GitIgnoreSpec.from_lines(f.read().splitlines())
        return ((folder_rel, spec),)
    return ()


def _ignored(rules: _Rules, relpath: str) -> bool:
    """Whether ``relpath`` (ending in ``/`` for a folder) is excluded: the deepest rule wins."""
    excluded = False
    for base, spec in rules:
        result = spec.check_file(relpath[len(base) + 1 :] if base else relpath).include
        if result is not None:
            excluded = result
    return excluded


def _check_storable(relpath: str) -> None:
    if any(part.startswith(TMP_PREFIX) for part in relpath.split("/")):
        raise ValidationError(
            "source_directory",
            f"cannot store the file name {relpath!r}: names starting with {TMP_PREFIX!r} are "
            "kept for temporary files of the store; rename it or list it in .amlignore",
        )
    try:
        relpath.encode("utf-8")
        clean = clean_relpath("source_directory", relpath)
    except (UnicodeEncodeError, ValidationError):
        clean = None
    if clean != relpath:
        raise ValidationError(
            "source_directory",
            f"cannot store the file name {relpath!r} (names must be UTF-8 without '\\'); rename "
            "it or list it in .amlignore",
        )
