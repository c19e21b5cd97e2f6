"""What a tuning run stores for its driver: the plan, and the names of its files and properties.

``HyperDriveConfig`` writes the plan with the tuning run (``system_logs/hyperdrive_config.json``)
at submission; the driver reads it whenever it starts, the first time or after a restart, and
writes nothing back into it: what it has done is in the children themselves (their ids, their
``hyperparameters`` property, their states and metrics).

Example::

    plan = TuningPlan.from_json(backend.read_run_file(run_id, CONFIG_FILE))
    plan.child_id(run_id, 3)                        # 'HD_1f2e..._3'
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.run_details import HYPERPARAMETERS_PROPERTY

CONFIG_FILE = "system_logs/hyperdrive_config.json"
# The driver's own log: what it started, stopped and decided, and why.
LOG_FILE = "system_logs/hyperdrive.txt"
# The tuning run's primary metric, as JSON {"name": ..., "goal": ...} (v1's property).
PRIMARY_METRIC_PROPERTY = "primary_metric_config"
# Set on the tuning run when it ends: its best child and that child's figure.
BEST_CHILD_PROPERTY = "best_child_run_id"
BEST_METRIC_PROPERTY = "best_metric"
# On a child that runs again a configuration of an earlier tuning run (resume_child_runs).
RESUMED_FROM_PROPERTY = "modelyard.hyperdrive.resumed_from"


@dataclass
class TuningPlan:
    """Everything the driver needs, as the submission checked it.

    ``total`` is how many children to make at most (None: until ``max_duration_s`` or a
    cancel); ``child_spec`` is the children's job (``JobSpec.to_json()``, its snapshot
    taken) before their sampled arguments are added; ``child_properties`` are the
    properties every child gets (its compute target, snapshot, submitter ...).
    """

    sampling: dict[str, Any]
    policy: dict[str, Any]
    primary_metric_name: str
    primary_metric_goal: str
    total: int | None
    concurrent: int
    max_duration_s: float
    child_spec: str
    child_properties: dict[str, str]
    child_target: str
    resume_from: list[str] = field(default_factory=list)
    resume_child_runs: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        # Keys in their order: a sampler draws its parameters in the space's order, and the
        # children get their arguments in it.
        return json.dumps(asdict(self), indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes) -> TuningPlan:
        return cls(**json.loads(data))

    @staticmethod
    def child_id(run_id: str, index: int) -> str:
        """The id of the tuning run's ``index``-th child (0 first), as v1 names them: a
        driver restarted from the store makes the same child again, never a second one."""
        return f"{run_id}_{index}"

    @staticmethod
    def child_index(run_id: str, child_id: str) -> int | None:
        """The index in ``child_id``, or None when it is not one of this run's children."""
        prefix = f"{run_id}_"
        rest = child_id[len(prefix) :]
        if not child_id.startswith(prefix) or not rest.isdigit():
            return None
        return int(rest)


__all__ = [
    "BEST_CHILD_PROPERTY",
    "BEST_METRIC_PROPERTY",
    "CONFIG_FILE",
    "HYPERPARAMETERS_PROPERTY",
    "LOG_FILE",
    "PRIMARY_METRIC_PROPERTY",
    "RESUMED_FROM_PROPERTY",
    "TuningPlan",
]
