"""The one contract between the SDK objects and whatever stores a workspace.

``LocalBackend`` implements it on a database and a file store in this process; a remote
backend will implement it as HTTP calls to a server that wraps a ``LocalBackend``. The SDK
never learns which one it has. The contract is shaped for a network from the start:

- **Batches**: metric points travel many to a call (``log_metrics``), and one call asks which
  of many snapshot blobs a store lacks (``missing_snapshot_blobs``).
- **Streams**: files go up and down as readable streams, never whole in memory.
- **Idempotent retries**: every call that creates something takes a client-chosen key
  (``run_id``, ``batch_id``, ``upload_id``); repeating a call after a timeout returns the first
  result instead of making a second run, point or version. Callers may retry any method.
- **Errors**: a missing object raises ``NotFoundError`` naming it; a state that forbids the
  call raises ``ConflictError``; bad names or paths raise ``ValidationError`` before anything
  is written. Backends translate their vendor errors into ``modelyard.errors``.
- **Idempotent deletes**: a retried delete is not an error; deleting what is already gone
  returns quietly, so a client that lost the first reply may simply call again (today's one
  deletes are ``delete_model`` and ``delete_compute``; every delete added keeps the rule).
- **Pages**: the listing calls (``list_experiments``, ``list_runs``, ``list_run_files``,
  ``list_datastores``, ``list_datastore_files``, ``list_models``, ``list_model_files``,
  ``list_environments``, ``list_datasets``, ``list_computes``) return a
  list, in an order each documents that is total (ties broken by a unique key), and take
  ``limit`` (the most items to return; None for all) and
  ``after`` (a cursor: :func:`page_key` of the last item of the page before; None starts at
  the beginning). This is keyset pagination: a page holds the items that sort after the
  cursor, so reading page after page gives every item once, in order, even while items are
  added or deleted between pages (an item added before the cursor is not seen; the cursor of
  an item deleted since still works). A page shorter than ``limit`` is the last one;
  :func:`every_item` reads all pages of a call. Metric points are paged by index instead
  (``get_metric_series``'s ``start``/``limit``). ``list_metrics`` (one row per metric name)
  and ``list_runs_in_states`` (a compute target's queue) return everything.

Every method may block on I/O; none holds a lock across calls. A test suite in
``tests/contract`` runs against every backend.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from modelyard.backend.records import (
    PREPARING,
    ComputeRecord,
    DatasetRecord,
    DatastoreRecord,
    EnvironmentRecord,
    ExperimentRecord,
    FileInfo,
    MetricBatch,
    MetricInfo,
    MetricSeries,
    ModelRecord,
    NodeCounts,
    RunDetails,
    RunRecord,
    StatusChange,
    WorkspaceRecord,
)
from modelyard.errors import ComputeTargetException, NotFoundError, ValidationError

if TYPE_CHECKING:
    # For an annotation only: a run's script imports this module, and fsspec, which the
    # file store imports, would add 0.23 s to its start (python -X importtime, here).
    from modelyard.store.files import FileStore

# A file to upload: a local path (backends may copy it without reading it through Python) or
# an open binary stream.
FileSource = Path | IO[bytes]

# How many items the SDK asks for in one page: large enough that most lists are one call,
# small enough that a page of runs or files stays a few hundred KiB on a network.
PAGE_SIZE = 500
# Points of one metric in one page of get_metric_series: 100,000 points are ~2.4 MB packed
# (8-byte step, time and value) and a few MB as JSON on the script's channel.
METRIC_PAGE_SIZE = 100_000
# How many of a compute target's node count changes get_compute_node_history returns at most.
NODE_HISTORY_LIMIT = 5000

ListedRecord = TypeVar(
    "ListedRecord",
    ExperimentRecord,
    RunRecord,
    DatastoreRecord,
    ModelRecord,
    EnvironmentRecord,
    DatasetRecord,
    ComputeRecord,
    FileInfo,
)


def page_key(
    record: ExperimentRecord
    | RunRecord
    | DatastoreRecord
    | ModelRecord
    | EnvironmentRecord
    | DatasetRecord
    | ComputeRecord
    | FileInfo,
) -> str:
    """The cursor after ``record`` for the next page of the list it came from: the values of
    the list's order, joined by ``/`` (names never hold one). Callers treat it as opaque.

    Example::

        page = backend.list_runs("mnist", limit=10)
        rest = backend.list_runs("mnist", limit=10, after=page_key(page[-1]))
    """
    if isinstance(record, RunRecord):
        return f"{record.created_at!r}/{record.number}"
    if isinstance(record, ModelRecord):
        return f"{record.created_at!r}/{record.name}/{record.version}"
    if isinstance(record, EnvironmentRecord | DatasetRecord):
        return f"{record.name}/{record.version}"
    if isinstance(record, FileInfo):
        return record.path
    return record.name


def split_page_key(after: str, types: tuple[type, ...]) -> list[Any]:
    """The values of a cursor made by :func:`page_key`, converted to ``types``; a cursor that
    does not fit is a ValidationError (for backends)."""
    parts = after.split("/", len(types) - 1)
    try:
        if len(parts) != len(types):
            raise ValueError(after)
        return [kind(part) for kind, part in zip(types, parts, strict=True)]
    except ValueError:
        raise ValidationError(
            "after",
            f"{after!r} is not a cursor of this list; pass page_key() of the last item of "
            "the page before, or None for the first page",
        ) from None


def check_limit(limit: int | None) -> int | None:
    """``limit`` when it is None or a positive number, else ValidationError (for backends)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValidationError("limit", f"{limit!r} is not a page size: use a number from 1 up")
    return limit


