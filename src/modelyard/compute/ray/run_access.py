"""How a server's cluster reaches its workspace: the server's URL and tokens of its own,
never the workspace's credentials.

- **The cluster's admission** (on the cluster's head: the server's machine, or another one for
  a cluster attached by address) gets a token of its compute target's
  (``AccountStore.create_cluster_token``, ``server/cluster_tokens.py``), which the server
  writes with its URL to ``<cluster folder>/cluster_access.json`` (0600) before it starts
  the provisioning, which hands it to the admission (:class:`ClusterAccess`).
- **Each run's nodes** get the run's own token: when a run is queued on a cluster, the server
  mints it and writes ``<cluster folder>/run_access/<run id>.json`` (0600):
  ``{"server": public URL, "workspace": name, "token": ...}``. The admission asks the server
  for it (:func:`fetch_run_access`, the server reads or mints it) when it places the run, and
  hands it to the run's node hosts instead of the workspace's ``workspace.json`` (which holds
  its database URL and storage keys); their supervisors report to the server with it
  (``runner/cluster_node.py``). When the run ends, the server revokes the token and removes
  the file; when the compute target is deleted, it revokes the cluster's token.

Example::

    write_run_access(folder, "cpucluster", run_id, ServedWorkspace(server=url, ...))
    read_run_access(folder, "cpucluster", run_id)    # ServedWorkspace(...), or None
    fetch_run_access(remote_backend, "cpucluster", run_id)   # from the admission
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from modelyard.backend.remote import workspace_path
from modelyard.backend.remote.backend import RemoteBackend
from modelyard.compute.ray.targets import cluster_folder
from modelyard.names import check_name
from modelyard.runner.cluster_node import ServedWorkspace
from modelyard.store.private import make_private_folder, write_private_file

ACCESS_DIR = "run_access"
CLUSTER_ACCESS_FILE = "cluster_access.json"


class ClusterAccess(BaseModel):
    """What a server's cluster's admission gets instead of ``workspace.json``."""

    model_config = ConfigDict(extra="forbid")

    server: str  # the server's public URL
    workspace: str  # the workspace's name there
    workspace_id: str  # what names the cluster's actors (as workspace.json's id does)
    compute: str
    token: str  # the compute target's token (AccountStore.create_cluster_token)

    def backend(self) -> RemoteBackend:
        return RemoteBackend(self.server, self.workspace, self.token)  # type: ignore[abstract]


def write_cluster_access(location: Path, access: ClusterAccess) -> None:
    path = cluster_folder(location, access.compute) / CLUSTER_ACCESS_FILE
    make_private_folder(path.parent)
    write_private_file(path, access.model_dump_json().encode())


def read_cluster_access(location: Path, compute: str) -> ClusterAccess | None:
    """What the server wrote for the cluster; None while there is none."""
    try:
        raw = (cluster_folder(location, compute) / CLUSTER_ACCESS_FILE).read_bytes()
        return ClusterAccess.model_validate_json(raw)
    except (OSError, PydanticValidationError):
        return None


def remove_cluster_access(location: Path, compute: str) -> None:
    (cluster_folder(location, compute) / CLUSTER_ACCESS_FILE).unlink(missing_ok=True)


def access_path(workspace: str, compute: str, run_id: str) -> str:
    """The server's route that answers a run's access (``server/app.py``)."""
    return workspace_path(workspace, "computes", compute, "runs", run_id, "access")


def fetch_run_access(backend: RemoteBackend, compute: str, run_id: str) -> ServedWorkspace:
    """Run ``run_id``'s access, from the server, with the cluster's token ``backend`` holds
    (PermissionDeniedError: the run is not ``compute``'s; ConflictError: it has ended)."""
    reply = backend.transport.request("GET", access_path(backend.workspace_name, compute, run_id))
    return ServedWorkspace.model_validate(reply)


def access_file(location: Path, compute: str, run_id: str) -> Path:
    check_name("run_id", run_id)  # a file name: no path of its own
    return cluster_folder(location, compute) / ACCESS_DIR / f"{run_id}.json"


def write_run_access(location: Path, compute: str, run_id: str, access: ServedWorkspace) -> None:
    path = access_file(location, compute, run_id)
    make_private_folder(path.parent)
    write_private_file(path, access.model_dump_json().encode())


def read_run_access(location: Path, compute: str, run_id: str) -> ServedWorkspace | None:
    """What the server wrote for the run; None while there is none (or what is there cannot
    be read: the server writes it whole, atomically, so that is a file someone else put)."""
    try:
        raw = access_file(location, compute, run_id).read_bytes()
        return ServedWorkspace.model_validate_json(raw)
    except (OSError, PydanticValidationError):
        return None


def remove_run_access(location: Path, compute: str, run_id: str) -> None:
    access_file(location, compute, run_id).unlink(missing_ok=True)
