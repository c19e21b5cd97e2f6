"""The files a dataset definition names, found in its datastores: one place for the SDK and
the run supervisor.

A dataset's definition (stored with a registered version, see ``modelyard/data``) lists its
sources, each a path pattern in a datastore or an fsspec URL::

    {"datastore": "workspaceblobstore", "path": "mnist/*.gz"}
    {"url": "s3://bucket/raw/2024/*.csv"}

A pattern is a path relative to the datastore's root, checked like every user path (no
``..``, not absolute; ``names.clean_relpath``), in which ``*`` and ``?`` match within one path
part, ``**`` matches any number of parts and ``[...]`` one character of a set. A pattern
without those characters names a file or a folder (every file below it). Symbolic links are
never followed: a pattern that names one, or a folder on the way to one, is refused, and links
met below a folder are not among its files (``store/files.py``), so no file outside the
datastore is ever read.

The files of the sources of one datastore (or one URL root) form a :class:`FileGroup`, with
paths relative to the folder all its patterns share: ``mnist/*.gz`` gives ``train.gz``, as v1's
``to_path()`` gives it. Row steps (``take``, ``skip``, ``random_split``, ``take_sample``) pick
from the files of a file dataset, or the rows of a tabular one, with :func:`pick`.

Example::

    groups = find_files(backend, [{"datastore": "workspaceblobstore", "path": "mnist/*.gz"}])
    [info.path for info in groups[0].files]     # ['t10k-images.gz', 'train-images.gz']
"""

from __future__ import annotations

import posixpath
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.backend.base import Backend
from modelyard.backend.records import FileInfo
from modelyard.errors import ValidationError
from modelyard.names import clean_relpath
from modelyard.store.files import FileStore, local_url
from modelyard.store.secrets import open_datastore

GLOB_CHARACTERS = "*?["

# Row steps: what pick() understands (``{"op": "take", "count": 10}``, ...).
TAKE = "take"
SKIP = "skip"
SPLIT = "random_split"
SAMPLE = "take_sample"
ROW_STEPS = (TAKE, SKIP, SPLIT, SAMPLE)


@dataclass(frozen=True)
class FileGroup:
    """Files of one datastore (or URL root) below the folder its patterns share.

    ``store`` is rooted at that folder and ``files`` are relative to it, sorted by path.
    ``in_place`` is the local folder that holds exactly these files, when there is one (a
    local datastore's folder named whole, without a pattern): mounts use it as it is.
    """

    store: FileStore
    files: list[FileInfo]
    in_place: Path | None = None


@dataclass
class _Found:
    root: FileStore
    base: str
    paths: dict[str, int]
    whole_folder: bool


def has_glob(path: str) -> bool:
    return any(char in path for char in GLOB_CHARACTERS)


def check_source(field: str, source: object) -> dict[str, str]:
    """A source entry of a definition, checked: ``{"datastore", "path"}`` or ``{"url"}``."""
    if isinstance(source, dict) and set(source) == {"datastore", "path"}:
        datastore, path = source["datastore"], source["path"]
        if not isinstance(datastore, str) or not datastore:
            raise ValidationError(field, f"{datastore!r} is not a datastore name")
        return {"datastore": datastore, "path": clean_relpath(field, path, allow_root=True)}
    if isinstance(source, dict) and set(source) == {"url"}:
        url = source["url"]
        if not isinstance(url, str) or "://" not in url or "\x00" in url:
            raise ValidationError(field, f"{url!r} is not a URL (scheme://...)")
        return {"url": url}
    raise ValidationError(
        field, f"{source!r} is not a dataset source: expected a datastore path or a URL"
    )


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression of a path pattern (see the module docstring)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end + 1
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


def _split_glob(pattern: str) -> tuple[str, str | None]:
    """(the folder before the first part with a glob character, the pattern) or (pattern,
    None) when it has none."""
    if not has_glob(pattern):
        return pattern, None
    parts = pattern.split("/")
    fixed = []
    for part in parts:
        if has_glob(part):
            break
        fixed.append(part)
    return "/".join(fixed), pattern


