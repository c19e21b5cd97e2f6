"""A run's supervisor on one node of a cluster.

The cluster's node host (``compute/ray/node.py``, a Ray actor on each node) runs it, in a
thread of its own process, for each run placed on the node: it opens the workspace's backend
(:func:`open_node_backend`) and makes a :class:`~modelyard.runner.supervisor.Supervisor` for
this node's part of the run (:func:`supervisor_for`, a ``NodeRole``): the first node records
the run's progress; every node prepares its environment, unpacks the snapshot in its own
folder, resolves data references, starts its processes, ships their logs and metrics, uploads
their ``./outputs`` and writes how its part ended, which the cluster's admission combines.

The workspace must be reachable from the node: its folder on this machine (an embedded
workspace, when the cluster runs on the same machine), or its PostgreSQL database and S3
storage (a workspace created with ``database_url`` and ``storage_url``), which any node
reaches with the ``workspace.json`` the admission hands over. A server's workspace is reached
through the server instead (:class:`ServedWorkspace`): its URL and the run's own token,
which reaches that run and what it may read, and none of the workspace's credentials.

Example (what the node host does)::

    backend = open_node_backend(location, info, node_dir)
    supervisor_for(backend, run_id, node_dir, layout, node_dir / "result.json", None).run()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from modelyard.backend.base import Backend
from modelyard.backend.remote.backend import RemoteBackend
from modelyard.backend.workspace_folder import WorkspaceFile, open_backend, read_workspace_file
from modelyard.errors import ConfigError, NotFoundError
from modelyard.runner.launchers import NodeLayout
from modelyard.runner.supervisor import NodeRole, Supervisor


class ServedWorkspace(BaseModel):
    """What the nodes of a server's cluster get for a run instead of ``workspace.json``."""

    model_config = ConfigDict(extra="forbid")

    server: str  # the server's public URL
    workspace: str  # the workspace's name there
    token: str  # the run's token (AccountStore.create_run_token)


def open_node_backend(
    location: Path, info: WorkspaceFile | ServedWorkspace, node_dir: Path
) -> Backend:
    """The workspace's backend from this node: the server's, with the run's token, for a
    server's workspace; else through its folder when this node has it, else through its
    database and object store (a PostgreSQL + S3 workspace)."""
    if isinstance(info, ServedWorkspace):
        return RemoteBackend(info.server, info.workspace, info.token)  # type: ignore[abstract]
    try:
        here = read_workspace_file(location)
    except NotFoundError:
        here = None
    if here is not None and here.id == info.id:
        return open_backend(location, here)
    if not info.reachable_without_folder:
        raise ConfigError(
            f"this node cannot reach workspace {info.name!r}: its folder {location} is not "
            "on this node, and an embedded workspace lives in its folder; run clusters on "
            "other machines with a PostgreSQL + S3 workspace (Workspace.create(..., "
            "database_url=..., storage_url=...))"
        )
    return open_backend(node_dir, info)


def supervisor_for(
    backend: Backend,
    run_id: str,
    node_dir: Path,
    layout: dict[str, Any],
    result_file: Path,
    rsh_agent: list[str] | None,
) -> Supervisor:
    """The supervisor of this node's part of ``run_id``: ``layout`` is the nodes' layout
    (``NodeLayout.to_dict()``); the lease is the admission's, so this one holds none."""
    role = NodeRole(
        layout=NodeLayout.from_dict(layout), result_file=result_file, rsh_agent=rsh_agent
    )
    return Supervisor(backend, run_id, node_dir, None, 0.0, node=role)