def every_item(
    list_page: Callable[[int, str | None], list[ListedRecord]], page_size: int = PAGE_SIZE
) -> Iterator[ListedRecord]:
    """Every item of a ``list_`` call, read a page at a time. ``list_page(limit, after)``
    makes the call.

    Example::

        for run in every_item(lambda limit, after: backend.list_runs("mnist", limit=limit,
                                                                     after=after)):
            print(run.id)
    """
    after: str | None = None
    while True:
        page = list_page(page_size, after)
        yield from page
        if len(page) < page_size:
            return
        after = page_key(page[-1])


class Backend(abc.ABC):
    """Metadata, files and run control of one workspace. See the module docstring."""

    workspace_name: str

    # -- experiments ---------------------------------------------------------------------

    @abc.abstractmethod
    def get_workspace(self) -> WorkspaceRecord:
        """The workspace this backend serves (what a run's processes are told it is)."""

    @abc.abstractmethod
    def ensure_experiment(self, name: str) -> ExperimentRecord:
        """Return the experiment ``name``, creating it on first use."""

    @abc.abstractmethod
    def list_experiments(
        self, *, limit: int | None = None, after: str | None = None
    ) -> list[ExperimentRecord]:
        """All experiments, by name (paged: see the module docstring)."""

    # -- runs ----------------------------------------------------------------------------

    @abc.abstractmethod
    def create_run(
        self,
        run_id: str,
        experiment_name: str,
        *,
        run_type: str,
        status: str,
        display_name: str | None = None,
        parent_id: str | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
    ) -> RunRecord:
        """Create a run with the client-chosen ``run_id`` (idempotent: an existing run with that
        id in the same experiment is returned as it is). The run gets the next number of its
        experiment."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunRecord:
        """The run, or NotFoundError."""

    @abc.abstractmethod
    def get_run_details(self, run_id: str) -> RunDetails:
        """The run with its tags and properties."""

    @abc.abstractmethod
    def get_run_status_history(self, run_id: str) -> list[StatusChange]:
        """The run's states as they came, oldest first, each with when it began (a run made
        before workspaces kept them has none: its record's times are what is known)."""

    @abc.abstractmethod
    def list_runs(
        self,
        experiment_name: str,
        *,
        tags: dict[str, str | None] | None = None,
        properties: dict[str, str | None] | None = None,
        include_children: bool = False,
        parent_id: str | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[RunRecord]:
        """Runs of an experiment, newest first (by creation time, then number). ``tags``/
        ``properties`` keep runs having every key, with the given value unless it is None.
        Top-level runs only, unless ``include_children``; ``parent_id`` lists the children of
        one run. Paged: see the module docstring."""

    @abc.abstractmethod
    def update_run_status(
        self, run_id: str, status: str, *, error: dict[str, Any] | None = None
    ) -> RunRecord:
        """Move a run to ``status``; stamps start and end times. A run in a final state stays
        there: asking for another state raises ConflictError, the same one is a no-op."""

    @abc.abstractmethod
    def list_runs_in_states(
        self, states: list[str], *, properties: dict[str, str | None] | None = None
    ) -> list[RunRecord]:
        """Runs of every experiment in one of ``states``, oldest first (a compute target's
        queue)."""

    @abc.abstractmethod
    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Add or replace tags."""

    @abc.abstractmethod
    def add_run_properties(self, run_id: str, properties: dict[str, str]) -> None:
        """Add properties; they are immutable: a different value for an existing key raises
        ConflictError (the same value is a no-op, so retries are safe)."""

    # -- run leases ----------------------------------------------------------------------
    # Whatever runs a run holds a lease on it in the store and renews it; whoever finds a
    # lease expired ends the run. Lease times are the database's clock (Unix seconds), so
    # workers on machines whose clocks differ agree on them.

    @abc.abstractmethod
    def claim_run(
        self, run_id: str, worker_id: str, lease_seconds: float, *, status: str = PREPARING
    ) -> RunRecord | None:
        """Take the Queued run ``run_id`` for ``worker_id``: in one atomic step the run moves
        to ``status``, held by ``worker_id`` for ``lease_seconds``; returns the run. Returns
        None when the run is not Queued (another worker claimed it first, it was canceled,
        it ended). Of any number of workers claiming one run at once, exactly one gets it,
        so two agents sharing a database never start the same run.

        ``status`` is Preparing (the default: a worker that starts the run at once) or
        Provisioning (a cluster that waits for nodes to hold the run first; it moves the
        run on to Preparing with ``update_run_status`` when they are there). Provisioning is
        an active, leased state like the ones after it: the lease is renewed, a cancel
        request reaches the holder, and an expired lease fails the run.

        Idempotent: the holder claiming again a run it holds while the run is active (a
        retry after a lost reply) gets it again as it is now (its status is left alone),
        its lease renewed. A worker that claimed a run must renew the lease
        (``renew_lease``) until the run ends; if it stops, ``expire_leases`` fails the run.
        NotFoundError for an unknown run; ValidationError for a ``worker_id`` that is not a
        name, a ``lease_seconds`` that is not a positive number or a ``status`` other than
        Preparing and Provisioning.

        Example::

            run = backend.claim_run(run_id, "node1-agent-4242", 30.0)
            if run is not None:
                start_supervisor(run)
            backend.claim_run(run_id, "cluster-gpu", 30.0, status=PROVISIONING)
        """

    @abc.abstractmethod
    def renew_lease(self, run_id: str, worker_id: str, lease_seconds: float) -> str:
        """The heartbeat of a claimed run: extend ``worker_id``'s lease on the run to
        ``lease_seconds`` from now (and record the heartbeat), and return the run's status,
        so the supervisor learns of a cancel request with the same call. A run that is
        NotResponding or in a final state keeps its status and its lease is not extended:
        the status returned tells the holder the run ended without it (its lease expired
        and someone failed it, say). ConflictError when another worker holds the run, or
        none does (it was never claimed). Idempotent: any number of renewals is one
        lease; a renewal after the lease expired, before anyone ended the run, keeps it.

        Example::

            if backend.renew_lease(run_id, worker_id, 30.0) == CANCEL_REQUESTED:
                stop_the_run()
        """

    @abc.abstractmethod
    def expire_leases(self) -> list[RunRecord]:
        """End the active runs (Preparing to Finalizing, Provisioning included, or
        CancelRequested) whose lease
        expired: each goes NotResponding, then Failed with the reason ("the run's lease held
        by <worker> expired at <time>: its supervisor or node stopped answering"). Returns
        the runs this call failed, as they are now. Any number of watchers may call it at
        once: each run is failed once, and is in the list of exactly one of them; a run
        left NotResponding by a watcher that stopped between the two steps is failed by the
        next call. Runs that were never claimed are left alone.

        Example::

            for run in backend.expire_leases():
                stop_local_processes_of(run.id)
        """

    # -- metrics -------------------------------------------------------------------------

    @abc.abstractmethod
    def log_metrics(self, run_id: str, batches: list[MetricBatch]) -> None:
        """Append batches of points, all in one transaction. A batch already stored (same
        ``batch_id``) is skipped. A name logged before with another kind is a ValidationError."""

    @abc.abstractmethod
    def list_metrics(self, run_id: str) -> list[MetricInfo]:
        """Each metric of the run with its count and last value."""

    @abc.abstractmethod
    def get_metric_series(
        self,
        run_id: str,
        names: list[str] | None = None,
        *,
        start: int = 0,
        limit: int | None = None,
    ) -> list[MetricSeries]:
        """The points of the named metrics (all when None), in logging order: of each metric,
        those from index ``start`` on, ``limit`` at most (all when None), so a client reads a
        long series a page at a time. A metric with no point in that range is left out."""

    # -- run files -----------------------------------------------------------------------

    @abc.abstractmethod
    def upload_run_file(self, run_id: str, name: str, source: FileSource) -> None:
        """Store a file among the run's files (replacing one of that name), atomically."""

    @abc.abstractmethod
    def append_run_file(self, run_id: str, name: str, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` of a growing run file (live logs). Idempotent: bytes
        already stored at that offset are not written again."""

    @abc.abstractmethod
    def read_run_file(self, run_id: str, name: str, offset: int = 0, size: int = 1 << 20) -> bytes:
        """Up to ``size`` bytes of a run file from ``offset`` (empty at its end; NotFoundError
        when the file does not exist yet)."""

    @abc.abstractmethod
    def list_run_files(
        self, run_id: str, prefix: str = "", *, limit: int | None = None, after: str | None = None
    ) -> list[FileInfo]:
        """The run's files at or below ``prefix``, sorted by name (paged: see the module
        docstring)."""

    @abc.abstractmethod
    def open_run_file(self, run_id: str, name: str) -> IO[bytes]:
        """A stream of one of the run's files, or NotFoundError."""

    def run_file_url(self, run_id: str, name: str) -> str:
        """Where one of the run's files is, for people to open (v1's run details show a URL
        per log file): its local path when the store is a folder on this machine, else its
        URL. Nothing is read or checked. A backend that cannot say (a script's channel) names
        it as ``modelyard://<workspace>/runs/<run id>/<name>``.

        Example::

            backend.run_file_url(run_id, "user_logs/std_log.txt")
            # '/home/me/.modelyard/demo/artifacts/runs/<run id>/user_logs/std_log.txt'
        """
        return f"modelyard://{self.workspace_name}/runs/{run_id}/{name}"

    # -- datastores ----------------------------------------------------------------------

    @abc.abstractmethod
    def register_datastore(
        self, name: str, url: str, storage_options: dict[str, Any], *, overwrite: bool = False
    ) -> DatastoreRecord:
        """Register a datastore. Registering the same name with the same URL is a no-op; a
        different URL needs ``overwrite=True``, else ConflictError."""

    @abc.abstractmethod
    def get_datastore(self, name: str | None = None) -> DatastoreRecord:
        """The datastore ``name``, or the default one when None."""

    @abc.abstractmethod
    def list_datastores(
        self, *, limit: int | None = None, after: str | None = None
    ) -> list[DatastoreRecord]:
        """All datastores, by name (paged: see the module docstring)."""

    @abc.abstractmethod
    def set_default_datastore(self, name: str) -> None:
        """Make ``name`` the default datastore."""

    # -- datastore files -----------------------------------------------------------------
    # A datastore's files are read and written by the backend, which holds its storage
    # options (credentials): callers name a datastore and a path relative to its root, never
    # its credentials. Every path goes through names.clean_relpath (ValidationError naming
    # the argument before the store is touched); symbolic links in a folder datastore are
    # never followed (a run given as_mount() can plant one), so no call reads or writes
    # outside the datastore's root. NotFoundError for an unknown datastore.

    @abc.abstractmethod
    def list_datastore_files(
        self, name: str, prefix: str = "", *, limit: int | None = None, after: str | None = None
    ) -> list[FileInfo]:
        """The files of datastore ``name`` at or below ``prefix`` (a folder, or a file, which
        then lists itself), relative to the datastore's root, sorted by path (paged: see the
        module docstring). A folder datastore's links are not among them, and a ``prefix``
        that names one is a ValidationError. Blocks while the store is listed; read-only, so
        callers may retry.

        Example::

            backend.list_datastore_files("workspaceblobstore", "mnist")
            # [FileInfo(path='mnist/train.csv', size=5120), ...]
        """

    @abc.abstractmethod
    def upload_datastore_file(
        self, name: str, relpath: str, source: FileSource, *, overwrite: bool = False
    ) -> bool:
        """Store ``source`` (read as a stream) as ``relpath`` in datastore ``name``; True when
        it was written, False when a file of that name exists and ``overwrite`` is False (it
        is left as it is). Written atomically: a reader sees the old file or the whole new
        one. Without ``overwrite`` an existing file is never replaced, in a folder datastore
        not even by a writer racing this call (the file is linked into place, which fails on
        an existing name). A folder or a symbolic link where ``relpath`` (or one of its
        folders) goes is a ValidationError. Blocks until the file is stored; callers may
        retry: with ``overwrite`` a retry writes the same bytes again, without it a retry
        whose first try was stored answers False.

        Example::

            backend.upload_datastore_file("raw", "mnist/train.csv", Path("train.csv"))  # True
        """

    @abc.abstractmethod
    def open_datastore_file(self, name: str, relpath: str) -> IO[bytes]:
        """A stream of the file ``relpath`` of datastore ``name``; NotFoundError when there
        is none (a link in a folder datastore is none). The caller closes it.

        Example::

            with backend.open_datastore_file("raw", "mnist/train.csv") as f:
                header = f.readline()
        """

    def local_datastore_store(self, name: str) -> FileStore | None:
        """The file store of datastore ``name`` opened in this process, with its storage
        options, where this backend keeps them in this process (an embedded workspace's
        backend); None where it keeps them elsewhere (a server, a run's supervisor), and
        then the datastore-file calls above are the way to the files. Not a contract call:
        a client of a server or of a script's channel answers None without asking, so the
        credentials never travel. Callers in this process use it to copy with the file
        store directly (a folder datastore on this machine: about 10,000 small files/s, the
        transfer module's fast path) or to mount a folder datastore in place.

        Example::

            store = backend.local_datastore_store("workspaceblobstore")
            store.local_path("mnist") if store is not None and store.is_local else None
        """
        return None

    # -- compute targets -----------------------------------------------------------------
    # Clusters the workspace knows by name. The store keeps what the SDK says about each (its
    # provisioning configuration, state, address, errors); starting and stopping the cluster
    # itself is the compute side's work, which records each step here. ``local`` is this
    # machine: it always exists, has no record, and no record may take its name.

    @abc.abstractmethod
    def create_compute(
        self, name: str, compute_type: str, provisioning: dict[str, Any]
    ) -> ComputeRecord:
        """Record a new compute target ``name`` of ``compute_type`` (``"AmlCompute"``), with
        its JSON-ready ``provisioning`` configuration (64 KiB at most as JSON), in state
        Creating. Idempotent: when ``name`` exists with the same type and provisioning (a
        retry after a lost reply, or a second ``ComputeTarget.create`` of the same
        configuration), the existing record is returned as it is now. ConflictError when
        ``name`` exists with another type or provisioning; ValidationError for a bad name,
        ``local``, or a ``provisioning`` that is not JSON data or is too large, before
        anything is written. Of concurrent creations of one name, one makes the record.

        Example::

            backend.create_compute("gpucluster", "AmlCompute", {"vm_size": "STANDARD_NC6"})
        """

    @abc.abstractmethod
    def get_compute(self, name: str) -> ComputeRecord:
        """The compute target ``name``; ComputeTargetException (a NotFoundError) when the
        workspace has none of that name, as v1 raised it (``local`` has no record either)."""

    def find_compute(self, name: str) -> ComputeRecord | None:
        """The compute target ``name``, or None when there is none (``get_compute`` without
        the exception).

        Example::

            if backend.find_compute("gpucluster") is None:
                backend.create_compute("gpucluster", "AmlCompute", config)
        """
        try:
            return self.get_compute(name)
        except ComputeTargetException:
            return None

    @abc.abstractmethod
    def list_computes(
        self, *, limit: int | None = None, after: str | None = None
    ) -> list[ComputeRecord]:
        """All compute targets (``local`` is not one), by name (paged: see the module
        docstring)."""

    @abc.abstractmethod
    def update_compute(
        self,
        name: str,
        *,
        state: str | None = None,
        address: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        nodes: dict[str, int] | None = None,
    ) -> ComputeRecord:
        """Set the given fields of compute target ``name`` (None leaves a field as it is) and
        stamp ``updated_at``; returns the record. ``state`` is free text of at most 64
        printable characters (``"Succeeded"``); ``errors`` replaces the list (JSON data);
        ``nodes`` replaces the node counts (names to whole numbers >= 0).
        Idempotent: repeating an update sets the same values. ComputeTargetException for an
        unknown name; ValidationError for bad values, before anything is written.

        Example::

            backend.update_compute("gpucluster", state="Succeeded", address="10.0.0.5:6379")
        """

    @abc.abstractmethod
    def get_compute_node_history(self, name: str, since: float = 0.0) -> list[NodeCounts]:
        """Compute target ``name``'s node counts each time they changed, oldest first: the
        last change before Unix time ``since`` (the counts then), and those since, at most
        NODE_HISTORY_LIMIT of the latest; NotFoundError for an unknown compute target."""

    @abc.abstractmethod
    def delete_compute(self, name: str) -> None:
        """Forget compute target ``name`` (its cluster is stopped by the compute side first).
        A retried delete is not an error: a name that is gone already, or never was, is
        left as it is, quietly."""

    # -- models --------------------------------------------------------------------------

    @abc.abstractmethod
    def upload_model_file(
        self, model_name: str, upload_id: str, relpath: str, source: FileSource
    ) -> None:
        """Stage one file of a model version about to be created by ``create_model``."""

    @abc.abstractmethod
    def stage_model_from_run(
        self, model_name: str, upload_id: str, run_id: str, run_path: str
    ) -> str:
        """Stage the run's file or folder ``run_path`` for ``create_model``, copying on the
        storage side. Returns the root name (the last part of ``run_path``)."""

    @abc.abstractmethod
    def create_model(
        self,
        model_name: str,
        upload_id: str,
        root_name: str,
        *,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
    ) -> ModelRecord:
        """Register the staged files as the next version of ``model_name``. Two concurrent
        registrations never get the same version; a retry with the same ``upload_id`` returns
        the version made the first time."""

    @abc.abstractmethod
    def get_model(self, name: str, version: int | None = None) -> ModelRecord:
        """One version (the latest when None), or NotFoundError."""

    @abc.abstractmethod
    def list_models(
        self,
        name: str | None = None,
        *,
        tags: dict[str, str | None] | None = None,
        latest: bool = False,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[ModelRecord]:
        """Model versions, newest first (by creation time, then name and version, descending),
        filtered like ``list_runs``; ``latest`` keeps the newest version of each name among
        those the filters keep. Paged: see the module docstring."""

    @abc.abstractmethod
    def update_model_tags(
        self, name: str, version: int, *, add: dict[str, str], remove: list[str]
    ) -> ModelRecord:
        """Add or replace tags, and remove the keys in ``remove``."""

    @abc.abstractmethod
    def delete_model(self, name: str, version: int) -> None:
        """Delete one model version and its files. A retried delete is not an error: a
        version that is gone already (or never was) is left as it is, quietly, as the
        contract's deletes all do; ``Model.delete()`` keeps v1's behaviour because a Model
        object exists only for a version found in the registry (``Model(ws, name)`` raises
        NotFoundError for one that never existed)."""

    @abc.abstractmethod
    def list_model_files(
        self, name: str, version: int, *, limit: int | None = None, after: str | None = None
    ) -> list[FileInfo]:
        """The files of a model version, relative to its root folder, sorted by name (paged:
        see the module docstring)."""

    @abc.abstractmethod
    def open_model_file(self, name: str, version: int, relpath: str) -> IO[bytes]:
        """A stream of one file of a model version."""

    def model_url(self, record: ModelRecord) -> str:
        """Where the files of a model version are, for people (v1's ``Model.url``): a local
        folder path, or the store's URL; ``modelyard://<workspace>/models/<name>/<version>``
        from a backend that cannot say. Nothing is read or checked.

        Example::

            backend.model_url(backend.get_model("mnist", 2))
            # 's3://team-bucket/ws/models/mnist/2-...'
        """
        return f"modelyard://{self.workspace_name}/models/{record.name}/{record.version}"

    # -- environments --------------------------------------------------------------------

    @abc.abstractmethod
    def register_environment(self, name: str, definition: dict[str, Any]) -> EnvironmentRecord:
        """Store ``definition`` (a JSON-ready dict) as the next version of ``name``, unless the
        latest version holds the same content: that one is returned, so registering unchanged
        content, or retrying a call, makes no new version. Two concurrent registrations never
        get the same version."""

    @abc.abstractmethod
    def get_environment(self, name: str, version: int | None = None) -> EnvironmentRecord:
        """One version (the latest when None), or NotFoundError."""

    @abc.abstractmethod
    def list_environments(
        self, name: str | None = None, *, limit: int | None = None, after: str | None = None
    ) -> list[EnvironmentRecord]:
        """Registered versions (of ``name``, or of every environment), by name and newest
        version first (paged: see the module docstring)."""

    # -- datasets ------------------------------------------------------------------------
    # A registered dataset is a name with versions; each version holds a definition (the
    # JSON-ready description of its files, format and transformations) and has an id of its
    # own. The files stay where the definition points (datastores, URLs): nothing is copied.

    @abc.abstractmethod
    def create_dataset(
        self,
        name: str,
        definition: dict[str, Any],
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        create_new_version: bool = False,
    ) -> DatasetRecord:
        """Register ``definition`` (JSON data, 256 KiB at most as JSON) as dataset ``name``.

        Keyed on the definition's content: when the latest version of ``name`` holds the same
        definition (a retry after a lost reply, or registering an unchanged dataset), that
        version is returned as it is (its description and tags untouched). Otherwise a name
        that exists needs ``create_new_version=True``, which makes the next version, else
        ConflictError, as in v1; a new name gets version 1. Two concurrent registrations never
        get the same version. ValidationError for a bad name, tags, description or
        definition, before anything is written.

        Example::

            first = backend.create_dataset("mnist", {"type": "file", "sources": [...]})
            backend.create_dataset("mnist", changed, create_new_version=True).version   # 2
        """

    @abc.abstractmethod
    def get_dataset(self, name: str, version: int | None = None) -> DatasetRecord:
        """One version of dataset ``name`` (the latest when None), or NotFoundError."""

    @abc.abstractmethod
    def get_dataset_by_id(self, dataset_id: str) -> DatasetRecord:
        """The dataset version whose id is ``dataset_id``, or NotFoundError."""

    def find_dataset(self, name: str, version: int | None = None) -> DatasetRecord | None:
        """``get_dataset`` without the exception: None when there is no such version.

        Example::

            if backend.find_dataset("mnist") is None:
                backend.create_dataset("mnist", definition)
        """
        try:
            return self.get_dataset(name, version)
        except NotFoundError:
            return None

    @abc.abstractmethod
    def list_datasets(
        self,
        name: str | None = None,
        *,
        latest: bool = False,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[DatasetRecord]:
        """Registered versions (of ``name``, or of every dataset), by name and newest version
        first; ``latest`` keeps the newest version of each name. Paged: see the module
        docstring."""

    # -- snapshots -----------------------------------------------------------------------
    # A run's source snapshot is content-addressed (the format is in backend/snapshot.py):
    # blobs named by the SHA-256 of their bytes, and a manifest named by the SHA-256 of its
    # own bytes that lists them. Nothing stored can change, so every call is idempotent and
    # a client that repeats one after a timeout gets the same result. Digests and ids are 64
    # lowercase hex digits; anything else is a ValidationError before the store is touched.

    @abc.abstractmethod
    def missing_snapshot_blobs(self, digests: list[str]) -> list[str]:
        """Which of ``digests`` the store lacks, in the order given, each once: one call for
        many blobs, since a round trip per file is too slow on a network (callers send a
        thousand or so at a time).

        Example::

            backend.missing_snapshot_blobs([sha_a, sha_b])      # [sha_b]
        """

    @abc.abstractmethod
    def upload_snapshot_blob(self, digest: str, source: FileSource) -> None:
        """Store one blob, read from ``source`` as a stream. The backend checks that the bytes
        hash to ``digest``: when they do not, it raises ValidationError (field ``source``) and
        stores nothing. Written atomically: no reader sees half a blob. Uploading a blob that
        is stored already is a no-op.

        Example::

            backend.upload_snapshot_blob(hashlib.sha256(b"x").hexdigest(), io.BytesIO(b"x"))
        """

    @abc.abstractmethod
    def put_snapshot_manifest(self, manifest: bytes) -> str:
        """Store a manifest (canonical JSON: sorted keys, no spaces) and return its id, the
        SHA-256 of its bytes. Every blob it lists must be stored first: otherwise
        ConflictError naming the first missing blob, and nothing is stored; so a manifest that
        exists has all its blobs. A manifest that is not one (bad JSON, format, paths or
        digests) is a ValidationError (field ``manifest``). Putting it again returns the same
        id.

        Example::

            snapshot_id = backend.put_snapshot_manifest(manifest_bytes)
        """

    @abc.abstractmethod
    def get_snapshot_manifest(self, snapshot_id: str) -> bytes:
        """The bytes of manifest ``snapshot_id``; NotFoundError when it is not stored, and
        StorageError when the stored bytes no longer hash to the id."""

    @abc.abstractmethod
    def open_snapshot_blob(self, digest: str) -> IO[bytes]:
        """A stream of one blob; NotFoundError when it is not stored. The reader checks the
        bytes against ``digest`` where it can (see backend/snapshot.py)."""
