"""``ComputeTarget``: a named place where a workspace's runs execute.

``local`` (processes on this machine) always exists; clusters (``AmlCompute``, on Ray) are
created with :meth:`ComputeTarget.create` and recorded in the workspace. Looking one up by name
returns the object of its type, as v1 does, so the v1 pattern works unchanged::

    try:
        target = ComputeTarget(workspace=ws, name="cpucluster")      # an AmlCompute
    except ComputeTargetException:
        config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=4)
        target = ComputeTarget.create(ws, "cpucluster", config)
        target.wait_for_completion(show_output=True)
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, ClassVar

from modelyard.backend.base import every_item
from modelyard.compute.base import Compute
from modelyard.compute.local import LocalCompute, LocalFromScript, LocalOnServer
from modelyard.names import check_name
from modelyard.runner.local_compute import LOCAL

if TYPE_CHECKING:
    from modelyard.backend.records import ComputeRecord
    from modelyard.workspace import Workspace


class ComputeTarget:
    """A compute target of a workspace: ``ComputeTarget(ws, "local")`` or a cluster's name
    (ComputeTargetException when the workspace has none of that name)."""

    type = "local"
    # The compute types by their recorded name ("AmlCompute"): each subclass registers itself.
    _types: ClassVar[dict[str, builtins.type[ComputeTarget]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        ComputeTarget._types[cls.type] = cls

    def __new__(cls, workspace: Workspace, name: str) -> ComputeTarget:
        check_name("name", name)
        if cls is not ComputeTarget or name == LOCAL:
            return super().__new__(cls)
        record = workspace._backend.get_compute(name)  # ComputeTargetException: none
        return super().__new__(cls._types[record.compute_type])

    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = name
        self._compute: Compute
        if workspace.server is not None:
            self._compute = LocalOnServer()
        elif workspace._script_run_id is not None:
            self._compute = LocalFromScript(workspace.folder, workspace.name)
        else:
            self._compute = LocalCompute(workspace.folder, workspace.name)

    @staticmethod
    def create(workspace: Workspace, name: str, provisioning_configuration: Any) -> Any:
        """Create a cluster compute target from ``AmlCompute.provisioning_configuration(...)``;
        returns at once (``wait_for_completion`` follows the provisioning)."""
        return ComputeTarget._types["AmlCompute"]._create(  # type: ignore[attr-defined]
            workspace, name, provisioning_configuration
        )

    @staticmethod
    def list(workspace: Workspace) -> list[ComputeTarget]:
        """Every compute target of the workspace, ``local`` first."""
        targets: list[ComputeTarget] = [ComputeTarget(workspace, LOCAL)]
        for record in _every_compute(workspace):
            kind = ComputeTarget._types[record.compute_type]
            targets.append(kind._from_record(workspace, record))  # type: ignore[attr-defined]
        return targets

    @property
    def max_concurrent_runs(self) -> int:
        """How many runs execute at once here (MODELYARD_LOCAL_MAX_RUNS, default: cores);
        the rest wait in Queued, first in, first out."""
        return self._compute.max_concurrent_runs()

    def get_status(self) -> Any:
        return {"name": self.name, "type": self.type, "state": "Succeeded"}

    def serialize(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "provisioningState": "Succeeded"}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(workspace={self.workspace.name!r}, name={self.name!r})"


def _every_compute(workspace: Workspace) -> list[ComputeRecord]:
    backend = workspace._backend
    return list(every_item(lambda limit, after: backend.list_computes(limit=limit, after=after)))
