"""How the nodes of a server's cluster reach a run's workspace: the server's URL and the
run's own token, never the workspace's credentials.

When a run of a server's workspace is queued on a cluster the server runs on its machine, the
server mints the run's token and writes ``<cluster folder>/run_access/<run id>.json`` (0600):
``{"server": public URL, "workspace": name, "token": ...}``. The cluster's admission, on the
server's machine, reads it when it places the run, and hands it to the run's node hosts
instead of the workspace's ``workspace.json`` (which holds its database URL and storage
keys); their supervisors report to the server with it (``runner/cluster_node.py``). When the
run ends, the server revokes the token and removes the file.

Example::

    write_run_access(folder, "cpucluster", run_id, ServedWorkspace(server=url, ...))
    read_run_access(folder, "cpucluster", run_id)    # ServedWorkspace(...), or None
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError as PydanticValidationError

from modelyard.compute.ray.targets import cluster_folder
from modelyard.names import check_name
from modelyard.runner.cluster_node import ServedWorkspace
from modelyard.store.private import make_private_folder, write_private_file

ACCESS_DIR = "run_access"


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
