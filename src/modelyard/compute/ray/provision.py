"""Bring a cluster compute target up: ``python -m modelyard.compute.ray.provision <workspace
folder> <workspace name> <compute name> [--served]``.

``ComputeTarget.create`` records the compute target (state Creating) and starts this in a
process of its own, so the call returns at once, as v1's does, and ``wait_for_completion``
follows the state. It

- for ``provider="local"``: starts the cluster's Ray head on this machine, with Ray's
  autoscaler (``cluster.py``), unless it runs already;
- for an attached cluster (``address=``): connects to it;
- starts the compute target's admission actor on the head (``admission.py``), which from then
  on admits the target's runs (``--served``: a server's workspace, whose local cluster's
  nodes reach it through the server with each run's token, ``run_access.py``);
- records the state Succeeded with the cluster's address, or Failed with what went wrong
  (neither when the compute target was asked to be deleted meanwhile).

Its output goes to ``provision.log`` in the cluster's folder
(``<workspace>/compute/clusters/<name>``).

Example::

    python -m modelyard.compute.ray.provision .modelyard/demo demo gpucluster
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Any

import ray

from modelyard.backend.base import Backend
from modelyard.backend.workspace_folder import open_backend, read_workspace_file
from modelyard.compute.ray.actor_names import NAMESPACE
from modelyard.compute.ray.admission import start_admission
from modelyard.compute.ray.cluster import (
    ClusterState,
    cluster_running,
    start_local_cluster,
    stop_local_cluster,
)
from modelyard.compute.ray.provisioning import ProvisioningConfiguration, local_autoscaler_config
from modelyard.compute.ray.run_access import CLUSTER_ACCESS_FILE, read_cluster_access
from modelyard.compute.ray.targets import (
    DELETED_STATE,
    DELETING_STATE,
    FAILED_STATE,
    SUCCEEDED_STATE,
    bundle_for,
    cluster_folder,
)
from modelyard.errors import ConfigError


def provision(location: Path, workspace_name: str, name: str, *, served: bool = False) -> None:
    info = read_workspace_file(location, workspace_name)
    backend = open_backend(location, info)
    record = backend.get_compute(name)
    config = ProvisioningConfiguration.from_dict(record.provisioning)
    folder = cluster_folder(location, name)
    started: ClusterState | None = None
    try:
        nodes_root = None
        if config.address is None:
            state = ClusterState.load(folder)
            if state is None or not cluster_running(state):
                print(f"starting the Ray head of {name!r}", flush=True)
                state = started = start_local_cluster(
                    folder, local_autoscaler_config(config, name, "")
                )
            address = state.address
            nodes_root = str(folder / "nodes")
        else:
            address = config.address
        # The token is in this process's environment (targets.start_provisioning).
        ray.init(address=address, namespace=NAMESPACE, logging_level="warning", log_to_driver=False)
        start_admission(
            str(location.resolve()),
            _admission_access(location, name) if served else info.model_dump(),
            name,
            bundle_for(config),
            nodes_root,
            warm_hosts=config.min_nodes,
            served=served,
        )
        ray.shutdown()
        if _being_deleted(backend, name):
            print(f"{name!r} is up, and being deleted: its admission stops it", flush=True)
            return
        backend.update_compute(name, state=SUCCEEDED_STATE, address=address, errors=[])
        print(f"{name!r} is up at {address}", flush=True)
    except Exception as error:
        traceback.print_exc()
        if started is not None:  # a cluster without its admission would only sit there
            stop_local_cluster(started)
        if _being_deleted(backend, name):
            raise SystemExit(1) from None
        backend.update_compute(
            name,
            state=FAILED_STATE,
            errors=[{"code": "ProvisioningFailed", "message": str(error)}],
        )
        raise SystemExit(1) from None


def _admission_access(location: Path, name: str) -> dict[str, Any]:
    """What a server's cluster's admission reaches the workspace with: the server's URL and
    the compute target's token, which the server wrote before it started this process."""
    access = read_cluster_access(location, name)
    if access is None:
        raise ConfigError(
            f"the server wrote no access for cluster {name!r} "
            f"({cluster_folder(location, name) / CLUSTER_ACCESS_FILE}); see the server's log"
        )
    return access.model_dump()


def _being_deleted(backend: Backend, name: str) -> bool:
    """Whether the compute target was asked to be deleted while it came up: its state is
    then the deletion's (the admission, which sees Deleting, records Deleted), not this
    process's outcome."""
    record = backend.find_compute(name)
    return record is None or record.state in (DELETING_STATE, DELETED_STATE)


if __name__ == "__main__":
    provision(Path(sys.argv[1]), sys.argv[2], sys.argv[3], served="--served" in sys.argv[4:])