def _find_in(root: FileStore, path: str, field: str, where: str) -> _Found:
    base, pattern = _split_glob(path)
    listing = root.list(base)
    if pattern is None:
        # A file names itself (its folder is the base); a folder, every file below it.
        if len(listing) == 1 and listing[0].path == base:
            found = _Found(root, posixpath.dirname(base), {base: listing[0].size}, False)
        else:
            found = _Found(root, base, {info.path: info.size for info in listing}, True)
    else:
        regex = pattern_regex(pattern)
        paths = {info.path: info.size for info in listing if regex.fullmatch(info.path)}
        found = _Found(root, base, paths, False)
    if not found.paths:
        raise ValidationError(field, f"{path!r} matches no file in {where}")
    return found


def _open_url(url: str, field: str) -> tuple[FileStore, str]:
    """A store for the part of ``url`` before any glob (its folder) and the rest of it."""
    scheme, _, rest = url.partition("://")
    cut = min((rest.find(c) for c in GLOB_CHARACTERS if c in rest), default=len(rest))
    folder = rest[:cut].rpartition("/")[0]
    if not folder:
        raise ValidationError(field, f"{url!r} names no file or folder below a host or bucket")
    try:
        store = FileStore(f"{scheme}://{folder}")
    except Exception as error:  # fsspec raises what its filesystem raises
        raise ValidationError(field, f"{url!r} cannot be opened: {error}") from None
    return store, clean_relpath(field, rest[len(folder) + 1 :], allow_root=True)


def find_files(
    backend: Backend | None, sources: list[dict[str, Any]], field: str = "path"
) -> list[FileGroup]:
    """The files of ``sources``, one group per datastore or URL root, in the order the
    sources name them. ValidationError naming ``field`` for a source that matches no file or
    names a path outside its root; NotFoundError for an unknown datastore."""
    roots: dict[str, FileStore] = {}
    found: dict[str, list[_Found]] = {}
    for entry in sources:
        source = check_source(field, entry)
        if "datastore" in source:
            key = "datastore:" + source["datastore"]
            if key not in roots:
                if backend is None:
                    raise ValidationError(
                        field, "a dataset of datastore paths needs its workspace to be read"
                    )
                roots[key] = _datastore_store(backend, source["datastore"])
            path = source["path"]
            where = f"datastore {source['datastore']!r}"
        else:
            store, path = _open_url(source["url"], field)
            key = "url:" + store.url
            roots.setdefault(key, store)
            where = source["url"]
        found.setdefault(key, []).append(_find_in(roots[key], path, field, where))
    return [_group(parts) for parts in found.values()]


def _datastore_store(backend: Backend, name: str) -> FileStore:
    """The datastore's store: opened by the backend with its credentials where it keeps them
    in this process (an embedded workspace), else opened here from its URL alone (a script's
    channel, a server's client: no credential reaches them, so only datastores that need
    none, a folder on this machine or a public bucket, are read this way)."""
    store = backend.local_datastore_store(name)
    if store is not None:
        return store
    return open_datastore(backend.get_datastore(name).url, {})


def _group(parts: list[_Found]) -> FileGroup:
    root = parts[0].root
    bases = [part.base for part in parts]
    base = posixpath.commonpath(bases) if all(bases) else ""
    files: dict[str, int] = {}
    for part in parts:
        for path, size in part.paths.items():
            files[path[len(base) + 1 :] if base else path] = size
    if root.is_local:
        folder = root.local_path(base)
        store = FileStore(local_url(folder))
    else:
        folder = None
        store = root.below(base)
    in_place = folder if len(parts) == 1 and parts[0].whole_folder else None
    infos = [FileInfo(path, size) for path, size in sorted(files.items())]
    return FileGroup(store, infos, in_place)


