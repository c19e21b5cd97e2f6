"""What the processes of one run may do through their channel: their own run, and no more.

The supervisor serves the Backend contract to its run's processes (``channel.py``), but a
script is untrusted code: it must not complete another run, retag it, delete a model or make
the supervisor read a file for it. :class:`RunScope` decides each call before it reaches the
backend:

==============================  ==========================================================
calls                           allowed for
==============================  ==========================================================
run calls (metrics, files,      the run itself and the runs below it (its children, theirs);
tags, properties)               reads also for the runs above it (``run.parent``)
``create_run``                  children of those runs, in the run's experiment
``list_runs``                   the children of those runs (``run.get_children()``)
``update_run_status``           children; the run's own final state is recorded as a wish
                                that the supervisor applies after uploading ``./outputs``
``ensure_experiment``           the run's experiment
datastores (read)               the datastores the run was given as data references,
                                and those its dataset inputs read
datastore files (read, write)   of those same datastores (``list_``, ``open_`` and
                                ``upload_datastore_file``: a script given a datastore may
                                read and add files, as v1's ``ds.upload`` in a script did);
                                the supervisor reads and writes them with the datastore's
                                credentials, which never reach the script
models                          read all; register (from the run's files or uploaded)
environments (read)             all
datasets (read)                 all (``Dataset.get_by_name`` in a script); registering
                                one is refused
``get_workspace``               always (its name and id)
snapshots                       all (blobs and manifests: what ``exp.submit`` of a child run
                                needs); they are content-addressed and the backend checks
                                each digest, so a script cannot change anyone's snapshot
compute targets                 refused, reads too: a provisioning configuration keeps
                                every v1 setting it was given, ``admin_user_password``
                                included
everything else                 refused (listing experiments and queues, deleting or
                                retagging models, registering datastores, environments
                                and datasets, claiming runs and their leases)
==============================  ==========================================================

A file the script names by path must be a regular file inside the run's working folder:
the supervisor never reads a path outside it on a script's behalf (the client sends the
bytes of any other file itself).

Example::

    scope = RunScope(backend, "mnist_1_ab12", "mnist", Path("wd"), datastores={"raw"})
    scope.authorize("set_run_tags", {"run_id": "other_run", "tags": {}})   # PermissionDeniedError
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from modelyard.backend.base import Backend
from modelyard.backend.records import TERMINAL_STATES, DatastoreRecord, RunRecord
from modelyard.errors import NotFoundError, PermissionDeniedError

# Calls whose ``run_id`` must be the run, or a run below it; the second set also takes the
# runs above it, for reading.
_RUN_WRITES = {
    "set_run_tags",
    "add_run_properties",
    "log_metrics",
    "upload_run_file",
    "append_run_file",
}
_RUN_READS = {
    "get_run",
    "get_run_details",
    "get_run_status_history",
    "list_metrics",
    "get_metric_series",
    "read_run_file",
    "list_run_files",
    "open_run_file",
}
# The contract's calls on one run, which name it by their ``run_id``: a run's token on a
# server is held to its own run for these (``server/authz.py``).
RUN_CALLS = frozenset(_RUN_WRITES | _RUN_READS)
_FREE_READS = {
    "get_workspace",
    "get_model",
    "list_models",
    "list_model_files",
    "open_model_file",
    "get_environment",
    "list_environments",
    "get_dataset",
    "get_dataset_by_id",
    "list_datasets",
    "upload_model_file",  # staging only: a version exists once create_model is allowed
    # Snapshots are named by the SHA-256 of their bytes, which the backend checks: adding one
    # cannot change another run's, and reading one needs its digest (a manifest's id comes
    # from a run the script may read).
    "missing_snapshot_blobs",
    "upload_snapshot_blob",
    "put_snapshot_manifest",
    "get_snapshot_manifest",
    "open_snapshot_blob",
}
# Calls on the files of a datastore, by its name: allowed for the datastores the run was given.
_DATASTORE_FILES = {"list_datastore_files", "open_datastore_file", "upload_datastore_file"}
# Every call the run's processes may make, for some arguments: the others are refused
# whatever they name (``_REFUSED``, and the calls no rule above mentions).
SCOPED_CALLS = frozenset(
    RUN_CALLS
    | _FREE_READS
    | _DATASTORE_FILES
    | {
        "create_run",
        "list_runs",
        "update_run_status",
        "ensure_experiment",
        "get_datastore",
        "list_datastores",
        "stage_model_from_run",
        "create_model",
    }
)
_REFUSED = {
    "list_experiments": "list the workspace's experiments",
    "list_runs_in_states": "read the compute queue",
    "register_datastore": "register datastores",
    "set_default_datastore": "change the default datastore",
    "update_model_tags": "change the tags of registered models",
    "delete_model": "delete models",
    "register_environment": "register environments",
    "create_dataset": "register datasets",
    "create_compute": "create compute targets",
    "get_compute": "read compute targets",
    "get_compute_node_history": "read compute targets",
    "list_computes": "list compute targets",
    "update_compute": "change compute targets",
    "delete_compute": "delete compute targets",
    "claim_run": "claim runs",
}


class RunScope:
    """The rules of the table above for the run ``run_id`` (see the module docstring)."""

    def __init__(
        self,
        backend: Backend,
        run_id: str,
        experiment_name: str,
        workdir: Path | None,
        datastores: set[str],
    ) -> None:
        self.backend = backend
        self.run_id = run_id
        self.experiment_name = experiment_name
        # None: no path is read on the processes' behalf (a server, which gets files' bytes).
        self.workdir = None if workdir is None else workdir.resolve()
        self.datastores = set(datastores)
        self._below = {run_id}  # the run and the runs known to be below it
        self._lock = threading.Lock()
        # The final state the script asked for its own run (status, error), if it did.
        self.wish: tuple[str, dict[str, Any] | None] | None = None

    # -- deciding --------------------------------------------------------------------------

    def authorize(self, method: str, arguments: dict[str, Any]) -> None:
        """Raise PermissionDeniedError unless the run's processes may make this call."""
        if method in _REFUSED:
            self._deny(_REFUSED[method])
        if method in _RUN_WRITES:
            self._require_below(arguments["run_id"], method)
        elif method in _RUN_READS:
            run_id = arguments["run_id"]
            if not self._is_below(run_id) and not self._is_above(run_id):
                self._deny(f"use run {run_id!r}")
        elif method == "ensure_experiment":
            self._require_experiment(arguments["name"])
        elif method == "create_run":
            self._require_experiment(arguments["experiment_name"])
            parent = arguments.get("parent_id")
            if parent is None:
                self._deny("start runs of its own outside this run (make a child run instead)")
            else:
                self._require_below(parent, method)
        elif method == "list_runs":
            parent = arguments.get("parent_id")
            if parent is None or arguments.get("include_children"):
                self._deny("list the experiment's runs (its own children only)")
            else:
                self._require_experiment(arguments["experiment_name"])
                self._require_below(parent, method)
        elif method == "update_run_status":
            if arguments["run_id"] != self.run_id:
                self._require_below(arguments["run_id"], method)
        elif method == "get_datastore":
            name = arguments.get("name")
            if name is not None and name not in self.datastores:
                self._deny(f"use datastore {name!r} (it was not given to the run)")
        elif method in _DATASTORE_FILES:
            if arguments["name"] not in self.datastores:
                self._deny(f"use datastore {arguments['name']!r} (it was not given to the run)")
        elif method == "stage_model_from_run":
            self._require_below(arguments["run_id"], method)
        elif method == "create_model":
            if arguments.get("run_id") is not None:
                self._require_below(arguments["run_id"], method)
        elif method not in _FREE_READS and method != "list_datastores":
            self._deny(f"call {method!r}")

    def check_source(self, field: str, path: Path) -> Path:
        """``path`` (a file a script names for upload) when it is a regular file inside the
        working folder, links resolved; else PermissionDeniedError."""
        real = Path(os.path.realpath(path))
        if self.workdir is None or not real.is_relative_to(self.workdir) or not real.is_file():
            self._deny(
                f"have the supervisor read {path} ({field}): only regular files inside the "
                "run's working folder are read for it; send the file's bytes instead"
            )
        return real

    # -- what the backend answered ---------------------------------------------------------

    def answer(self, method: str, arguments: dict[str, Any], result: Any) -> Any:
        """Learn from ``result`` (runs made or listed below the run) and trim what the script
        may not see (datastores it was not given)."""
        if method == "create_run" and isinstance(result, RunRecord):
            # create_run returns an existing run of that id as it is: only one that really
            # is a child of an allowed run joins the scope.
            if result.parent_id is None or not self._is_below(result.parent_id):
                self._deny(f"use run {result.id!r}")
            with self._lock:
                self._below.add(result.id)
        elif method == "list_runs":
            with self._lock:
                self._below.update(record.id for record in result)
        elif method == "get_datastore" and isinstance(result, DatastoreRecord):
            if result.name not in self.datastores:
                self._deny(f"use datastore {result.name!r} (it was not given to the run)")
        elif method == "list_datastores":
            result = [record for record in result if record.name in self.datastores]
        return result

    def record_wish(self, arguments: dict[str, Any]) -> RunRecord | None:
        """For the run's own ``update_run_status``: keep a final state as the script's wish
        and return the run as it is (the supervisor ends it after its outputs are uploaded);
        None for calls that go through."""
        if arguments["run_id"] != self.run_id:
            return None
        status = arguments["status"]
        if status in TERMINAL_STATES:
            self.wish = (status, arguments.get("error"))
        return self.backend.get_run(self.run_id)

    # -- helpers ---------------------------------------------------------------------------

    def _deny(self, what: str) -> None:
        raise PermissionDeniedError(
            f"a run's script may not {what}: it reaches its own run {self.run_id!r} only"
        )

    def _require_experiment(self, name: str) -> None:
        if name != self.experiment_name:
            self._deny(f"use experiment {name!r} (its run belongs to {self.experiment_name!r})")

    def _require_below(self, run_id: str, method: str) -> None:
        if not self._is_below(run_id):
            self._deny(f"use run {run_id!r} ({method})")

    def _is_below(self, run_id: str) -> bool:
        """Whether ``run_id`` is the run or below it (walking up its parents once)."""
        with self._lock:
            if run_id in self._below:
                return True
        chain: list[str] = []
        current: str | None = run_id
        while current is not None and len(chain) < 100:
            with self._lock:
                if current in self._below:
                    self._below.update(chain)
                    return True
            chain.append(current)
            try:
                current = self.backend.get_run(current).parent_id
            except NotFoundError:
                return False
        return False

    def _is_above(self, run_id: str) -> bool:
        current: str | None = self.backend.get_run(self.run_id).parent_id
        depth = 0
        while current is not None and depth < 100:
            if current == run_id:
                return True
            current = self.backend.get_run(current).parent_id
            depth += 1
        return False
