"""``AmlCompute``: a cluster compute target, on Ray, with v1's API.

``provider="local"`` (the default) is a Ray cluster on this machine whose autoscaler starts and
stops worker nodes as local processes, each with the VM size's CPUs and GPUs, between
``min_nodes`` and ``max_nodes``; ``address=`` attaches an existing Ray cluster. Runs submitted
to it wait Queued, then Provisioning while the cluster scales to hold them, and run on whole
nodes (``compute/ray/admission.py``). On a server's workspace the server runs its clusters
on its own machine: this side records them, asks for their deletion and reads their state.

Example (the v1 notebooks' block, imports changed)::

    try:
        compute_target = ComputeTarget(workspace=ws, name="gpucluster")
    except ComputeTargetException:
        config = AmlCompute.provisioning_configuration(vm_size="STANDARD_NC6", max_nodes=4)
        compute_target = ComputeTarget.create(ws, "gpucluster", config)
        compute_target.wait_for_completion(show_output=True, timeout_in_minutes=20)
    compute_target.get_status().serialize()["currentNodeCount"]     # 0
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.backend.records import ComputeRecord, iso_utc
from modelyard.compute.ray import provisioning as _provisioning
from modelyard.compute.ray import targets
from modelyard.compute.ray.provisioning import ProvisioningConfiguration
from modelyard.compute.ray.vm_sizes import supported_vm_sizes
from modelyard.compute.target import ComputeTarget
from modelyard.errors import ComputeTargetException, ValidationError
from modelyard.names import check_name

if TYPE_CHECKING:
    from modelyard.workspace import Workspace

POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class AmlComputeNodeStateCounts:
    """How many of the cluster's nodes are in each state."""

    idle_node_count: int = 0
    running_node_count: int = 0
    preparing_node_count: int = 0
    leaving_node_count: int = 0
    preempted_node_count: int = 0
    unusable_node_count: int = 0


@dataclass(frozen=True)
class AmlComputeStatus:
    """A cluster's state as v1's ``AmlCompute.get_status()`` gives it."""

    provisioning_state: str
    allocation_state: str  # "Steady", or "Resizing" while nodes come or go
    current_node_count: int
    target_node_count: int
    node_state_counts: AmlComputeNodeStateCounts
    vm_size: str
    vm_priority: str
    scale_settings: dict[str, Any]
    creation_time: str
    modified_time: str
    errors: list[dict[str, Any]] = field(default_factory=list)

    def serialize(self) -> dict[str, Any]:
        """The status as v1's JSON (camelCase keys)."""
        counts = self.node_state_counts
        return {
            "currentNodeCount": self.current_node_count,
            "targetNodeCount": self.target_node_count,
            "nodeStateCounts": {
                "idleNodeCount": counts.idle_node_count,
                "runningNodeCount": counts.running_node_count,
                "preparingNodeCount": counts.preparing_node_count,
                "unusableNodeCount": counts.unusable_node_count,
                "leavingNodeCount": counts.leaving_node_count,
                "preemptedNodeCount": counts.preempted_node_count,
            },
            "allocationState": self.allocation_state,
            "allocationStateTransitionTime": self.modified_time,
            "errors": self.errors or None,
            "creationTime": self.creation_time,
            "modifiedTime": self.modified_time,
            "provisioningState": self.provisioning_state,
            "provisioningStateTransitionTime": self.modified_time,
            "scaleSettings": self.scale_settings,
            "vmPriority": self.vm_priority,
            "vmSize": self.vm_size,
        }


