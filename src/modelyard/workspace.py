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

import json
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from modelyard.backend.base import Backend
from modelyard.errors import ConfigError, ConflictError, NotFoundError
from modelyard.names import check_name
from modelyard.store.files import local_url

if TYPE_CHECKING:
    from modelyard.datastore import Datastore
    from modelyard.experiment import Experiment
    from modelyard.model import Model

WORKSPACE_FILE = "workspace.json"
CONFIG_DIR = ".modelyard"
CONFIG_FILE = "config.json"
DEFAULT_DATASTORE = "workspaceblobstore"


class WorkspaceFile(BaseModel):
    """The contents of ``<workspace>/workspace.json``."""

    model_config = ConfigDict(extra="forbid")

    format: int = 1
    name: str
    id: str
    created_at: float
    database_url: str | None = None
    storage_url: str | None = None


class ConfigFile(BaseModel):
    """The contents of a ``config.json`` written by :meth:`Workspace.write_config`.

    ``location`` is relative to the folder holding the config file when it is not absolute.
    """

    model_config = ConfigDict(extra="ignore")

    workspace_name: str
    location: str


def _default_location(name: str) -> Path:
    return Path.cwd() / CONFIG_DIR / name


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temp, path)


class Workspace:
    """An embedded workspace in a folder. Use :meth:`create`, :meth:`get` or
    :meth:`from_config` rather than the constructor, as in the v1 SDK."""

    def __init__(self, name: str, location: str | os.PathLike[str] | None = None) -> None:
        check_name("name", name)
        folder = Path(location) if location is not None else _default_location(name)
        folder = folder.expanduser().resolve()
        info_path = folder / WORKSPACE_FILE
        if not info_path.is_file():
            raise NotFoundError(
                f"workspace {name!r} does not exist at {folder}; create it with "
                f"Workspace.create({name!r}, location=...)"
            )
        try:
            info = WorkspaceFile.model_validate_json(info_path.read_text())
        except PydanticValidationError as error:
            raise ConfigError(f"{info_path} is not a valid workspace file: {error}") from error
        if info.name != name:
            raise NotFoundError(f"the workspace at {folder} is named {info.name!r}, not {name!r}")
        self._name = name
        self._id = info.id
        self._location = folder
        from modelyard.backend.local import LocalBackend  # not in scripts' imports: heavy

        self._backend: Backend = LocalBackend(
            name,
            info.database_url or f"sqlite:///{folder / 'modelyard.db'}",
            info.storage_url or local_url(folder / "artifacts"),
            base_dir=folder,
        )

    @classmethod
    def _attached(cls, name: str, workspace_id: str, backend: Backend) -> Workspace:
        """A workspace object on a given backend, with no folder of its own (inside a
        submitted script, where the backend is the channel to the supervisor)."""
        ws = cls.__new__(cls)
        ws._name = name
        ws._id = workspace_id
        ws._location = Path.cwd()
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
    ) -> Workspace:
        """Make an embedded workspace in ``location`` (default ``./.modelyard/<name>``).

        With ``exist_ok=True`` (the default, as in v1) an existing workspace of that name is
        returned instead. ``database_url`` puts its metadata in PostgreSQL
        (``postgresql+psycopg://user@host/db``, with the ``postgres`` extra) instead of a
        SQLite file in the folder.

        Example::

            ws = Workspace.create("demo", location="/data/workspaces/demo")
        """
        check_name("name", name)
        folder = Path(location) if location is not None else _default_location(name)
        folder = folder.expanduser().resolve()
        info_path = folder / WORKSPACE_FILE
        if info_path.exists():
            if not exist_ok:
                raise ConflictError(
                    f"a workspace exists already at {folder}; pass exist_ok=True to use it"
                )
            return cls(name, folder)
        if folder.exists() and any(folder.iterdir()):
            raise ConflictError(
                f"{folder} is not empty and holds no workspace; choose an empty or new folder"
            )
        folder.mkdir(parents=True, exist_ok=True)
        info = WorkspaceFile(
            name=name, id=str(uuid.uuid4()), created_at=time.time(), database_url=database_url
        )
        _write_json_atomically(info_path, info.model_dump(exclude_none=True))
        ws = cls(name, folder)
        default_store = f"datastores/{DEFAULT_DATASTORE}"
        (folder / default_store).mkdir(parents=True, exist_ok=True)
        # Stored relative, so the workspace folder can move or be copied whole.
        ws._backend.register_datastore(DEFAULT_DATASTORE, default_store, {})
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
                try:
                    config = ConfigFile.model_validate_json(candidate.read_text())
                except PydanticValidationError as error:
                    raise ConfigError(
                        f"{candidate} is not a modelyard config file: {error}"
                    ) from error
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
        _write_json_atomically(target, {"workspace_name": self._name, "location": location})
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
            record.name: Experiment(self, record.name)
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

        return ComputeTarget.list(self)

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
        """The workspace's name, id and where it lives."""
        return {"name": self._name, "id": self._id, "location": str(self._location)}

    def __repr__(self) -> str:
        return f"Workspace.create(name={self._name!r}, location={str(self._location)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)
