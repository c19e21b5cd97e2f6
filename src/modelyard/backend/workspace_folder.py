"""A workspace folder: its ``workspace.json``, and the backend that file describes.

The SDK's :class:`~modelyard.workspace.Workspace` and the local compute's agent (which has no
SDK objects) both open a workspace folder through this module::

    <folder>/workspace.json       name, id, and where its metadata and files live
    <folder>/modelyard.db         the metadata database (SQLite, WAL), unless database_url
    <folder>/artifacts/           run files, snapshots, models, unless storage_url

Example::

    info = read_workspace_file(Path(".modelyard/demo"), "demo")
    backend = open_backend(Path(".modelyard/demo"), info)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from modelyard.errors import ConfigError, NotFoundError, StorageError

# Re-exported: importers of this module use it.
from modelyard.names import WORKSPACE_FILE as WORKSPACE_FILE
from modelyard.store.files import local_url
from modelyard.store.private import make_private_folder, write_private_file

if TYPE_CHECKING:
    from modelyard.backend.local import LocalBackend

DATABASE_FILE = "modelyard.db"
DEFAULT_DATASTORE = "workspaceblobstore"
# The folders a new workspace makes for itself; like the workspace folder, owner-only.
OWN_FOLDERS = ("artifacts", "datastores", f"datastores/{DEFAULT_DATASTORE}", "compute")

_File = TypeVar("_File", bound=BaseModel)


class WorkspaceFile(BaseModel):
    """The contents of ``<workspace>/workspace.json``."""

    model_config = ConfigDict(extra="forbid")

    format: int = 1
    name: str
    id: str
    created_at: float
    database_url: str | None = None
    storage_url: str | None = None
    # fsspec options of storage_url (an S3 endpoint, key and secret): this file is 0600.
    storage_options: dict[str, Any] | None = None
    # v1's Azure coordinates given to Workspace.create (location is the region, not a folder),
    # and its arguments that mean nothing here, recorded.
    subscription_id: str | None = None
    resource_group: str | None = None
    location: str | None = None
    v1_arguments: dict[str, Any] | None = None

    @property
    def reachable_without_folder(self) -> bool:
        """Whether a machine without the workspace's folder reaches it (a cluster's node on
        another machine): its metadata in a database server and its files in an object
        store."""
        return self.database_url is not None and self.storage_url is not None


def read_json_file(path: Path, schema: type[_File], what: str, fix: str) -> _File:
    """``path`` parsed as ``schema``; any way it can be unreadable is a ConfigError that names
    the file and says how to fix it (``fix``)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}; {fix}") from error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path} is not a {what}: byte {error.start} is not UTF-8 text; {fix}"
        ) from error
    try:
        return schema.model_validate_json(text)
    except PydanticValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"{path} is not a {what} ({problems}); {fix}") from error


def check_database_file(folder: Path, db_path: Path) -> None:
    """Refuse to open a workspace whose SQLite file is gone or emptied: SQLite would make a
    new, empty database there, and the workspace would silently forget its runs, datastores
    and models."""
    try:
        size = db_path.stat().st_size
    except FileNotFoundError:
        state = "is missing"
    else:
        if size > 0:
            return
        state = "is empty (0 bytes)"
    raise StorageError(
        f"the database of the workspace at {folder} ({db_path}) {state}, so its runs, "
        f"datastores and models cannot be read; restore {DATABASE_FILE} from a backup, or "
        "create a new workspace in an empty folder"
    )


def read_workspace_file(folder: Path, name: str | None = None) -> WorkspaceFile:
    """The ``workspace.json`` of ``folder``, checked: NotFoundError when there is none or the
    workspace there has another name than ``name``, ConfigError when it is damaged,
    StorageError when its SQLite database is gone."""
    info_path = folder / WORKSPACE_FILE
    if not info_path.is_file():
        raise NotFoundError(
            f"workspace {name!r} does not exist at {folder}; create it with "
            f"Workspace.create({name!r}, folder=...)"
        )
    info = read_json_file(
        info_path,
        WorkspaceFile,
        "valid workspace file",
        "restore it from a backup, or create a new workspace in an empty folder",
    )
    if name is not None and info.name != name:
        raise NotFoundError(f"the workspace at {folder} is named {info.name!r}, not {name!r}")
    if info.database_url is None:
        check_database_file(folder, folder / DATABASE_FILE)
    return info


def database_url(folder: Path, info: WorkspaceFile) -> str:
    """Where the workspace's metadata lives."""
    return info.database_url or f"sqlite:///{folder / DATABASE_FILE}"


def database_for_people(folder: Path, info: WorkspaceFile) -> str:
    """The database URL with a password in it shown as ``***`` (get_details, the CLI)."""
    from sqlalchemy import make_url  # heavy, and not needed by scripts, which never open one

    return make_url(database_url(folder, info)).render_as_string(hide_password=True)


def fill_workspace_folder(
    folder: Path, info: WorkspaceFile, *, allowed_local_roots: list[str] | None = None
) -> LocalBackend:
    """Make the workspace ``info`` in the empty ``folder`` (which the caller holds locked)
    and return its backend. ``workspace.json`` is written last: a folder that has one holds a
    whole workspace, so a creation that dies halfway is never opened as one."""
    make_private_folder(folder)
    for own in OWN_FOLDERS:
        make_private_folder(folder / own)
    backend = open_backend(folder, info, allowed_local_roots=allowed_local_roots)
    # Stored relative, so the workspace folder can move or be copied whole.
    backend.register_datastore(DEFAULT_DATASTORE, f"datastores/{DEFAULT_DATASTORE}", {})
    data = info.model_dump(exclude_none=True)
    write_private_file(folder / WORKSPACE_FILE, (json.dumps(data, indent=2) + "\n").encode())
    return backend


def open_backend(
    folder: Path, info: WorkspaceFile, *, allowed_local_roots: list[str] | None = None
) -> LocalBackend:
    """The backend of the workspace in ``folder``; ``allowed_local_roots`` limits where its
    folder datastores may be (a server's; None: anywhere, as embedded)."""
    # Imported here, not above: SQLAlchemy and the store take ~0.3 s to import, and a
    # submitted script imports the SDK (and so this module) without ever opening a database.
    from modelyard.backend.local import LocalBackend

    return LocalBackend(
        info.name,
        database_url(folder, info),
        info.storage_url or local_url(folder / "artifacts"),
        base_dir=folder,
        storage_options=info.storage_options,
        workspace_id=info.id,
        allowed_local_roots=allowed_local_roots,
    )
