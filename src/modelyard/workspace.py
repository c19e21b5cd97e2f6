"""The Workspace: the top-level container of experiments, runs, datastores and models.

An embedded workspace is a folder::

    <folder>/workspace.json       name, id, and where its metadata and files live
    <folder>/modelyard.db         the metadata database (SQLite, WAL)
    <folder>/artifacts/           run files, snapshots, registered models
    <folder>/datastores/workspaceblobstore/   the default datastore

``workspace.json`` may point ``database_url`` at PostgreSQL and ``storage_url`` at an object
store instead; nothing above the backend notices.

Example::

    ws = Workspace.create("demo")          # ./.modelyard/demo
    ws.write_config()                      # ./.modelyard/config.json
    ws = Workspace.from_config()           # what a notebook does

v1's Azure coordinates (``subscription_id``, ``resource_group``, ``location``: the region) have
no meaning here. A workspace keeps the ones it was created with, or that the ``config.json``
it was found by names, so v1 cells that print or pass them work; without them they read
``V1_PLACEHOLDERS``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.backend.base import Backend
from modelyard.backend.remote import workspace_path
from modelyard.backend.remote.credentials import normalize_server, token_for
from modelyard.backend.workspace_folder import (
    DATABASE_FILE,
    OWN_FOLDERS,
    WORKSPACE_FILE,
    WorkspaceFile,
    database_for_people,
    fill_workspace_folder,
    open_backend,
    read_json_file,
    read_workspace_file,
)
from modelyard.dataset import Dataset
from modelyard.errors import (
    ConfigError,
    ConflictError,
    ModelyardError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from modelyard.hints import say
from modelyard.names import check_name
from modelyard.store.private import write_private_file
from modelyard.widgets import html as repr_html
from modelyard.workspace_config import (
    CONFIG_DIR,
    CONFIG_FILE,
    CONFIG_NAMES,
    DEFAULT_SKU,
    V1_CREATE_ARGUMENTS,
    V1_PLACEHOLDERS,
    ConfigFile,
    check_auth,
    recordable,
    v1_coordinates,
)

if TYPE_CHECKING:
    from modelyard.backend.remote.transport import Transport
    from modelyard.data.abstract_dataset import AbstractDataset
    from modelyard.datastore import Datastore
    from modelyard.environment import Environment
    from modelyard.experiment import Experiment
    from modelyard.model import Model
    from modelyard.run import Run


# What a Workspace.create that died before writing workspace.json leaves in its folder.
_REMAINS = {
    *(own.split("/")[0] for own in OWN_FOLDERS),
    *(DATABASE_FILE + suffix for suffix in ("", "-wal", "-shm", "-journal")),
}


_MEMBERS_ON_SERVERS = (
    "members exist only on a server's workspace, where each one's token says who they are "
    "(Workspace.get(name, server=URL))"
)


def _folder_of(name: str, folder: str | os.PathLike[str] | None) -> Path:
    """The absolute folder of workspace ``name``: ``folder``, else ``./.modelyard/<name>``."""
    where = Path(folder) if folder is not None else Path.cwd() / CONFIG_DIR / name
    return where.expanduser().resolve()


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
            "folder",
            f"{folder}: a part of the path is longer than the file system allows (255 bytes); "
            "choose a shorter name",
        )
    return StorageError(
        f"cannot create the workspace folder {error.filename or folder}: {error.strerror or error}"
    )


class Workspace:
    """An embedded workspace in a folder. Use :meth:`create`, :meth:`get` or
    :meth:`from_config`, as in the v1 SDK; the constructor takes v1's arguments too.

    Example::

        ws = Workspace(subscription_id="...", resource_group="rg", workspace_name="demo")
    """

    def __init__(
        self,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        workspace_name: str | None = None,
        auth: object = None,
        *,
        folder: str | os.PathLike[str] | None = None,
        sku: str = "basic",
        tags: dict[str, str] | None = None,
        **v1_private: object,
    ) -> None:
        # v1's own private arguments (_location, _cloud, ...) mean nothing here either.
        unknown = sorted(key for key in v1_private if not key.startswith("_"))
        if unknown:
            raise ValidationError(unknown[0], "Workspace() has no such argument")
        if workspace_name is None:
            raise ValidationError(
                "workspace_name",
                "name the workspace: Workspace.get(name) or Workspace(workspace_name=...)",
            )
        check_name("name", workspace_name)
        check_auth(auth)
        where = _folder_of(workspace_name, folder)
        self._open(where, read_workspace_file(where, workspace_name))
        self._config_coordinates.update(v1_coordinates(subscription_id, resource_group, None))

    def _open(self, folder: Path, info: WorkspaceFile, backend: Backend | None = None) -> None:
        self._name = info.name
        self._id = info.id
        self._folder: Path | None = folder
        self._server: str | None = None
        self._coordinates = {
            key: value
            for key, value in (
                ("subscription_id", info.subscription_id),
                ("resource_group", info.resource_group),
                ("location", info.location),
            )
            if value
        }
        self._config_coordinates: dict[str, str] = {}
        self._sku = str((info.v1_arguments or {}).get("sku", DEFAULT_SKU))
        self._script_run_id: str | None = None
        self._database: str | None = database_for_people(folder, info)
        self._backend: Backend = backend or open_backend(folder, info)

    @classmethod
    def _at(cls, folder: Path, name: str | None = None) -> Workspace:
        """The workspace in ``folder`` (named ``name``, when given)."""
        ws = cls.__new__(cls)
        ws._open(folder, read_workspace_file(folder, name))
        return ws

    @classmethod
    def _attached(
        cls, name: str, workspace_id: str, backend: Backend, script_run_id: str | None = None
    ) -> Workspace:
        """A workspace object on a given backend, with no folder of its own (inside a
        submitted script, where the backend is the channel to the supervisor, and
        ``script_run_id`` is the script's run: what it submits becomes its children)."""
        ws = cls._on_backend(name, workspace_id, backend, folder=Path.cwd())
        ws._script_run_id = script_run_id
        return ws

    @classmethod
    def _on_backend(
        cls,
        name: str,
        workspace_id: str,
        backend: Backend,
        *,
        folder: Path | None = None,
        server: str | None = None,
    ) -> Workspace:
        """A workspace object on ``backend`` whose database is another process's to know
        (a script's supervisor, a server)."""
        ws = cls.__new__(cls)
        ws._script_run_id = None
        ws._name = name
        ws._id = workspace_id
        ws._folder = folder
        ws._server = server
        ws._coordinates = {}
        ws._config_coordinates = {}
        ws._sku = DEFAULT_SKU
        ws._database = None
        ws._backend = backend
        return ws

    @classmethod
    def _on_server(cls, server: str, name: str) -> Workspace:
        """Workspace ``name`` of the modelyard server at ``server``, reached with the token
        of ``MODELYARD_TOKEN`` or of ``modelyard login`` (NotFoundError when the server has
        no such workspace, or the caller is not one of its members)."""
        # Imported here: the HTTP client and the contract's models take ~0.5 s to import, and
        # a submitted script (which imports this module) never talks to a server itself.
        from modelyard.backend.remote.backend import RemoteBackend

        url = normalize_server(server)
        # Its methods are made from the contract when its module loads (mypy cannot see them).
        backend = RemoteBackend(url, name, token_for(url))  # type: ignore[abstract]
        record = backend.get_workspace()
        return cls._on_backend(record.name, record.id, backend, server=url)

    # -- finding and making workspaces ---------------------------------------------------

    @classmethod
    def create(
        cls,
        name: str,
        auth: object = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        location: str | None = None,
        exist_ok: bool = False,
        *,
        folder: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        storage_url: str | None = None,
        storage_options: dict[str, Any] | None = None,
        **v1_arguments: Any,
    ) -> Workspace:
        """Make an embedded workspace in ``folder`` (default ``./.modelyard/<name>``).

        With ``exist_ok=True`` an existing workspace of that name is returned instead; the
        default, as in v1, is an error. ``database_url`` puts its metadata in PostgreSQL
        (``postgresql+psycopg://user@host/db``, with the ``postgres`` extra) instead of a
        SQLite file in the folder. ``storage_url`` puts its files (run files, snapshots,
        logs, models) in an object store (``s3://bucket/prefix``, with the ``s3`` extra)
        instead of the folder's ``artifacts``; ``storage_options`` go to its fsspec
        filesystem (``{"key": ..., "secret": ..., "client_kwargs": {"endpoint_url": ...}}``,
        else s3fs reads the usual AWS variables) and are kept in the private
        ``workspace.json``.

        v1's ``subscription_id``, ``resource_group`` and ``location`` (its Azure region) are
        recorded and read back by the properties of those names. v1's other arguments
        (``sku``, ``create_resource_group``, ``storage_account``, ...) mean nothing here: they
        are recorded with one warning.

        Example::

            ws = Workspace.create("demo", folder="/data/workspaces/demo")
            ws = Workspace.create("team", storage_url="s3://models/team", exist_ok=True)
        """
        check_name("name", name)
        check_auth(auth)
        unknown = sorted(set(v1_arguments) - V1_CREATE_ARGUMENTS)
        if unknown:
            raise ValidationError(
                unknown[0], "Workspace.create() has no such argument (v1's or modelyard's)"
            )
        ignored = sorted(key for key in v1_arguments if key != "show_output")
        if ignored:
            warnings.warn(
                f"Workspace.create: {', '.join(ignored)} mean nothing for a modelyard "
                "workspace; recorded in its workspace.json and otherwise ignored",
                stacklevel=2,
            )
        coordinates = v1_coordinates(subscription_id, resource_group, location)
        where = _folder_of(name, folder)
        try:
            where.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise _folder_error(where, error) from error
        with _creation_lock(where):
            if (where / WORKSPACE_FILE).exists():
                if not exist_ok:
                    raise ConflictError(
                        f"a workspace exists already at {where}; pass exist_ok=True to use it"
                    )
                return cls._at(where, name)
            found = {entry.name for entry in where.iterdir()}
            if found and found <= _REMAINS:
                raise ConflictError(
                    f"{where} holds what an unfinished Workspace.create left (no "
                    f"{WORKSPACE_FILE}); delete the folder and create the workspace again"
                )
            if found:
                raise ConflictError(
                    f"{where} is not empty and holds no workspace; choose an empty or new folder"
                )
            recorded = {key: recordable(v1_arguments[key]) for key in ignored}
            try:
                return cls._make(
                    name,
                    where,
                    database_url,
                    storage_url,
                    storage_options,
                    coordinates,
                    recorded,
                )
            except OSError as error:
                raise _folder_error(where, error) from error

    @classmethod
    def _make(
        cls,
        name: str,
        folder: Path,
        database_url: str | None,
        storage_url: str | None,
        storage_options: dict[str, Any] | None,
        coordinates: dict[str, str],
        v1_arguments: dict[str, Any],
    ) -> Workspace:
        """Fill the empty, locked ``folder`` with a new workspace."""
        info = WorkspaceFile(
            name=name,
            id=str(uuid.uuid4()),
            created_at=time.time(),
            database_url=database_url,
            storage_url=storage_url,
            storage_options=storage_options or None,
            v1_arguments=v1_arguments or None,
            subscription_id=coordinates.get("subscription_id"),
            resource_group=coordinates.get("resource_group"),
            location=coordinates.get("location"),
        )
        ws = cls.__new__(cls)
        ws._open(folder, info, fill_workspace_folder(folder, info))
        return ws

    @classmethod
    def get(
        cls,
        name: str,
        auth: object = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        location: str | None = None,
        cloud: str = "AzureCloud",
        id: str | None = None,
        *,
        folder: str | os.PathLike[str] | None = None,
        server: str | None = None,
    ) -> Workspace:
        """Open the existing workspace ``name`` (in ``folder``, default
        ``./.modelyard/<name>``, or on the modelyard ``server`` at that URL); NotFoundError
        when there is none. v1's other arguments are accepted; the coordinates given are
        what the properties of those names read.

        Example::

            ws = Workspace.get("demo", subscription_id="...", resource_group="rg")
            ws = Workspace.get("team", server="https://ml.example.com")
        """
        check_name("name", name)
        check_auth(auth)
        if server is not None:
            if folder is not None:
                raise ValidationError("folder", "give a folder or a server, not both")
            ws = cls._on_server(server, name)
            ws._config_coordinates = v1_coordinates(subscription_id, resource_group, location)
            return ws
        ws = cls._at(_folder_of(name, folder), name)
        ws._config_coordinates = v1_coordinates(subscription_id, resource_group, location)
        return ws

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str] | None = None,
        auth: object = None,
        _logger: object = None,
        _file_name: str | None = None,
    ) -> Workspace:
        """Open the workspace named by a config file, as a v1 notebook does.

        Looks for ``.modelyard/config.json``, ``config.json`` and ``.azureml/config.json`` in
        ``path`` (a folder, or the config file itself) or, by default, in the current folder
        and each of its parents. A v1 ``config.json`` works as it is: its workspace is
        ``.modelyard/<workspace_name>`` beside it. The error lists every place it looked.

        Example::

            ws = Workspace.from_config()
        """
        names = [_file_name] if _file_name else list(CONFIG_NAMES)
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
                if config.server is not None:
                    ws = cls._on_server(config.server, config.workspace_name)
                    ws._config_coordinates = v1_coordinates(
                        config.subscription_id, config.resource_group, None
                    )
                    return ws
                where = config.workspace_folder(candidate).resolve()
                try:
                    ws = cls._at(where, config.workspace_name)
                except NotFoundError as error:
                    raise NotFoundError(
                        f"{candidate} names workspace {config.workspace_name!r}, which does not "
                        f"exist at {where}; create it there with "
                        + say(
                            "Workspace.create({name!r}, folder={folder!r})",
                            name=config.workspace_name,
                            folder=str(where),
                        )
                    ) from error
                ws._config_coordinates = v1_coordinates(
                    config.subscription_id, config.resource_group, None
                )
                return ws
        looked = "\n  ".join(str(c) for c in candidates)
        raise ConfigError(
            "no workspace config file found; looked in:\n  "
            f"{looked}\nCreate one with {say('Workspace.create(name).write_config()')}"
        )

    def write_config(
        self, path: str | os.PathLike[str] | None = None, file_name: str | None = None
    ) -> Path:
        """Write ``<path>/.modelyard/<file_name>`` (default ``./.modelyard/config.json``) so
        that :meth:`from_config` finds this workspace; returns the file's path. It holds the
        workspace's name, its folder (relative to the file) and its v1 coordinates."""
        where = Path(path) if path is not None else Path.cwd()
        target = where.expanduser().resolve() / CONFIG_DIR / (file_name or CONFIG_FILE)
        # A server's workspace is named by the server's URL; its token is never written here
        # (config files are shared with a project; `modelyard login` keeps the token).
        config = {
            "workspace_name": self._name,
            **(
                {"server": self._server}
                if self._server is not None
                else {"folder": os.path.relpath(self.folder, target.parent)}
            ),
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
        }
        try:
            _write_json_privately(target, config)
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
    def folder(self) -> Path:
        """The workspace's folder (ConfigError for a server's workspace, which has none on
        this machine)."""
        if self._folder is None:
            raise ConfigError(
                f"workspace {self._name!r} lives on the server {self._server}, not in a folder "
                "on this machine; this needs an embedded workspace"
            )
        return self._folder

    @property
    def server(self) -> str | None:
        """The URL of the modelyard server holding the workspace; None when embedded."""
        return self._server

    def _coordinate(self, key: str) -> str:
        return (
            self._config_coordinates.get(key) or self._coordinates.get(key) or V1_PLACEHOLDERS[key]
        )

    @property
    def subscription_id(self) -> str:
        """v1's Azure subscription: the one the config file or ``create`` named, else
        ``V1_PLACEHOLDERS``'s (it means nothing here)."""
        return self._coordinate("subscription_id")

    @property
    def sku(self) -> str:
        """v1's workspace edition: the ``sku`` given to ``create``, else v1's ``"basic"`` (it
        means nothing here)."""
        return self._sku

    @property
    def resource_group(self) -> str:
        """v1's Azure resource group, as :attr:`subscription_id` finds it."""
        return self._coordinate("resource_group")

    @property
    def location(self) -> str:
        """v1's Azure region (a string, as v1 notebooks print it), as :attr:`subscription_id`
        finds it; the workspace's folder is :attr:`folder`."""
        return self._coordinate("location")

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
    def datasets(self) -> dict[str, AbstractDataset]:
        """The latest version of every registered dataset, by name.

        Example::

            ws.datasets["mnist"].version     # 3
        """
        return Dataset.get_all(self)

    @property
    def compute_targets(self) -> dict[str, Any]:
        """Every compute target, by name (``local`` always exists)."""
        from modelyard.compute import ComputeTarget

        return {target.name: target for target in ComputeTarget.list(self)}

    @property
    def environments(self) -> dict[str, Environment]:
        """The latest version of every registered environment, then the curated ones, by
        name (``Environment.list``)."""
        from modelyard.environment import Environment

        return Environment.list(self)

    @property
    def models(self) -> dict[str, Model]:
        """The latest version of every registered model, by name."""
        from modelyard.model import Model

        return {
            record.name: Model._from_record(self, record)
            for record in self._backend.list_models(latest=True)
        }

    def get_run(self, run_id: str) -> Run:
        """The run ``run_id`` of any experiment (v1's ``ws.get_run``); NotFoundError when
        there is none, ValidationError for an id that cannot be one.

        Example::

            run = ws.get_run("tf-mnist_1700000000_1a2b3c4d")
        """
        from modelyard.experiment import Experiment
        from modelyard.run import typed_run

        check_name("run_id", run_id)
        record = self._backend.get_run(run_id)
        return typed_run(Experiment(self, record.experiment_name), record)

    def get_default_datastore(self) -> Datastore:
        """The datastore that uploads go to unless another is named."""
        from modelyard.datastore import Datastore

        return Datastore._from_record(self, self._backend.get_datastore())

    def set_default_datastore(self, name: str) -> None:
        """Make the datastore ``name`` the default."""
        self._backend.set_default_datastore(name)

    # -- a server's workspace: its members, and deleting it -------------------------------

    def _server_transport(self, refusal: str) -> Transport:
        """The connection to the server holding this workspace; ConfigError, saying
        ``refusal``, when it is embedded."""
        from modelyard.backend.remote.backend import RemoteBackend  # see _on_server

        if self._server is None or not isinstance(self._backend, RemoteBackend):
            raise ConfigError(
                f"workspace {self._name!r} is embedded (no server holds it): {refusal}"
            )
        return self._backend.transport

    def list_members(self) -> list[dict[str, str]]:
        """The members of this server workspace and their roles (``reader``,
        ``contributor``, ``owner``), by user name. Any member may list them.

        Example::

            ws.list_members()   # [{'user': 'ada', 'role': 'owner'}, {'user': 'bob', ...}]
        """
        transport = self._server_transport(_MEMBERS_ON_SERVERS)
        members: list[dict[str, str]] = transport.request(
            "GET", workspace_path(self._name, "members")
        )
        return [{"user": member["user"], "role": member["role"]} for member in members]

    def set_member(self, user: str, role: str) -> None:
        """Give ``user`` (a user of the server) ``role`` in this server workspace, making them
        a member or changing their role (owners only: PermissionDeniedError else). The last
        owner cannot be made less (ConflictError): make another member owner first.

        Example::

            ws.set_member("bob", "contributor")
        """
        check_name("user", user)
        self._server_transport(_MEMBERS_ON_SERVERS).request(
            "PUT", workspace_path(self._name, "members", user), json={"role": role}
        )

    def remove_member(self, user: str) -> None:
        """Take ``user`` out of this server workspace (owners only); one who is not a member
        is not an error. The last owner cannot be removed (ConflictError).

        Example::

            ws.remove_member("bob")
        """
        check_name("user", user)
        self._server_transport(_MEMBERS_ON_SERVERS).request(
            "DELETE", workspace_path(self._name, "members", user)
        )

    def delete(self, delete_dependent_resources: bool = False, no_wait: bool = False) -> None:
        """Delete this server workspace and everything the server keeps of it: experiments,
        runs, metrics, files, models, datastores' registrations and members (owners only).
        Refused (ConflictError) while it has runs that have not ended: cancel them first.
        The object is of no use afterwards; a workspace of the same name can be made again,
        empty.

        v1's arguments are accepted: the files of datastores registered from outside the
        workspace are never deleted, whatever ``delete_dependent_resources`` says, and the
        deletion is done when this returns, so ``no_wait`` changes nothing.

        Example::

            Workspace.get("scratch", server="https://ml.example.com").delete()
        """
        refusal = (
            "Workspace.delete is for a server's workspace; an embedded one is its folder, "
            f"{self._folder}: remove that folder to delete it"
        )
        self._server_transport(refusal).request("DELETE", workspace_path(self._name))

    def get_details(self) -> dict[str, Any]:
        """The workspace's name, id, folder, database and v1 coordinates (a password in the
        database URL shown as ``***``)."""
        return {
            "name": self._name,
            "id": self._id,
            "folder": None if self._folder is None else str(self._folder),
            **({"server": self._server} if self._server is not None else {}),
            "database": self._database,
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
            "location": self.location,
        }

    def _repr_html_(self) -> str:
        where = self._server if self._server is not None else str(self._folder)
        return repr_html.workspace_html(
            self._name, self.location, self.resource_group, where, sorted(self.experiments)
        )

    def __repr__(self) -> str:
        if self._server is not None:
            return f"Workspace.get(name={self._name!r}, server={self._server!r})"
        return f"Workspace.create(name={self._name!r}, folder={str(self._folder)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)


__all__ = ["Workspace"]