class AmlCompute(ComputeTarget):
    """A cluster compute target (see the module docstring)."""

    type = targets.AML_COMPUTE
    _record: ComputeRecord

    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = name
        self.refresh_state(workspace._backend.get_compute(name))

    @classmethod
    def _from_record(cls, workspace: Workspace, record: ComputeRecord) -> AmlCompute:
        target = object.__new__(cls)
        target.workspace = workspace
        target.name = record.name
        target.refresh_state(record)
        return target

    @classmethod
    def _create(
        cls, workspace: Workspace, name: str, config: ProvisioningConfiguration
    ) -> AmlCompute:
        check_name("name", name)
        if not isinstance(config, ProvisioningConfiguration):
            raise ValidationError(
                "provisioning_configuration",
                "give what AmlCompute.provisioning_configuration(...) returns",
            )
        backend = workspace._backend
        record = backend.create_compute(name, cls.type, config.to_dict())
        if record.state in (targets.CREATING_STATE, targets.FAILED_STATE):
            if record.state == targets.FAILED_STATE:
                backend.update_compute(name, state=targets.CREATING_STATE, errors=[])
            # A server's workspace: the server provisions it, once either call is recorded.
            if workspace.server is None:
                targets.start_provisioning(workspace.folder, workspace.name, name, config)
        return cls._from_record(workspace, backend.get_compute(name))

    # -- v1's static helpers -------------------------------------------------------------

    provisioning_configuration = staticmethod(_provisioning.provisioning_configuration)

    @staticmethod
    def supported_vmsizes(
        workspace: Workspace, location: str | None = None
    ) -> list[dict[str, Any]]:
        """The VM sizes a cluster may have (v1's list of dicts: name, vCPUs, gpus, memoryGB,
        maxResourceVolumeMB), or a custom ``"cpu=2,memory=7GB,gpu=0"``."""
        return [size.as_v1_dict() for size in supported_vm_sizes()]

    # -- state ---------------------------------------------------------------------------

    def refresh_state(self, record: ComputeRecord | None = None) -> None:
        """Read the cluster's record again."""
        self._record = record or self.workspace._backend.get_compute(self.name)
        self._config = ProvisioningConfiguration.from_dict(self._record.provisioning)
        self._compute = targets.RayCompute(
            _location(self.workspace), self.workspace.name, self._record, _embedded(self.workspace)
        )

    @property
    def provisioning_state(self) -> str:
        return self._record.state

    @property
    def provisioning_errors(self) -> list[dict[str, Any]]:
        return list(self._record.errors)

    @property
    def vm_size(self) -> str:
        return self._config.vm_size

    @property
    def vm_priority(self) -> str:
        return self._config.vm_priority

    @property
    def scale_settings(self) -> dict[str, Any]:
        return {
            "minNodeCount": self._config.min_nodes,
            "maxNodeCount": self._config.max_nodes,
            "nodeIdleTimeBeforeScaleDown": f"PT{self._config.idle_seconds_before_scaledown}S",
        }

    @property
    def address(self) -> str | None:
        """The Ray cluster's address (its GCS, host:port, or ray://...)."""
        return self._record.address

    @property
    def status(self) -> AmlComputeStatus:
        return self.get_status()

    def get_status(self) -> AmlComputeStatus:
        """The cluster's state now: provisioning state and node counts from Ray."""
        self.refresh_state()
        counts = targets.NodeCounts.of(self._record)
        return AmlComputeStatus(
            provisioning_state=self._record.state,
            allocation_state="Steady" if counts.current == counts.target else "Resizing",
            current_node_count=counts.current,
            target_node_count=counts.target,
            node_state_counts=AmlComputeNodeStateCounts(
                idle_node_count=counts.idle,
                running_node_count=counts.running,
                preparing_node_count=counts.preparing,
            ),
            vm_size=self._config.vm_size,
            vm_priority=self._config.vm_priority,
            scale_settings=self.scale_settings,
            creation_time=iso_utc(self._record.created_at) or "",
            modified_time=iso_utc(self._record.updated_at) or "",
            errors=list(self._record.errors),
        )

    def wait_for_completion(
        self,
        show_output: bool = False,
        min_node_count: int | None = None,
        timeout_in_minutes: float = 25,
        is_delete_operation: bool = False,
    ) -> None:
        """Wait until provisioning ends (and ``min_node_count`` nodes are up, when given),
        printing its progress with ``show_output``. ComputeTargetException when it failed
        or the time ran out."""
        deadline = time.monotonic() + timeout_in_minutes * 60
        shown = ""
        while True:
            self.refresh_state()
            state = self._record.state
            counts = targets.NodeCounts.of(self._record)
            line = state
            if state == targets.SUCCEEDED_STATE and min_node_count:
                line = f"{state}: {counts.current} of {min_node_count} nodes"
            if show_output and line != shown:
                print(line, flush=True)
                shown = line
            if state == targets.FAILED_STATE:
                errors = "; ".join(error.get("message", "") for error in self._record.errors)
                raise ComputeTargetException(
                    f"compute target {self.name!r} failed to provision: {errors}\n"
                    f"{self._provision_log()}"
                )
            if state == targets.SUCCEEDED_STATE and counts.current >= (min_node_count or 0):
                if show_output:
                    print("AmlCompute wait for completion finished", flush=True)
                    if min_node_count:
                        print("Minimum number of nodes requested have been provisioned", flush=True)
                return
            if time.monotonic() > deadline:
                location = _location(self.workspace)
                where = (
                    targets.cluster_folder(location, self.name)
                    if location is not None
                    else self._provision_log()
                )
                raise ComputeTargetException(
                    f"compute target {self.name!r} is still {state} after "
                    f"{timeout_in_minutes:g} minutes; see {where}"
                )
            time.sleep(POLL_INTERVAL_S)

    def _provision_log(self) -> str:
        """The end of the provisioning's log, or where it is on the server's machine."""
        location = _location(self.workspace)
        if location is None:
            return (
                f"the provisioning log is on the server's machine: compute/clusters/{self.name}/"
                f"{targets.PROVISION_LOG} in workspace {self.workspace.name!r}'s folder there"
            )
        return targets.provision_log_tail(location, self.name)

    def delete(self) -> None:
        """Stop the cluster (a local one's every Ray process; an attached one is left running,
        only modelyard's part of it stops) and remove the compute target. Its active runs
        end Failed. A server's workspace: the server does it, and this waits until it is
        done."""
        location = _location(self.workspace)
        if location is not None:
            targets.delete_cluster(location, self.workspace._backend, self._record)
            return
        backend = self.workspace._backend
        if backend.find_compute(self.name) is None:
            return
        backend.update_compute(self.name, state=targets.DELETING_STATE)
        # The server waits up to DELETE_TIMEOUT_S for the runs to stop, then stops the rest.
        deadline = time.monotonic() + targets.DELETE_TIMEOUT_S + 60
        while backend.find_compute(self.name) is not None:
            if time.monotonic() > deadline:
                raise ComputeTargetException(
                    f"compute target {self.name!r} is still being deleted on the server "
                    f"{self.workspace.server}; its record goes once its cluster has stopped"
                )
            time.sleep(POLL_INTERVAL_S)

    def serialize(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "provisioningState": self._record.state,
            "provisioningErrors": self._record.errors or None,
            "properties": {
                "vmSize": self._config.vm_size,
                "vmPriority": self._config.vm_priority,
                "scaleSettings": self.scale_settings,
                "provider": self._config.provider,
                "address": self._record.address,
            },
        }


def _location(workspace: Workspace) -> Path | None:
    """The workspace folder whose machine runs the clusters: None for a server's workspace,
    whose clusters the server runs on its own machine."""
    return None if workspace.server is not None else workspace.folder


def _embedded(workspace: Workspace) -> bool:
    """Whether the workspace lives in its folder (SQLite, local files): only nodes of this
    machine reach it."""
    return (workspace._database or "").startswith("sqlite")


__all__ = ["AmlCompute", "AmlComputeNodeStateCounts", "AmlComputeStatus"]
