"""Datastores: named storage for data, a local folder or any fsspec URL, with the v1 API.

Every workspace has a default datastore, ``workspaceblobstore``, a folder in the workspace.
:meth:`Datastore.register` adds others: a local folder, ``s3://bucket/prefix``, ``gs://...``,
``memory://...``, with the filesystem's options (credentials, endpoint) as keyword arguments;
:meth:`Datastore.register_s3` and :meth:`Datastore.register_azure_blob_container` (v1's
shape) build those for S3-compatible stores and Azure blob containers. The options are
handed to the backend, which keeps them (an embedded workspace in its folder's private
``secrets.json``, mode 0600, never in its database) and never gives them back: the records it
returns name the options with ``"***"`` for values, and so do ``repr``,
:meth:`Datastore.get_details`, the CLI and error messages (``store/secrets.py``). The backend
refuses URLs that would make it fetch from elsewhere (``http(s)://``, link-local and metadata
endpoints; ``backend/local/datastore_urls.py``).

``upload``, ``upload_files`` and ``download`` copy files with :mod:`modelyard.store.transfer`
through the backend's datastore-file calls, so a datastore is used the same way whether the
workspace is a folder or a server, and its credentials stay with the backend; a folder
datastore of an embedded workspace is copied to directly, the fast path (about 10,000 small
files/s here). Either way every path is checked before the first file is written,
``overwrite=False`` never replaces a file (it skips it and says so), each file appears whole,
and a progress bar shows files, bytes and speed (through the calls it moves a file at a time).

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
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.backend.base import every_item
from modelyard.backend.records import DatastoreRecord, FileInfo, iso_utc
from modelyard.cloud_storage import azure_blob_options
from modelyard.data.data_reference import DOWNLOAD, DataReference
from modelyard.errors import ConfigError, ValidationError
from modelyard.names import check_name, clean_relpath
from modelyard.store import local_tree, transfer
from modelyard.store.files import FileStore, local_url
from modelyard.store.secrets import redact
from modelyard.widgets import html as repr_html

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
        ``endpoint_url``, ...) and are kept by the backend (an embedded workspace's in its
        folder's private secrets file), never in its database nor in a run's processes, and
        never given back. The backend opens the store once and refuses one that does not
        open, or whose URL or endpoint it may not reach (ValidationError naming ``url`` or
        ``storage_options``; nothing is registered). Registering a name again with the same
        URL returns it; another URL needs ``overwrite=True`` (else ConflictError).

        Example::

            Datastore.register(ws, "scratch", "/data/scratch")       # file:///data/scratch
            Datastore.register(ws, "raw", "s3://bucket/raw", anon=True)
        """
        check_name("name", name)
        clean_url = _normalize_url(url)
        record = workspace._backend.register_datastore(
            name, clean_url, storage_options, overwrite=overwrite
        )
        return cls._from_record(workspace, record)

    @classmethod
    def register_s3(
        cls,
        workspace: Workspace,
        datastore_name: str,
        bucket_name: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        region_name: str | None = None,
        overwrite: bool = False,
        **storage_options: Any,
    ) -> Datastore:
        """Register the folder ``prefix`` of the S3 bucket ``bucket_name`` (AWS, or any
        S3-compatible store at ``endpoint_url``: MinIO, Ceph, ...) as ``s3://bucket/prefix``.

        ``key`` and ``secret`` are the access key's id and secret (without them, s3fs reads
        the backend's own AWS variables and files); other ``storage_options`` go to s3fs as
        they are. They are kept by the backend as :meth:`register` says.

        Example::

            Datastore.register_s3(ws, "raw", "team-data", "raw/2024",
                                  endpoint_url="http://minio:9000", key="...", secret="...")
        """
        if not isinstance(bucket_name, str) or not _S3_BUCKET.fullmatch(bucket_name):
            raise ValidationError(
                "bucket_name",
                f"{bucket_name!r} is not an S3 bucket name (3-63 lowercase letters, digits, "
                "'.' and '-')",
            )
        folder = clean_relpath("prefix", prefix, allow_root=True)
        options: dict[str, Any] = {}
        if key is not None:
            options["key"] = key
        if secret is not None:
            options["secret"] = secret
        client = {
            name: value
            for name, value in (("endpoint_url", endpoint_url), ("region_name", region_name))
            if value is not None
        }
        if client:
            options["client_kwargs"] = {**storage_options.pop("client_kwargs", {}), **client}
        url = f"s3://{bucket_name}/{folder}" if folder else f"s3://{bucket_name}"
        return cls.register(
            workspace, datastore_name, url, overwrite=overwrite, **options, **storage_options
        )

    @classmethod
    def register_azure_blob_container(
        cls,
        workspace: Workspace,
        datastore_name: str,
        container_name: str,
        account_name: str,
        sas_token: str | None = None,
        account_key: str | None = None,
        protocol: str | None = None,
        endpoint: str | None = None,
        overwrite: bool = False,
        create_if_not_exists: bool = False,
        skip_validation: bool = False,
        blob_cache_timeout: int | None = None,
        grant_workspace_access: bool = False,
        subscription_id: str | None = None,
        resource_group: str | None = None,
    ) -> Datastore:
        """Register an Azure blob container, with v1's arguments, as ``az://container``.

        The files are reached with fsspec's Azure filesystem, ``adlfs``, which the backend
        needs installed (``pip install adlfs``; without it the registration is refused with
        a ValidationError saying so). ``account_key`` or ``sas_token`` is the credential
        (neither: anonymous access to a public container); ``endpoint`` (default
        ``core.windows.net``) and ``protocol`` (``https``, or ``http`` for an emulator such
        as Azurite) say where the account answers. ``create_if_not_exists``,
        ``skip_validation``, ``blob_cache_timeout``, ``grant_workspace_access``,
        ``subscription_id`` and ``resource_group`` are accepted for v1 code and not used: no
        Azure Resource Manager is involved, and the container must exist.

        Example::

            Datastore.register_azure_blob_container(ws, "images", "images", "myaccount",
                                                    account_key="...")
        """
        options = azure_blob_options(account_name, sas_token, account_key, protocol, endpoint)
        if not isinstance(container_name, str) or not _AZURE_CONTAINER.fullmatch(container_name):
            raise ValidationError(
                "container_name",
                f"{container_name!r} is not a container name (3-63 lowercase letters, digits "
                "and '-')",
            )
        return cls.register(
            workspace, datastore_name, f"az://{container_name}", overwrite=overwrite, **options
        )

    @classmethod
    def register_azure_file_share(
        cls,
        workspace: Workspace,
        datastore_name: str,
        file_share_name: str,
        account_name: str,
        sas_token: str | None = None,
        account_key: str | None = None,
        protocol: str | None = None,
        endpoint: str | None = None,
        overwrite: bool = False,
        create_if_not_exists: bool = False,
        skip_validation: bool = False,
    ) -> Datastore:
        """v1's Azure file share registration, with its arguments: refused with a
        ConfigError that says what to do instead, and nothing registered.

        An Azure file share is an SMB or NFS share, not an object store, and fsspec (through
        which every datastore's files are read) has no filesystem for it. Mount the share on
        the machine that runs the backend (and the runs) and register the mount point as a
        folder, or keep the files in a blob container.

        Example::

            Datastore.register(ws, "shared", "/mnt/myaccount/share")   # the share, mounted
        """
        check_name("datastore_name", datastore_name)
        raise ConfigError(
            f"Azure file share {file_share_name!r} of account {account_name!r} cannot be "
            "reached as a datastore: it is an SMB/NFS share, which fsspec has no filesystem "
            "for. Mount it where the workspace's runs execute (`mount -t cifs "
            f"//{account_name}.file.core.windows.net/{file_share_name} /mnt/share ...`) and "
            f"register the mount: Datastore.register(ws, {datastore_name!r}, '/mnt/share'); "
            "or copy the files to a blob container and use register_azure_blob_container"
        )

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
        self._upload(_walk(folder), prefix, overwrite, show_progress, "src_dir")
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
        self._upload(pairs, prefix, overwrite, show_progress, "files")
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
        files = self._matching(prefix or "")
        store = self._folder()
        if store is not None:
            result = transfer.download(
                store,
                files,
                target_path,
                overwrite=overwrite,
                show_progress=show_progress,
                field="prefix",
            )
        else:
            backend = self._workspace._backend
            result = transfer.download_through(
                lambda name: backend.open_datastore_file(self.name, name),
                files,
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

    def _repr_html_(self) -> str:
        return repr_html.datastore_html(self._record)

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

    def _files(self) -> FileStore | None:
        """The datastore's file store opened in this process, where the backend keeps its
        credentials here (an embedded workspace); None where they are elsewhere."""
        return self._workspace._backend.local_datastore_store(self.name)

    def _folder(self) -> FileStore | None:
        """The datastore's folder, when it is one this process copies to directly (the fast
        path); every other store is reached through the backend's datastore-file calls."""
        store = self._files()
        return store if store is not None and store.is_local else None

    def _upload(
        self,
        files: Sequence[tuple[StrPath, str]],
        prefix: str,
        overwrite: bool,
        show_progress: bool,
        field: str,
    ) -> None:
        store = self._folder()
        if store is not None:
            transfer.upload(
                files, store, prefix, overwrite=overwrite, show_progress=show_progress, field=field
            )
            return
        backend = self._workspace._backend
        transfer.upload_through(
            lambda path, name: backend.upload_datastore_file(
                self.name, name, Path(path), overwrite=overwrite
            ),
            files,
            prefix,
            lambda: {info.path for info in self._listing(prefix)},
            overwrite=overwrite,
            show_progress=show_progress,
            field=field,
        )

    def _listing(self, prefix: str) -> builtins.list[FileInfo]:
        """Every file at or below ``prefix`` (clean), all pages."""
        backend = self._workspace._backend
        return builtins.list(
            every_item(
                lambda limit, after: backend.list_datastore_files(
                    self.name, prefix, limit=limit, after=after
                )
            )
        )

    def _matching(self, prefix: str) -> builtins.list[FileInfo]:
        """The files whose path starts with ``prefix`` (v1's blob-name prefix)."""
        clean = clean_relpath("prefix", prefix, allow_root=True)
        if not clean or prefix.endswith("/"):
            return self._listing(clean)
        parent = clean.rpartition("/")[0]
        return [info for info in self._listing(parent) if info.path.startswith(clean)]


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


# Bucket and container names as their services allow them.
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_AZURE_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")


__all__ = ["Datastore"]