def relative_paths(groups: list[FileGroup]) -> list[str]:
    """Every file's path in the dataset, group after group; ValidationError when two groups
    hold the same path (their files would land on each other in a download)."""
    seen: set[str] = set()
    paths = []
    for group in groups:
        for info in group.files:
            if info.path in seen:
                raise ValidationError(
                    "path",
                    f"two sources of the dataset hold {info.path!r}: give sources whose files "
                    "have distinct paths below their folders",
                )
            seen.add(info.path)
            paths.append(info.path)
    return paths


def _fraction(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValidationError(field, f"{value!r} is not a number from 0 to 1")
    return float(value)


def _count(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(field, f"{value!r} is not a count (0, 1, 2, ...)")
    return value


def check_row_step(step: dict[str, Any]) -> dict[str, Any]:
    """A row step, checked (see :func:`pick`)."""
    op = step.get("op")
    if op in (TAKE, SKIP):
        return {"op": op, "count": _count("count", step.get("count"))}
    if op == SPLIT:
        part = step.get("part")
        if part not in (0, 1):
            raise ValidationError("part", f"{part!r} is not 0 or 1")
        return {
            "op": op,
            "percentage": _fraction("percentage", step.get("percentage")),
            "seed": _count("seed", step.get("seed")),
            "part": part,
        }
    if op == SAMPLE:
        return {
            "op": op,
            "probability": _fraction("probability", step.get("probability")),
            "seed": _count("seed", step.get("seed")),
        }
    raise ValidationError("steps", f"{op!r} is not a row step ({', '.join(ROW_STEPS)})")


def pick(count: int, step: dict[str, Any]) -> list[int]:
    """The indices (in order) of the items that a row step keeps of ``count`` items.

    ``random_split`` and ``take_sample`` draw one number per item from ``random.Random(seed)``
    (the same on every machine and Python version), so a seed always picks the same items,
    and the two parts of a split are disjoint and hold every item.

    Example::

        pick(5, {"op": "skip", "count": 2})       # [2, 3, 4]
    """
    step = check_row_step(step)
    op = step["op"]
    if op == TAKE:
        return list(range(min(count, step["count"])))
    if op == SKIP:
        return list(range(min(count, step["count"]), count))
    rng = random.Random(step["seed"])
    draws = [rng.random() for _ in range(count)]
    if op == SAMPLE:
        return [i for i, u in enumerate(draws) if u < step["probability"]]
    first = step["part"] == 0
    return [i for i, u in enumerate(draws) if (u < step["percentage"]) == first]


def select_files(groups: list[FileGroup], steps: list[dict[str, Any]]) -> list[FileGroup]:
    """The groups with only the files that the row steps keep, the steps applied in order to
    the files of all groups in a row (a file dataset's ``take``, ``skip``, ...)."""
    items = [(index, info) for index, group in enumerate(groups) for info in group.files]
    for step in steps:
        items = [items[i] for i in pick(len(items), step)]
    if len(items) == sum(len(group.files) for group in groups):
        return groups
    kept: list[list[FileInfo]] = [[] for _ in groups]
    for index, info in items:
        kept[index].append(info)
    # A subset of a folder is no longer the whole folder: nothing is in place.
    return [FileGroup(group.store, files) for group, files in zip(groups, kept, strict=True)]


# The variable that tells a run's processes what became of its dataset inputs: JSON
# {"run_id": ..., "inputs": {name: {"mode", "path", "definition", "id", "name", "version"}}}
# (written by runner/data.py, read by modelyard/data/run_inputs.py).
INPUTS_ENV = "MODELYARD_INPUT_DATASETS"


__all__ = [
    "INPUTS_ENV",
    "ROW_STEPS",
    "FileGroup",
    "check_row_step",
    "check_source",
    "find_files",
    "has_glob",
    "pattern_regex",
    "pick",
    "relative_paths",
    "select_files",
]
