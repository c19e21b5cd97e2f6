"""Which files of a source folder a snapshot takes (the rules are in ``backend/snapshot.py``'s
docstring): ignore files with gitignore semantics, ``.git`` and workspace folders left out,
links never followed out of the folder.

Example::

    tree = walk_source(Path("./tf-mnist"))
    [f.relpath for f in tree.files]   # ['.amlignore', 'tf_mnist.py']
    tree.workspaces                   # ['.modelyard/']: left out, never a run's source
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pathspec import GitIgnoreSpec

from modelyard.errors import ValidationError
from modelyard.names import TMP_PREFIX, WORKSPACE_FILE, clean_relpath
from modelyard.store.local_tree import linked_file_inside

IGNORE_FILES = (".amlignore", ".gitignore")
ALWAYS_LEFT_OUT = ".git"
# Where the README and Workspace.create put workspaces by default (``./.modelyard/<name>``):
# a notebook that submits ``source_directory="."`` must not snapshot its own database, the
# earlier runs' working folders and logs being written meanwhile.
WORKSPACES_FOLDER = ".modelyard"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file a snapshot takes: the path it records, what to read, and its size."""

    relpath: str  # the path the manifest records
    path: str  # what to open: the file itself, or the real file a link inside the folder names
    size: int


@dataclass(slots=True)
class SourceTree:
    """What a walk found: the files a snapshot takes (sorted by path), the paths it will not
    follow (links out, special files), and the workspace folders it left out (ending in
    ``/``)."""

    files: list[SourceFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    workspaces: list[str] = field(default_factory=list)


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


def walk_source(root: Path, leave_out: Iterable[Path] = ()) -> SourceTree:
    """The files a snapshot of ``root`` takes; see :class:`SourceTree`.

    Left out besides the ignore rules: ``.git``, every ``.modelyard`` folder, every folder
    that holds a modelyard ``workspace.json``, and the folders of ``leave_out`` (the
    submitting workspace's, wherever its files are)."""
    root_real = os.path.realpath(root)
    left_out = {os.path.realpath(folder) for folder in leave_out}
    tree = SourceTree()
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
        if folder_rel and _holds_workspace(children):
            tree.workspaces.append(folder_rel + "/")
            continue
        rules = outer_rules + _read_rules(children, folder_rel, root_real)
        for child in children:
            if child.name == ALWAYS_LEFT_OUT:
                continue
            relpath = f"{folder_rel}/{child.name}" if folder_rel else child.name
            if child.is_dir(follow_symlinks=False):
                if child.name == WORKSPACES_FOLDER or os.path.realpath(child.path) in left_out:
                    tree.workspaces.append(relpath + "/")
                elif not _ignored(rules, relpath + "/"):
                    stack.append((child.path, relpath, rules))
                continue
            if _ignored(rules, relpath):
                continue
            if child.is_file(follow_symlinks=False):
                real = child.path
            elif child.is_symlink() and (linked := linked_file_inside(child.path, root_real)):
                real = linked
            else:
                tree.skipped.append(relpath)
                continue
            _check_storable(relpath)
            tree.files.append(SourceFile(relpath, real, os.stat(real).st_size))
    tree.files.sort(key=lambda item: item.relpath)
    tree.skipped.sort()
    tree.workspaces.sort()
    return tree


def _holds_workspace(children: list[os.DirEntry[str]]) -> bool:
    """Whether a folder with these entries is a modelyard workspace folder: its
    ``workspace.json`` names a workspace (another project's file of that name is not one)."""
    entry = next((child for child in children if child.name == WORKSPACE_FILE), None)
    if entry is None or not entry.is_file(follow_symlinks=False):
        return False
    try:
        with open(entry.path, "rb") as f:
            info = json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return False
    return (
        isinstance(info, dict)
        and isinstance(info.get("name"), str)
        and isinstance(info.get("id"), str)
        and isinstance(info.get("created_at"), int | float)
    )


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
