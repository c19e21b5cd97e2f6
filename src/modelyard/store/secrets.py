"""Datastore credentials: kept in a private file beside the database, never shown.

A datastore's ``storage_options`` (``key``, ``secret``, ``token``, ...) are not stored in the
metadata database, which may be a shared PostgreSQL server and holds everything else a
workspace knows. They live in ``secrets.json`` in the workspace folder (the backend's
``base_dir``), one object per datastore name::

    {"datastores": {"raw": {"key": "AKIA...", "secret": "..."}}}

Why a plain file and not encryption at rest: a key would have to sit in a file of the same
folder with the same permissions, so it would protect nothing that the file's mode does not.
The file is written ``0600`` whatever the umask, atomically (``store/private.py``), so a reader
sees the old file or the new one and no other account can read it. Read-modify-write is serialised
by an ``flock`` on ``secrets.json.lock``, so two processes registering datastores at once
both keep theirs.

What is shown instead of the values: :func:`redact` gives the option names with ``"***"``
for every value, and :func:`scrub` takes the values out of an error message (fsspec's errors
may quote them: ``zip://`` with ``fo=...`` says ``No such file or directory: '...'``).
:func:`open_datastore` opens a datastore's filesystem with both rules applied.

Example::

    secrets = SecretsFile(workspace_folder / SECRETS_FILE)
    secrets.put("raw", {"key": "AKIA...", "secret": "..."})
    secrets.get("raw")["key"]              # 'AKIA...'
    redact({"key": "AKIA..."})             # {'key': '***'}
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelyard.errors import StorageError, ValidationError
from modelyard.store.files import FileStore
from modelyard.store.private import write_private_file

SECRETS_FILE = "secrets.json"
HIDDEN = "***"
# Values shorter than this are left in messages: replacing "1" or "us" everywhere would make
# an error unreadable, and a value that short is no credential.
MIN_SCRUBBED_LENGTH = 4


class SecretsFile:
    """The datastore credentials of one workspace; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    def get(self, name: str) -> dict[str, Any]:
        """The storage options of datastore ``name`` (``{}`` when it has none)."""
        return dict(self._read().get(name, {}))

    def all(self) -> dict[str, dict[str, Any]]:
        """The storage options of every datastore that has some, by name."""
        return self._read()

    def put(self, name: str, options: dict[str, Any]) -> None:
        """Keep ``options`` for datastore ``name`` (an empty dict removes its entry)."""
        self.update({name: options})

    def update(self, changes: dict[str, dict[str, Any]]) -> None:
        """Set the options of several datastores in one write; empty ones are removed."""
        with self._locked():
            stored = self._read()
            for name, options in changes.items():
                if options:
                    stored[name] = dict(options)
                else:
                    stored.pop(name, None)
            self._write(stored)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o600)  # a umask like 0277 must not make it unopenable next time
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as error:
            raise StorageError(
                f"cannot read the datastore credentials in {self.path}: {error}; restore the "
                "file from a backup, or delete it and register the datastores again"
            ) from None
        try:
            data = json.loads(text)
            stores = data["datastores"]
            if not isinstance(stores, dict):
                raise TypeError("'datastores' is not an object")
        except (ValueError, KeyError, TypeError) as error:
            raise StorageError(
                f"the datastore credentials file {self.path} is damaged ({error}); restore it "
                "from a backup, or delete it and register the datastores again"
            ) from None
        return {str(name): dict(options) for name, options in stores.items()}

    def _write(self, stores: dict[str, dict[str, Any]]) -> None:
        write_private_file(
            self.path, json.dumps({"datastores": stores}, sort_keys=True, indent=1).encode()
        )


def redact(options: dict[str, Any]) -> dict[str, str]:
    """The option names with every value hidden, for display.

    Example::

        redact({"key": "AKIA...", "secret": "..."})   # {'key': '***', 'secret': '***'}
    """
    return {str(name): HIDDEN for name in options}


def _values(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _values(item)
    elif not isinstance(value, bool):
        text = str(value)
        if len(text) >= MIN_SCRUBBED_LENGTH:
            yield text


def scrub(text: str, options: dict[str, Any]) -> str:
    """``text`` with every option value (of 4 characters or more) replaced by ``***``.

    Example::

        scrub("bad token abcd1234", {"token": "abcd1234"})    # 'bad token ***'
    """
    # Longest first, so a value that contains another one is hidden whole.
    for value in sorted(set(_values(options)), key=len, reverse=True):
        text = text.replace(value, HIDDEN)
    return text


def open_datastore(url: str, options: dict[str, Any]) -> FileStore:
    """The file store of a datastore at ``url`` with ``options``; any failure of the
    filesystem to open becomes a ValidationError whose message holds no option value.

    Example::

        open_datastore("memory://raw", {}).url       # 'memory://raw'
    """
    try:
        return FileStore(url, options)
    except ImportError as error:
        message = f"{url!r} needs a package that is not installed: {error}"
        raise ValidationError("url", scrub(message, options)) from None
    except Exception as error:
        field = "storage_options" if isinstance(error, TypeError) else "url"
        shown = sorted(options) or "none"
        message = (
            f"{url!r} cannot be opened with the storage options given (names: {shown}; "
            f"values hidden): {type(error).__name__}: {error}"
        )
        raise ValidationError(field, scrub(message, options)) from None


__all__ = ["HIDDEN", "SECRETS_FILE", "SecretsFile", "open_datastore", "redact", "scrub"]
