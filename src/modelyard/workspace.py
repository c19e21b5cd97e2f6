"""The Workspace: the top-level container of experiments, runs, datastores and models.

An embedded workspace is a folder::

    <location>/workspace.json       name, id, and where its metadata and files live
    <location>/modelyard.db         the metadata database (SQLite, WAL)
    <location>/artifacts/           run files, snapshots, registered models
    <location>/datastores/workspaceblobstore/   the default datastore

``workspace.json`` may point ``database_url`` at PostgreSQL and ``storage_url`` at an object
store instead; nothing above the backend notices.

Example::

    ws = Workspace.create("demo")          # ./.modelyard/demo
    ws.write_config()                      # ./.modelyard/config.json
    ws = Workspace.from_config()           # what a notebook does
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from modelyard.backend.base import Backend
from modelyard.backend.workspace_folder import (
    DATABASE_FILE,
    WORKSPACE_FILE,
    WorkspaceFile,
    database_for_people,
    open_backend,
    read_json_file,
    read_workspace_file,
)
from modelyard.errors import (
    ConfigError,
    ConflictError,
    ModelyardError,
    StorageError,
    ValidationError,
)
from modelyard.names import check_name
from modelyard.store.private import make_private_folder, write_private_file

if TYPE_CHECKING:
    from modelyard.datastore import Datastore
    from modelyard.experiment import Experiment
    from modelyard.model import Model

CONFIG_DIR = ".modelyard"
CONFIG_FILE = "config.json"
DEFAULT_DATASTORE = "workspaceblobstore"
# The folders a new workspace makes for itself; like the workspace folder, owner-only.
OWN_FOLDERS = ("artifacts", "datastores", f"datastores/{DEFAULT_DATASTORE}", "compute")

# What a Workspace.create that died before writing workspace.json leaves in its folder.
_REMAINS = {
    *(own.split("/")[0] for own in OWN_FOLDERS),
    *(DATABASE_FILE + suffix for suffix in ("", "-wal", "-shm", "-journal")),
}


class ConfigFile(BaseModel):
    """The contents of a ``config.json`` written by :meth:`Workspace.write_config`.

    ``location`` is relative to the folder holding the config file when it is not absolute.
    """

    model_config = ConfigDict(extra="ignore")

    workspace_name: str
    location: str


def _default_location(name: str) -> Path:
    return Path.cwd() / CONFIG_DIR / name


def _write_json_privately(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private_file(path, (json.dumps(data, indent=2) + "\n").encode())


@contextlib.contextmanager
def _creation_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` itself (flock works on a folder's descriptor on
    Linux and macOS), so that processes creating one workspace at once take turns: the first
    makes it, the others find it made. No lock file is left in the folder."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _folder_error(folder: Path, error: OSError) -> ModelyardError:
    """The error of an OS error while making the workspace folder ``folder``."""
    if error.errno == errno.ENAMETOOLONG:
        return ValidationError(
            "location",
            f"{folder}: a part of the path is longer than the file system allows (255 bytes); "
            "choose a shorter name",
        )
    return StorageError(
        f"cannot create the workspace folder {error.filename or folder}: {error.strerror or error}"
    )


class Workspace:
    """An embedded workspace in a folder. Use :meth:`create`, :meth:`get` or
    :meth:`from_config` rather than the constructor, as in the v1 SDK."""

    def __init__(self, name: str, location: str | os.PathLike[str] | None = None) -> None:
        check_name("name", name)
        folder = Path(location) if location is not None else _default_location(name)
        folder = folder.expanduser().resolve()
        self._open(folder, read_workspace_file(folder, name))

    def _open(self, folder: Path, info: WorkspaceFile) -> None:
        self._name = info.name
        self._id = info.id
        self._location = folder
        self._script_run_id: str | None = None
        self._database: str | None = database_for_people(folder, info)
        self._backend: Backend = open_backend(folder, info)

    @classmethod
    def _attached(
        cls, name: str, workspace_id: str, backend: Backend, script_run_id: str | None = None
    ) -> Workspace:
        """A workspace object on a given backend, with no folder of its own (inside a
        submitted script, where the backend is the channel to the supervisor, and
        ``script_run_id`` is the script's run: what it submits becomes its children)."""
        ws = cls.__new__(cls)
        ws._script_run_id = script_run_id
        ws._name = name
        ws._id = workspace_id
        ws._location = Path.cwd()
        ws._database = None  # the supervisor's to know
        ws._backend = backend
        return ws

    # -- finding and making workspaces ---------------------------------------------------

    @classmethod
    def create(
        cls,
        name: str,
        location: str | os.PathLike[str] | None = None,
        exist_ok: bool = True,
        *,
        database_url: str | None = None,
        storage_url: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> Workspace:
        """Make an embedded workspace in ``location`` (default ``./.modelyard/<name>``).

        With ``exist_ok=True`` (the default, as in v1) an existing workspace of that name is
        returned instead. ``database_url`` puts its metadata in PostgreSQL
        (``postgresql+psycopg://user@host/db``, with the ``postgres`` extra) instead of a
        SQLite file in the folder. ``storage_url`` puts its files (run files, snapshots,
        logs, models) in an object store (``s3://bucket/prefix``, with the ``s3`` extra)
        instead of the folder's ``artifacts``; ``storage_options`` go to its fsspec
        filesystem (``{"key": ..., "secret": ..., "client_kwargs": {"endpoint_url": ...}}``,
        else s3fs reads the usual AWS variables) and are kept in the private
        ``workspace.json``.

        Example::

            ws = Workspace.create("demo", location="/data/workspaces/demo")
            ws = Workspace.create("team", storage_url="s3://models/team")
        """
        check_name("name", name)
        folder = Path(location) if location is not None else _default_location(name)
        folder = folder.expanduser().resolve()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise _folder_error(folder, error) from error
        with _creation_lock(folder):
            if (folder / WORKSPACE_FILE).exists():
                if not exist_ok:
                    raise ConflictError(
                        f"a workspace exists already at {folder}; pass exist_ok=True to use it"
                    )
                return cls(name, folder)
            found = {entry.name for entry in folder.iterdir()}
            if found and found <= _REMAINS:
                raise ConflictError(
                    f"{folder} holds what an unfinished Workspace.create left (no "
                    f"{WORKSPACE_FILE}); delete the folder and create the workspace again"
                )
            if found:
                raise ConflictError(
                    f"{folder} is not empty and holds no workspace; choose an empty or new folder"
                )
            try:
                return cls._make(name, folder, database_url, storage_url, storage_options)
            except OSError as error:
                raise _folder_error(folder, error) from error

    @classmethod
    def _make(
        cls,
        name: str,
        folder: Path,
        database_url: str | None,
        storage_url: str | None,
        storage_options: dict[str, Any] | None,
    ) -> Workspace:
        """Fill the empty, locked ``folder`` with a new workspace. ``workspace.json`` is written
        last: a folder that has one holds a whole workspace, so a creation that dies halfway
        is never opened as one."""
        make_private_folder(folder)
        for own in OWN_FOLDERS:
            make_private_folder(folder / own)
        info = WorkspaceFile(
            name=name,
            id=str(uuid.uuid4()),
            created_at=time.time(),
            database_url=database_url,
            storage_url=storage_url,
            storage_options=storage_options or None,
        )
        ws = cls.__new__(cls)
        ws._open(folder, info)
        # Stored relative, so the workspace folder can move or be copied whole.
        ws._backend.register_datastore(DEFAULT_DATASTORE, f"datastores/{DEFAULT_DATASTORE}", {})
        _write_json_privately(folder / WORKSPACE_FILE, info.model_dump(exclude_none=True))
        return ws

    @classmethod
    def get(cls, name: str, location: str | os.PathLike[str] | None = None) -> Workspace:
        """Open the existing workspace ``name`` (in ``location``, default
        ``./.modelyard/<name>``); NotFoundError when there is none."""
        return cls(name, location)

    @classmethod
    def from_config(
        cls, path: str | os.PathLike[str] | None = None, _file_name: str | None = None
    ) -> Workspace:
        """Open the workspace named by a config file, as a v1 notebook does.

        Looks for ``.modelyard/config.json`` and then ``config.json`` in ``path`` (a folder,
        or the config file itself) or, by default, in the current folder and each of its
        parents. The error lists every place it looked.

        Example::

            ws = Workspace.from_config()
        """
        names = [_file_name] if _file_name else [f"{CONFIG_DIR}/{CONFIG_FILE}", CONFIG_FILE]
        if path is not None and Path(path).is_file():
            candidates = [Path(path)]
        else:
            start = Path(path) if path is not None else Path.cwd()
            start = start.expanduser().resolve()
            folders = [start] if path is not None else [start, *start.parents]
            candidates = [folder / name for folder in folders for name in names]
        for candidate in candidates:
            if candidate.is_file():
                config = read_json_file(
                    candidate,
                    ConfigFile,
                    "modelyard config file",
                    "write it again with Workspace.write_config(), or remove it",
                )
                location = Path(config.location)
                if not location.is_absolute():
                    location = candidate.parent / location
                return cls(config.workspace_name, location)
        looked = "\n  ".join(str(c) for c in candidates)
        raise ConfigError(
            "no workspace config file found; looked in:\n  "
            f"{looked}\nCreate one with Workspace.create(name).write_config()"
        )

    def write_config(
        self, path: str | os.PathLike[str] | None = None, file_name: str | None = None
    ) -> Path:
        """Write ``<path>/.modelyard/<file_name>`` (default ``./.modelyard/config.json``) so
        that :meth:`from_config` finds this workspace; returns the file's path."""
        folder = Path(path) if path is not None else Path.cwd()
        target = folder.expanduser().resolve() / CONFIG_DIR / (file_name or CONFIG_FILE)
        location = os.path.relpath(self._location, target.parent)
        try:
            _write_json_privately(target, {"workspace_name": self._name, "location": location})
        except OSError as error:
            if error.errno == errno.ENAMETOOLONG:
                raise ValidationError(
                    "path", f"{target} is longer than the file system allows; choose a shorter one"
                ) from error
            raise StorageError(
                f"cannot write the config file {target}: {error.strerror}; choose a folder "
                "you can write to"
            ) from error
        return target

    # -- what the workspace holds --------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def location(self) -> Path:
        """The workspace's folder."""
        return self._location

    @property
    def experiments(self) -> dict[str, Experiment]:
        """Every experiment, by name."""
        from modelyard.experiment import Experiment

        return {
            record.name: Experiment._from_record(self, record)
            for record in self._backend.list_experiments()
        }

    @property
    def datastores(self) -> dict[str, Datastore]:
        """Every datastore, by name."""
        from modelyard.datastore import Datastore

        return {
            record.name: Datastore._from_record(self, record)
            for record in self._backend.list_datastores()
        }

    @property
    def compute_targets(self) -> dict[str, Any]:
        """Every compute target, by name (``local`` always exists)."""
        from modelyard.compute import ComputeTarget

        return {target.name: target for target in ComputeTarget.list(self)}

    @property
    def models(self) -> dict[str, Model]:
        """The latest version of every registered model, by name."""
        from modelyard.model import Model

        return {
            record.name: Model._from_record(self, record)
            for record in self._backend.list_models(latest=True)
        }

    def get_default_datastore(self) -> Datastore:
        """The datastore that uploads go to unless another is named."""
        from modelyard.datastore import Datastore

        return Datastore._from_record(self, self._backend.get_datastore())

    def set_default_datastore(self, name: str) -> None:
        """Make the datastore ``name`` the default."""
        self._backend.set_default_datastore(name)

    def get_details(self) -> dict[str, Any]:
        """The workspace's name, id, where it lives and its database (a password in the
        database URL shown as ``***``)."""
        return {
            "name": self._name,
            "id": self._id,
            "location": str(self._location),
            "database": self._database,
        }

    def __repr__(self) -> str:
        return f"Workspace.create(name={self._name!r}, location={str(self._location)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)
