"""The rules for names and relative paths that users give.

Names of experiments, models, datastores, environments and compute targets: 1 to 255
characters from ``A-Z a-z 0-9 _ - .``, starting with a letter or digit. Experiment names are
at most 235 characters: a run id is ``<experiment>_<unix time>_<8 hex>``, 20 characters more,
and run ids are names too.

Display names of runs are free text for people: up to 255 printable characters (no control or
format characters such as NUL, ESC or a right-to-left override).

Metric names may also hold spaces, ``/``, ``:`` and parentheses (``train/loss``,
``acc (val)``), up to 255 characters, starting with a letter, digit or ``_``.

Tag and property keys are free text, as in v1 (``"Best Run"``, ``"lr (initial)"``): 1 to 255
printable characters (no control or format characters), not starting or ending with a space.
Their values are strings of at most 5,000 characters without NUL.

Relative paths (file names in a run, upload targets, model paths, download names) use ``/``
between parts, are normalised (``./a//b`` is ``a/b``) and must stay inside their root: ``..``
parts, absolute paths, drive letters, backslashes, NUL and empty paths are refused, and so is
any part that starts with :data:`TMP_PREFIX`: the store names its half-written files so, and
leaves them out of every listing, so a user's file by such a name would be stored and then
hidden.

Every check raises :class:`~modelyard.errors.ValidationError` naming the field, before anything
is written.

Example::

    >>> check_name("experiment_name", "tf-mnist")
    'tf-mnist'
    >>> check_display_name("display_name", "first try (lr=0.1)")
    'first try (lr=0.1)'
    >>> clean_relpath("target_path", "./mnist//train")
    'mnist/train'
"""

from __future__ import annotations

import re
import urllib.parse
import uuid
from typing import Any

from modelyard.errors import ValidationError

MAX_NAME_LENGTH = 255
# "_" + 10 digits of Unix time (until the year 2286) + "_" + 8 hex digits: see run.new_run_id.
RUN_ID_SUFFIX_LENGTH = 20
MAX_EXPERIMENT_NAME_LENGTH = MAX_NAME_LENGTH - RUN_ID_SUFFIX_LENGTH
MAX_DISPLAY_NAME_LENGTH = 255
MAX_TAG_VALUE_LENGTH = 5000
MAX_PATH_LENGTH = 1024
# The start of every temporary name the store and the downloads make for themselves (half-written
# files, staging folders); clean_relpath refuses it in users' paths.
TMP_PREFIX = ".modelyard-tmp-"
# What makes a folder a workspace folder (its format: backend/workspace_folder.py). Here, with
# no import behind it, for what must recognise one cheaply: a snapshot, the agent's handshake.
WORKSPACE_FILE = "workspace.json"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}")
_METRIC = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/: ()\[\]]{0,254}")
_DRIVE = re.compile(r"[A-Za-z]:")


