"""What a cluster's token may do on a server: admit the runs of its own compute target.

A cluster of a server's workspace is admitted by an actor on the cluster's head
(``compute/ray/admission.py``), which may be on another machine (a cluster attached by
address). It gets no workspace credentials: the server mints a token for the compute target
(``AccountStore.create_cluster_token``), and the admission makes its calls with it over HTTP.
Each call is held here to that compute target's runs, which are the runs whose
``COMPUTE_PROPERTY`` names it:

- :data:`CLUSTER_TOKEN_CALLS`: listing the queue (``properties`` must name the compute
  target), claiming a run and renewing its lease, reading its job file, appending to its
  admission log, recording how it ended (a final state), reading its compute target's record
  and recording its nodes (or that it was deleted), and failing runs whose lease expired;
- the run access route (``GET .../computes/{compute}/runs/{run_id}/access``): the server's URL
  and the run's own token, which the admission hands the run's nodes (``run_access.py``).

Nothing else: no experiment, datastore, model or other compute target of the workspace.

Example::

    scope = ClusterTokenScope()
    scope.authorize(backend, principal, "claim_run", {"run_id": "other-target-run"})
    # PermissionDeniedError: this token admits the runs of 'cpucluster' ...
"""

from __future__ import annotations

import threading
from typing import Any

from modelyard.backend.local import LocalBackend
from modelyard.backend.records import TERMINAL_STATES
from modelyard.compute.ray.targets import ADMISSION_LOG, DELETED_STATE
from modelyard.errors import NotFoundError, PermissionDeniedError
from modelyard.runner.job import JOB_FILE
from modelyard.runner.local_compute import COMPUTE_PROPERTY
from modelyard.server.account_records import Principal

# Calls on one run of the compute target (``run_id``), and what else each is held to.
_RUN_CALLS = frozenset(
    {"claim_run", "renew_lease", "open_run_file", "append_run_file", "update_run_status"}
)
_COMPUTE_CALLS = frozenset({"get_compute", "update_compute"})
CLUSTER_TOKEN_CALLS = _RUN_CALLS | _COMPUTE_CALLS | {"list_runs_in_states", "expire_leases"}
# A run's compute target never changes: what was read is kept (a bounded number).
_KEPT_RUNS = 4096


class ClusterTokenScope:
    """Holds a cluster's token to its compute target's runs (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._compute_of: dict[tuple[str, str], str | None] = {}

    def authorize(
        self, backend: LocalBackend, principal: Principal, call: str, arguments: dict[str, Any]
    ) -> None:
        """PermissionDeniedError unless ``principal``'s cluster may make ``call`` with
        ``arguments`` (the call is one of :data:`CLUSTER_TOKEN_CALLS`, checked before)."""
        compute = principal.compute
        assert compute is not None
        if call == "list_runs_in_states":
            asked = (arguments.get("properties") or {}).get(COMPUTE_PROPERTY)
            if asked != compute:
                raise self._refusal(compute, f"list runs other than {compute!r}'s")
        elif call in _COMPUTE_CALLS:
            if arguments.get("name") != compute:
                raise self._refusal(compute, f"{call} for {arguments.get('name')!r}")
            changes = {k for k, v in arguments.items() if k != "name" and v is not None}
            if call == "update_compute" and (
                not changes <= {"nodes", "state"}
                or arguments.get("state") not in (None, DELETED_STATE)
            ):
                raise self._refusal(compute, "change its compute target but for its nodes")
        elif call in _RUN_CALLS:
            run_id = arguments.get("run_id")
            if not isinstance(run_id, str) or self.compute_of(backend, run_id) != compute:
                raise self._refusal(compute, f"{call} for run {run_id!r}")
            self._check_run_call(compute, call, arguments)

    def compute_of(self, backend: LocalBackend, run_id: str) -> str | None:
        """The compute target run ``run_id`` was submitted to (None: none, or no such run)."""
        key = (backend.workspace_id, run_id)
        with self._lock:
            if key in self._compute_of:
                return self._compute_of[key]
        try:
            found = backend.get_run_details(run_id).properties.get(COMPUTE_PROPERTY)
        except NotFoundError:
            return None  # not kept: a run of that id may be made later
        with self._lock:
            self._compute_of[key] = found
            while len(self._compute_of) > _KEPT_RUNS:
                del self._compute_of[next(iter(self._compute_of))]
        return found

    def _check_run_call(self, compute: str, call: str, arguments: dict[str, Any]) -> None:
        name = arguments.get("name")
        if call == "open_run_file" and name != JOB_FILE:
            raise self._refusal(compute, f"read a run's {name!r} (only its {JOB_FILE})")
        if call == "append_run_file" and name != ADMISSION_LOG:
            raise self._refusal(compute, f"write a run's {name!r} (only its {ADMISSION_LOG})")
        if call == "update_run_status" and arguments.get("status") not in TERMINAL_STATES:
            raise self._refusal(
                compute, f"set a run {arguments.get('status')!r} (only how it ended)"
            )

    @staticmethod
    def _refusal(compute: str, what: str) -> PermissionDeniedError:
        return PermissionDeniedError(
            f"this token admits the runs of compute target {compute!r}: it may not {what}"
        )


__all__ = ["CLUSTER_TOKEN_CALLS", "ClusterTokenScope"]
