"""The names modelyard's Ray actors go by, in the ``modelyard`` namespace of a cluster.

Named, so a process that did not create an actor finds it: the provisioning finds the running
admission of a compute target instead of starting a second, and mpirun's remote shell finds
the host of a run's node.

Example::

    ray.get_actor(host_name(workspace_id, "gpucluster", node_id), namespace=NAMESPACE)
"""

from __future__ import annotations

NAMESPACE = "modelyard"


def admission_name(workspace_id: str, compute_name: str) -> str:
    """The admission actor of compute target ``compute_name``: one per target."""
    return f"admission-{workspace_id}-{compute_name}"


def host_name(workspace_id: str, compute_name: str, node_id: str) -> str:
    """The host of compute target ``compute_name`` on node ``node_id`` (``node.py``)."""
    return f"host-{workspace_id}-{compute_name}-{node_id}"
