"""The backend of an embedded workspace: a SQL database and a file store in this process.

One class, :class:`LocalBackend`, assembled from one part per area of the contract (runs,
metrics, datastores, models, environments, datasets, compute targets, snapshots), each in its
own module.

Example::

    backend = LocalBackend("demo", "sqlite:///ws/modelyard.db", "file:///ws/artifacts")
    backend.ensure_experiment("mnist")
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from modelyard.backend.local.computes import ComputeStore
from modelyard.backend.local.datasets import DatasetStore
from modelyard.backend.local.datastores import DatastoreStore
from modelyard.backend.local.environments import EnvironmentStore
from modelyard.backend.local.metrics import MetricStore
from modelyard.backend.local.models import ModelStore
from modelyard.backend.local.runs import RunStore
from modelyard.backend.local.snapshots import SnapshotStore
from modelyard.backend.records import ModelRecord, WorkspaceRecord
from modelyard.names import clean_relpath
from modelyard.store import migrate
from modelyard.store.database import Database
from modelyard.store.files import FileStore
from modelyard.store.secrets import SECRETS_FILE


class LocalBackend(
    RunStore,
    MetricStore,
    DatastoreStore,
    ModelStore,
    EnvironmentStore,
    DatasetStore,
    ComputeStore,
    SnapshotStore,
):
    """Metadata in a SQL database (SQLite by default), files in an fsspec file store.

    ``storage_options`` go to the fsspec filesystem of ``storage_url``: for an S3-compatible
    store, ``{"key": ..., "secret": ..., "client_kwargs": {"endpoint_url": ...}}`` (without
    them s3fs reads the usual AWS variables and files).

    ``allowed_local_roots`` limits the datastores that may be registered, for a server's
    backend: only object stores and folders below these (``backend/local/datastore_urls.py``);
    None, for an embedded workspace, allows any.
    """

    def __init__(
        self,
        workspace_name: str,
        database_url: str,
        storage_url: str,
        *,
        base_dir: Path | None = None,
        storage_options: dict[str, Any] | None = None,
        workspace_id: str | None = None,
        allowed_local_roots: list[str] | None = None,
    ) -> None:
        self.workspace_name = workspace_name
        # A workspace folder's id comes from its workspace.json; a bare backend's is derived
        # from its database, so it is the same every time that database is opened.
        self.workspace_id = workspace_id or str(uuid.uuid5(uuid.NAMESPACE_URL, database_url))
        # Datastore URLs without a scheme are folders relative to the workspace, so a
        # workspace folder can be moved or copied whole.
        self.base_dir = base_dir
        # None: an embedded workspace's (any folder, any fsspec filesystem); a server gives
        # the folders its datastores may be in (local/datastore_urls.py).
        self.allowed_local_roots = allowed_local_roots
        self.db = Database(database_url)
        migrate.upgrade(
            self.db, secrets_path=base_dir / SECRETS_FILE if base_dir is not None else None
        )
        self.files = FileStore(storage_url, storage_options)
        self.delete_abandoned_uploads()

    def get_workspace(self) -> WorkspaceRecord:
        return WorkspaceRecord(self.workspace_name, self.workspace_id)

    def run_file_url(self, run_id: str, name: str) -> str:
        return self._url(f"runs/{run_id}/{clean_relpath('name', name)}")

    def model_url(self, record: ModelRecord) -> str:
        return self._url(record.storage_path)

    def _url(self, relpath: str) -> str:
        path = self.files.full_path(relpath)
        return path if self.files.is_local else str(self.files.fs.unstrip_protocol(path))


__all__ = ["LocalBackend"]
