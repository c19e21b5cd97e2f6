"""Datastores: named storage for data, a local folder or any fsspec URL, with the v1 API.

Every workspace has a default datastore, ``workspaceblobstore``, a folder in the workspace.
:meth:`Datastore.register` adds others: a local folder, ``s3://bucket/prefix``, ``gs://...``,
``memory://...``, with the filesystem's options (credentials, endpoint) as keyword arguments.
Those options are kept in the workspace folder's private ``secrets.json`` (mode 0600), not in
its database, and are never shown: ``repr``, :meth:`Datastore.get_details`, the CLI and error
messages give the option names with ``"***"`` for values (``store/secrets.py``).

``upload``, ``upload_files`` and ``download`` copy files with :mod:`modelyard.store.transfer`:
every path is checked before the first file is written, ``overwrite=False`` never replaces a
file (it skips it and says so), each file is written under a temporary name and renamed, and a
progress bar shows files, bytes and speed.

Symbolic links: inside a local datastore and inside a download's target folder they are never
followed (a run given ``as_mount()`` can plant one; a later upload or download through it
would write or read elsewhere on the disk): one in the way raises ValidationError, and a
datastore's links are not among its files. In what is uploaded, the rule of a run's snapshot
holds: a link to a file inside the folder is uploaded as that file, other links are not
followed. ``as_mount()``, ``as_download()`` and ``path()``
return :class:`~modelyard.data.data_reference.DataReference` objects, which a run turns into local
paths.

Example::

    ds = ws.get_default_datastore()
    ds.upload(src_dir="./data/mnist", target_path="mnist", overwrite=True)
    est = TensorFlow(..., script_params={"--data-folder": ds.as_mount()})

    Datastore.register(ws, "raw", "s3://bucket/raw", key="...", secret="...")
    Datastore.get(ws, "raw").download("./raw", prefix="2024/")
"""

from __future__ import annotations

import builtins
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.backend.records import DatastoreRecord, FileInfo, iso_utc
from modelyard.data.data_reference import DOWNLOAD, DataReference
from modelyard.errors import ValidationError
from modelyard.names import check_name, clean_relpath
from modelyard.store import local_tree, transfer
from modelyard.store.files import FileStore, local_url
from modelyard.store.secrets import open_datastore, redact

if TYPE_CHECKING:
    from modelyard.workspace import Workspace

StrPath = str | os.PathLike[str]

logger = logging.getLogger(__name__)


