"""Where a modelyard server keeps its data, from ``modelyard server``'s options.

::

    <data_dir>/server.db              users, tokens, workspaces and members (unless database_url)
    <data_dir>/workspaces/<name>/     each workspace's folder: workspace.json, its secrets file,
                                      its SQLite database and files (unless the URLs say else)

With ``database_url`` (PostgreSQL), the server's tables and every workspace live in that one
database, each workspace in a schema of its own; with ``storage_url`` (``s3://bucket/prefix``),
each workspace's files live below ``<storage_url>/<workspace id>``.

Example::

    settings = ServerSettings(data_dir=Path("/srv/modelyard"))
    settings.accounts_database_url      # 'sqlite:////srv/modelyard/server.db'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The server's data folder when `modelyard server` is given none: beside the workspaces an
# embedded session makes (.modelyard/<name>), but not among them.
DEFAULT_DATA_DIR = Path(".modelyard-server")
ACCOUNTS_DATABASE_FILE = "server.db"
WORKSPACES_DIR = "workspaces"
# The largest request body the server reads (file uploads stream, in parts, outside this).
DEFAULT_MAX_BODY_BYTES = 64 << 20
# The largest file one upload may carry.
DEFAULT_MAX_UPLOAD_BYTES = 64 << 30


@dataclass(frozen=True)
class ServerSettings:
    """What a server was started with; the defaults are SQLite and folders in ``data_dir``."""

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    storage_url: str | None = None
    # fsspec options of storage_url (an S3 endpoint, key and secret).
    storage_options: dict[str, Any] = field(default_factory=dict)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    # Folders of the server's machine that workspaces may register as datastores, besides
    # their own folder (shared data, say); none by default.
    datastore_roots: tuple[str, ...] = ()
    # The URL the nodes of the server's clusters reach it at (their supervisors report there
    # with their runs' tokens); ``serve`` makes it http://<host>:<port> when none is given.
    public_url: str | None = None

    @property
    def accounts_database_url(self) -> str:
        """The database of users, tokens, workspaces and members."""
        if self.database_url is not None:
            return self.database_url
        return "sqlite:///" + str((self.data_dir / ACCOUNTS_DATABASE_FILE).absolute())

    @property
    def workspaces_dir(self) -> Path:
        return self.data_dir / WORKSPACES_DIR

    def storage_url_of(self, workspace_id: str) -> str | None:
        """Where the files of workspace ``workspace_id`` go; None: its folder's default."""
        if self.storage_url is None:
            return None
        return self.storage_url.rstrip("/") + "/" + workspace_id
