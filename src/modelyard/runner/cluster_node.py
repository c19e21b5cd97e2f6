"""A run's supervisor on one node of a cluster.

The cluster's node host (``compute/ray/node.py``) starts it on its node, as ``python -m
modelyard.runner.cluster_node <request file>``, with a request file
(JSON, private to the account): the workspace (its folder and its ``workspace.json``), the run,
the node's working folder, the nodes' layout and where to write this node's outcome. It opens
the workspace's backend itself and runs a :class:`~modelyard.runner.supervisor.Supervisor` for
this node's part of the run (``NodeRole``): the first node records the run's progress and
uploads ``./outputs``; every node prepares its environment, unpacks the snapshot in its own
folder, resolves data references, starts its processes and ships their logs and metrics.

The workspace must be reachable from the node: its folder on this machine (an embedded
workspace, when the cluster runs on the same machine), or its PostgreSQL database and S3
storage (a workspace created with ``database_url`` and ``storage_url``), which any node
reaches with the ``workspace.json`` the request carries.

Example (what the node host runs)::

    python -m modelyard.runner.cluster_node /tmp/modelyard-1000/nodes/n1/runs/<id>/request.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from modelyard.backend.base import Backend
from modelyard.backend.workspace_folder import WorkspaceFile, open_backend, read_workspace_file
from modelyard.errors import ConfigError, NotFoundError
from modelyard.runner.launchers import NodeLayout
from modelyard.runner.supervisor import NodeRole, Supervisor


def open_node_backend(location: Path, info: WorkspaceFile, node_dir: Path) -> Backend:
    """The workspace's backend from this node: through its folder when this node has it,
    else through its database and object store (a PostgreSQL + S3 workspace)."""
    try:
        here = read_workspace_file(location)
    except NotFoundError:
        here = None
    if here is not None and here.id == info.id:
        return open_backend(location, here)
    if info.database_url is None or info.storage_url is None:
        raise ConfigError(
            f"this node cannot reach workspace {info.name!r}: its folder {location} is not "
            "on this node, and an embedded workspace lives in its folder; run clusters on "
            "other machines with a PostgreSQL + S3 workspace (Workspace.create(..., "
            "database_url=..., storage_url=...))"
        )
    return open_backend(node_dir, info)


def run_node(request: dict[str, Any]) -> int:
    """Supervise this node's part of the run the request names; returns the exit code."""
    node_dir = Path(request["node_dir"])
    info = WorkspaceFile.model_validate(request["workspace"])
    backend = open_node_backend(Path(request["location"]), info, node_dir)
    role = NodeRole(
        layout=NodeLayout.from_dict(request["layout"]),
        result_file=Path(request["result_file"]),
        rsh_agent=request.get("rsh_agent"),
    )
    supervisor = Supervisor(backend, request["run_id"], node_dir, None, 0.0, node=role)
    return supervisor.run()


def main(argv: list[str]) -> None:
    request = json.loads(Path(argv[0]).read_text())
    sys.exit(run_node(request))


if __name__ == "__main__":
    main(sys.argv[1:])