class Datastore:
    """A named place for data in a workspace; see the module docstring.

    ``Datastore(workspace, name)`` gets an existing datastore (NotFoundError when there is
    none), and ``Datastore(workspace)`` the default one, as in the v1 SDK.

    Example::

        ds = Datastore(ws, "workspaceblobstore")
        ds.name, ds.is_default        # ('workspaceblobstore', True)
    """

    def __init__(self, workspace: Workspace, name: str | None = None) -> None:
        if name is not None:
            check_name("name", name)
        self._init(workspace, workspace._backend.get_datastore(name))

    @classmethod
    def _from_record(cls, workspace: Workspace, record: DatastoreRecord) -> Datastore:
        """A datastore object for a record the caller fetched already (no second query)."""
        datastore = cls.__new__(cls)
        datastore._init(workspace, record)
        return datastore

    def _init(self, workspace: Workspace, record: DatastoreRecord) -> None:
        self._workspace = workspace
        self._record = record
        self._store: FileStore | None = None

    # -- finding and registering ---------------------------------------------------------

    @classmethod
    def register(
        cls,
        workspace: Workspace,
        name: str,
        url: StrPath,
        *,
        overwrite: bool = False,
        **storage_options: Any,
    ) -> Datastore:
        """Register the datastore ``name`` at ``url``: an fsspec URL or a local folder path.

        ``storage_options`` go to the fsspec filesystem (``key``, ``secret``,
        ``endpoint_url``, ...) and are kept in the workspace folder's private secrets file,
        never in its database nor in a run's processes. Registering a name again with
        the same URL returns it; another URL needs ``overwrite=True`` (else ConflictError).

        Example::

            Datastore.register(ws, "scratch", "/data/scratch")       # file:///data/scratch
            Datastore.register(ws, "raw", "s3://bucket/raw", anon=True)
        """
        check_name("name", name)
        clean_url = _normalize_url(url)
        try:
            json.dumps(storage_options)
        except (TypeError, ValueError) as error:
            raise ValidationError(
                "storage_options", f"values must be JSON strings, numbers, lists or dicts: {error}"
            ) from None
        open_datastore(clean_url, storage_options)  # fails here, not at the first upload
        record = workspace._backend.register_datastore(
            name, clean_url, storage_options, overwrite=overwrite
        )
        return cls._from_record(workspace, record)

    @classmethod
    def get(cls, workspace: Workspace, name: str) -> Datastore:
        """The datastore ``name``; NotFoundError when the workspace has none by that name.

        Example::

            Datastore.get(ws, "raw").url         # 's3://bucket/raw'
        """
        return cls(workspace, name)

    @classmethod
    def get_default(cls, workspace: Workspace) -> Datastore:
        """The workspace's default datastore.

        Example::

            Datastore.get_default(ws).name       # 'workspaceblobstore'
        """
        return cls(workspace)

    @classmethod
    def list(cls, workspace: Workspace) -> builtins.list[Datastore]:
        """Every datastore of the workspace, by name.

        Example::

            [ds.name for ds in Datastore.list(ws)]   # ['raw', 'workspaceblobstore']
        """
        return [cls._from_record(workspace, r) for r in workspace._backend.list_datastores()]

    def set_as_default(self) -> None:
        """Make this the workspace's default datastore (v1's ``set_as_default``)."""
        self._workspace._backend.set_default_datastore(self.name)

    # -- properties ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def url(self) -> str:
        """Where the files live: ``file:///...`` for a local folder, else the fsspec URL."""
        return self._record.url

    @property
    def workspace(self) -> Workspace:
        return self._workspace

    @property
    def is_default(self) -> bool:
        """Whether this is the workspace's default datastore now (asked each time, since
        another process may change it)."""
        return self._workspace._backend.get_datastore(None).name == self.name

    # -- moving files --------------------------------------------------------------------

    def upload(
        self,
        src_dir: StrPath,
        target_path: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> DataReference:
        """Upload the files of the local folder ``src_dir`` below ``target_path``.

        The folder's own name is not kept: ``src_dir/a/b.csv`` lands at ``target_path/a/b.csv``.
        Links follow a snapshot's rule: a link to a file inside ``src_dir`` is uploaded as
        that file; links to folders, links leading out of ``src_dir``, broken links and special
        files are skipped, with a warning naming them. Existing files are skipped unless
        ``overwrite``. A symbolic link in the datastore where a folder of ``target_path`` goes
        raises ValidationError (field ``target_path``) before anything is written. Returns a
        reference to ``target_path``.

        Example::

            ref = ds.upload("./data/mnist", target_path="mnist", overwrite=True)
            ref.path_on_datastore                # 'mnist'
        """
        prefix = clean_relpath("target_path", target_path or "", allow_root=True)
        folder = Path(src_dir)
        if not folder.is_dir():
            raise ValidationError("src_dir", f"{os.fspath(src_dir)!r} is not a folder")
        transfer.upload(
            _walk(folder),
            self._files(),
            prefix,
            overwrite=overwrite,
            show_progress=show_progress,
            field="src_dir",
        )
        return DataReference(self, path_on_datastore=prefix)

    def upload_files(
        self,
        files: Sequence[StrPath],
        relative_root: StrPath | None = None,
        target_path: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> DataReference:
        """Upload the local ``files``, keeping their paths relative to ``relative_root``.

        ``relative_root`` defaults to the folder that all the files share, as in v1: uploading
        ``/d/a.csv`` and ``/d/sub/b.csv`` gives ``a.csv`` and ``sub/b.csv`` below
        ``target_path``. Every file must be below ``relative_root``, after symbolic links are
        followed: a listed link (or a linked folder on its way) that leads out of
        ``relative_root`` is refused with ValidationError (field ``files``), not skipped, since
        the file was asked for by name. Returns a reference to ``target_path``.

        Example::

            ds.upload_files(["./x/a.csv", "./x/sub/b.csv"], target_path="x")
            # the datastore now holds x/a.csv and x/sub/b.csv
        """
        prefix = clean_relpath("target_path", target_path or "", allow_root=True)
        if isinstance(files, str | os.PathLike) or not files:
            raise ValidationError("files", "give a non-empty list of file paths")
        paths = [os.path.abspath(os.fspath(f)) for f in files]
        if relative_root is None:
            root = os.path.commonpath([os.path.dirname(p) for p in paths])
        else:
            root = os.path.abspath(os.fspath(relative_root))
        root_real = os.path.realpath(root)
        pairs = []
        for path in paths:
            if os.path.commonpath([root, path]) != root:
                raise ValidationError(
                    "relative_root", f"{path!r} is not below the relative root {root!r}"
                )
            real = os.path.realpath(path)
            if not real.startswith(root_real + os.sep):
                raise ValidationError(
                    "files",
                    f"{path!r} leads out of {root!r} through a symbolic link (to {real!r}); "
                    "links are uploaded only when they name a file inside the relative root: "
                    "list the file itself, or copy it in",
                )
            pairs.append((real, os.path.relpath(path, root).replace(os.sep, "/")))
        transfer.upload(
            pairs,
            self._files(),
            prefix,
            overwrite=overwrite,
            show_progress=show_progress,
            field="files",
        )
        return DataReference(self, path_on_datastore=prefix)

    def download(
        self,
        target_path: StrPath,
        prefix: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> int:
        """Download files to the local folder ``target_path``; return how many were copied.

        Files keep their full path in the datastore (``mnist/train.csv`` goes to
        ``target_path/mnist/train.csv``). ``prefix`` picks the files whose path starts with
        it, as v1 did with blob names: ``"mnist/"`` is the folder ``mnist``, ``"mnist"`` also
        matches ``mnist2/...``. Existing local files are skipped unless ``overwrite``.
        Symbolic links are not followed: a local datastore's links are not among its files
        (a ``prefix`` that names one raises ValidationError), and a link below
        ``target_path`` where a folder goes raises ValidationError (field ``target_path``)
        before anything is written; a link where a file goes counts as an existing file.

        Example::

            ds.download("./data", prefix="mnist/", overwrite=True)   # 10000
        """
        store = self._files()
        result = transfer.download(
            store,
            _matching(store, prefix or ""),
            target_path,
            overwrite=overwrite,
            show_progress=show_progress,
            field="prefix",
        )
        return result.files

    # -- data references -----------------------------------------------------------------

    def path(
        self, path: str | None = None, data_reference_name: str | None = None
    ) -> DataReference:
        """A reference to ``path`` in this datastore (its root when None), mounted by default.

        Example::

            str(ds.path("mnist"))     # '$MODELYARD_DATAREFERENCE_workspaceblobstore'
        """
        return DataReference(self, data_reference_name, path_on_datastore=path)

    def as_mount(self) -> DataReference:
        """The whole datastore, read in place by a run.

        Example::

            script_params = {"--data-folder": ds.as_mount()}
        """
        return self.path().as_mount()

    def as_download(self, path_on_compute: str | None = None) -> DataReference:
        """The whole datastore, downloaded to ``path_on_compute`` before a run starts.

        Example::

            script_params = {"--data-folder": ds.as_download(path_on_compute="data")}
        """
        return DataReference(self, mode=DOWNLOAD, path_on_compute=path_on_compute)

    def get_details(self) -> dict[str, Any]:
        """The datastore's name, URL, whether it is the default, and the names of its storage
        options with their values hidden (``"***"``).

        Example::

            Datastore.get(ws, "raw").get_details()
            # {'name': 'raw', 'url': 's3://bucket/raw', 'isDefault': False,
            #  'createdTimeUtc': '2025-11-24T16:00:00Z',
            #  'storageOptions': {'key': '***', 'secret': '***'}}
        """
        return {
            "name": self.name,
            "url": self.url,
            "isDefault": self.is_default,
            "createdTimeUtc": iso_utc(self._record.created_at),
            "storageOptions": redact(self._record.storage_options),
        }

    def __repr__(self) -> str:
        return (
            f"Datastore(workspace={self._workspace.name!r}, name={self.name!r}, url={self.url!r})"
        )

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Datastore)
            and other._workspace == self._workspace
            and other.name == self.name
        )

    def __hash__(self) -> int:
        return hash((self._workspace.name, self.name))

    def _files(self) -> FileStore:
        if self._store is None:
            self._store = open_datastore(self.url, self._record.storage_options)
        return self._store


def _normalize_url(url: StrPath) -> str:
    """An fsspec URL for ``url``; a plain path becomes ``file://`` and its absolute path."""
    text = os.fspath(url) if isinstance(url, str | os.PathLike) else None
    if not isinstance(text, str) or not text or "\x00" in text:
        raise ValidationError("url", f"{url!r} is not a URL or a folder path")
    if "://" in text:
        return text
    folder = Path(text).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise ValidationError("url", f"{text!r} is a file; a datastore is a folder")
    return local_url(folder)


def _walk(folder: Path) -> builtins.list[tuple[str, str]]:
    """(path to read, relative path) of every file below ``folder`` that is uploaded."""
    return local_tree.files_to_read(os.fspath(folder), "upload of", logger)


def _matching(store: FileStore, prefix: str) -> builtins.list[FileInfo]:
    """The store's files whose path starts with ``prefix`` (v1's blob-name prefix)."""
    clean = clean_relpath("prefix", prefix, allow_root=True)
    if not clean or prefix.endswith("/"):
        return store.list(clean)
    parent = clean.rpartition("/")[0]
    return [info for info in store.list(parent) if info.path.startswith(clean)]


__all__ = ["Datastore"]
