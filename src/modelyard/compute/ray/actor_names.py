"""The names modelyard's Ray actors go by, in the ``modelyard`` namespace of a cluster.

Named, so a process that did not create an actor finds it: the provisioning finds the running
admission of a compute target instead of starting a second, and mpirun's remote shell finds a
run's host on a node.

Example::

    ray.get_actor(host_name(run_id, 1), namespace=NAMESPACE)
"""

from __future__ import annotations

NAMESPACE = "modelyard"


def admission_name(workspace_id: str, compute_name: str) -> str:
    """The admission actor of compute target ``compute_name``: one per target."""
    return f"admission-{workspace_id}-{compute_name}"


def host_name(run_id: str, rank: int) -> str:
    """The run's host on node ``rank``."""
    return f"node-{run_id}-{rank}"