def check_name(field: str, name: object) -> str:
    """Return ``name`` when it is a valid object name, else raise ValidationError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(
            field,
            f"{name!r} is not a valid name: use 1 to {MAX_NAME_LENGTH} characters from "
            "letters, digits, '_', '-' and '.', starting with a letter or digit",
        )
    return name


def check_experiment_name(field: str, name: object) -> str:
    """Return ``name`` when it is a valid experiment name, short enough that the ids of its
    runs are valid names too; else raise ValidationError."""
    name = check_name(field, name)
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise ValidationError(
            field,
            f"an experiment name may be at most {MAX_EXPERIMENT_NAME_LENGTH} characters (its "
            f"runs' ids add {RUN_ID_SUFFIX_LENGTH}); {name[:24]!r}... has {len(name)}",
        )
    return name


def check_display_name(field: str, name: object) -> str | None:
    """Return ``name`` when it is None or a valid display name (see the module docstring),
    else raise ValidationError. An empty string means no display name, as None does."""
    if name is None or name == "":
        return None
    if not isinstance(name, str):
        raise ValidationError(field, f"expected a string, got {type(name).__name__}")
    if len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise ValidationError(
            field,
            f"a display name may be at most {MAX_DISPLAY_NAME_LENGTH} characters, not {len(name)}",
        )
    if not name.isprintable():
        bad = next(char for char in name if not char.isprintable())
        raise ValidationError(
            field,
            f"{name!r} holds the unprintable character {bad!r}; a display name may hold "
            "letters, digits, spaces and punctuation, but no control or format characters",
        )
    return name


def check_metric_name(field: str, name: object) -> str:
    """Return ``name`` when it is a valid metric name, else raise ValidationError."""
    if not isinstance(name, str) or not _METRIC.fullmatch(name):
        raise ValidationError(
            field,
            f"{name!r} is not a valid metric name: use 1 to {MAX_NAME_LENGTH} characters from "
            "letters, digits, spaces and '_ - . / : ( ) [ ]', starting with a letter, digit or '_'",
        )
    return name


def check_tag_key(field: str, key: object) -> str:
    """Return ``key`` when it is a valid tag or property key (see the module docstring), else
    raise ValidationError."""
    if not isinstance(key, str):
        raise ValidationError(field, f"a key must be a string, not {type(key).__name__}")
    if not key or len(key) > MAX_NAME_LENGTH:
        raise ValidationError(
            field, f"key {key[:24]!r} must have 1 to {MAX_NAME_LENGTH} characters, not {len(key)}"
        )
    if not key.isprintable():
        bad = next(char for char in key if not char.isprintable())
        raise ValidationError(
            field,
            f"key {key!r} holds the unprintable character {bad!r}; a key may hold letters, "
            "digits, spaces and punctuation, but no control or format characters",
        )
    if key != key.strip():
        raise ValidationError(field, f"key {key!r} starts or ends with a space; remove it")
    return key


def check_tags(field: str, tags: object) -> dict[str, str]:
    """Validate a mapping of tag or property keys to string values; return it as a plain dict.

    Values that are not strings are converted with ``str`` as the v1 SDK did; ``None`` becomes
    an empty string (a tag without a value).
    """
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise ValidationError(field, f"expected a dict of str to str, got {type(tags).__name__}")
    clean: dict[str, str] = {}
    for key, value in tags.items():
        check_tag_key(field, key)
        text = "" if value is None else str(value)
        if len(text) > MAX_TAG_VALUE_LENGTH or "\x00" in text:
            raise ValidationError(
                field,
                f"value of {key!r} must be at most {MAX_TAG_VALUE_LENGTH} characters without NUL",
            )
        clean[key] = text
    return clean


def check_environment_variables(field: str, variables: object) -> dict[str, str]:
    """Validate environment variables for a run: identifier names, string values without NUL
    (other values are converted with ``str``). None is an empty dict."""
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        raise ValidationError(field, "must be a dict of names to values")
    clean: dict[str, str] = {}
    for key, value in variables.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ValidationError(field, f"{key!r} is not a valid environment variable name")
        text = str(value)
        if "\x00" in text:
            raise ValidationError(field, f"{key}: NUL is not allowed")
        clean[key] = text
    return clean


def clean_relpath(field: str, path: object, *, allow_root: bool = False) -> str:
    """Normalise a relative path and check that it stays inside its root.

    With ``allow_root=True`` an empty path (or ``.``) is accepted and returned as ``""``,
    meaning the root itself. Parts starting with :data:`TMP_PREFIX` are refused.
    """
    if not isinstance(path, str):
        raise ValidationError(field, f"expected a relative path string, got {type(path).__name__}")
    if "\x00" in path:
        raise ValidationError(field, "a path must not contain NUL characters")
    if "\\" in path:
        raise ValidationError(field, f"{path!r}: use '/' between path parts, not '\\'")
    if path.startswith("/") or _DRIVE.match(path):
        raise ValidationError(field, f"{path!r} is absolute; give a path relative to its root")
    if len(path) > MAX_PATH_LENGTH:
        raise ValidationError(field, f"a path may be at most {MAX_PATH_LENGTH} characters")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValidationError(field, f"{path!r} leaves its root through '..'")
    # A path that leaves its root once percent-decoded (%2e%2e, %2f, %5c) is refused too:
    # a URL, a browser or an object store's console may decode it on its way.
    if "%" in path and urllib.parse.unquote(path) != path:
        decoded = urllib.parse.unquote(path)
        if ".." in decoded.replace("\\", "/").split("/") or decoded.startswith(("/", "\\")):
            raise ValidationError(
                field, f"{path!r} leaves its root once its %-escapes are decoded ({decoded!r})"
            )
    if not parts and not allow_root:
        raise ValidationError(field, "the path is empty; give a file or folder name")
    for part in parts:
        if part.startswith(TMP_PREFIX):
            raise ValidationError(
                field,
                f"{path!r}: names starting with {TMP_PREFIX!r} are kept for temporary "
                "files of the store; rename it",
            )
    return "/".join(parts)


def temp_name() -> str:
    """A new temporary file or folder name, unique, that no user's path can take."""
    return f"{TMP_PREFIX}{uuid.uuid4().hex}"


def join_relpath(*parts: str) -> str:
    """Join already-clean relative paths, skipping empty ones."""
    return "/".join(part for part in parts if part)


def tag_filter(tags: Any, field: str) -> dict[str, str | None] | None:
    """v1 accepts a key, a [key, value] pair, or a dict; turn each into key -> value|None."""
    if tags is None:
        return None
    if isinstance(tags, str):
        return {tags: None}
    if isinstance(tags, dict):
        return {str(k): (None if v is None else str(v)) for k, v in tags.items()}
    if isinstance(tags, list | tuple) and len(tags) == 2 and all(isinstance(x, str) for x in tags):
        return {tags[0]: tags[1]}
    raise ValidationError(field, "give a key, a [key, value] pair or a dict of key -> value")
