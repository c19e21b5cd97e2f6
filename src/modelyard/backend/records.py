"""Plain records that cross the backend contract (and, later, the network as JSON).

They carry data only; the SDK objects (Run, Model, ...) wrap them with behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Run states in the order a run goes through them (DESIGN.md, section 2).
NOT_STARTED = "NotStarted"
QUEUED = "Queued"
PREPARING = "Preparing"
PROVISIONING = "Provisioning"
STARTING = "Starting"
RUNNING = "Running"
FINALIZING = "Finalizing"
CANCEL_REQUESTED = "CancelRequested"
NOT_RESPONDING = "NotResponding"
COMPLETED = "Completed"
FAILED = "Failed"
CANCELED = "Canceled"

RUN_STATES = (
    NOT_STARTED,
    QUEUED,
    PREPARING,
    PROVISIONING,
    STARTING,
    RUNNING,
    FINALIZING,
    CANCEL_REQUESTED,
    NOT_RESPONDING,
    COMPLETED,
    FAILED,
    CANCELED,
)
TERMINAL_STATES = frozenset({COMPLETED, FAILED, CANCELED})
# What a worker may claim a Queued run into (Backend.claim_run): Preparing on a machine that
# starts it at once, Provisioning on a cluster that first waits for nodes to hold it.
CLAIM_STATES = (PREPARING, PROVISIONING)

# The compute target that is this machine: it always exists, so no record may take its name.
LOCAL_COMPUTE = "local"
# The state of a compute target just created (Backend.create_compute); its owner moves it on.
COMPUTE_CREATING = "Creating"

# Metric kinds: how the points of a metric are shaped and how get_metrics returns them.
SCALAR = "scalar"  # run.log: one number, string or bool per point
LIST = "list"  # run.log_list: a list per point
ROW = "row"  # run.log_row: a dict of column -> value per point
TABLE = "table"  # run.log_table: a dict of column -> list per point
IMAGE = "image"  # run.log_image: the run file name of the image per point
METRIC_KINDS = (SCALAR, LIST, ROW, TABLE, IMAGE)


# Times in records are Unix seconds (time.time()).
def iso_utc(timestamp: float | None) -> str | None:
    """A Unix time as ISO 8601 in UTC (``2024-05-01T12:00:03.5Z``), as v1's details show it."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class WorkspaceRecord:
    """Which workspace a backend serves: its name and its id (a UUID, fixed at creation)."""

    name: str
    id: str


@dataclass(frozen=True)
class ExperimentRecord:
    id: int
    name: str
    created_at: float


@dataclass(frozen=True)
class RunRecord:
    id: str
    experiment_name: str
    number: int
    parent_id: str | None
    display_name: str
    run_type: str
    status: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    heartbeat_at: float | None
    error: dict[str, Any] | None
    # The worker that claimed the run (Backend.claim_run) and the end of its lease, in the
    # database's clock; None for a run no worker claimed.
    lease_holder: str | None = None
    lease_expires_at: float | None = None


# A tuning run's type (v1's "hyperdrive"): its local agent starts a driver for it (the
# driver makes and watches its children) where it starts a supervisor for other runs.
HYPERDRIVE_RUN_TYPE = "hyperdrive"


def cancellation(error: dict[str, Any] | None) -> dict[str, Any]:
    """The error a canceled run ends with: the one its cancel request carried (a tuning run's
    policy says there why it stopped the run), else that it was canceled by the user.

    Example::

        cancellation(None)                                  # {'message': 'canceled by the user'}
        cancellation({"message": "BanditPolicy: ..."})      # {'message': 'BanditPolicy: ...'}
    """
    if error and error.get("message"):
        return error
    return {"message": "canceled by the user"}


@dataclass(frozen=True)
class StatusChange:
    """A run became ``status`` at ``at`` (Unix time)."""

    status: str
    at: float


@dataclass(frozen=True)
class NodeCounts:
    """A compute target's node counts (``current``, ``idle``, ``target``, ...) from ``at``."""

    at: float
    nodes: dict[str, int]


@dataclass(frozen=True)
class RunDetails:
    run: RunRecord
    tags: dict[str, str]
    properties: dict[str, str]


@dataclass
class MetricBatch:
    """Points of one metric to append. ``batch_id`` makes a retried call a no-op. ``process``
    is the number of the process of a distributed run that logged them (None otherwise)."""

    name: str
    kind: str
    batch_id: str
    values: list[Any]
    steps: list[int]
    times: list[float]
    description: str = ""
    process: int | None = None


@dataclass(frozen=True)
class MetricInfo:
    name: str
    kind: str
    description: str
    count: int
    last_value: Any
    last_step: int | None


@dataclass(frozen=True)
class MetricSeries:
    """Every point of one metric. ``processes`` gives, point by point, the process of a
    distributed run that logged it; it is None when no point came from such a process."""

    name: str
    kind: str
    values: list[Any]
    steps: list[int]
    times: list[float]
    processes: list[int | None] | None = None


@dataclass(frozen=True)
class DatastoreRecord:
    name: str
    url: str
    # Credentials: left out of the repr, which tracebacks and logs may show.
    storage_options: dict[str, Any] = field(repr=False)
    created_at: float
    is_default: bool


@dataclass(frozen=True)
class ModelRecord:
    name: str
    version: int
    storage_path: str
    root_name: str
    run_id: str | None
    description: str | None
    created_at: float
    tags: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class EnvironmentRecord:
    """One registered version of an environment. ``definition`` is the JSON-ready content
    (packages, Python version, variables); ``content_hash`` is its SHA-256."""

    name: str
    version: int
    definition: dict[str, Any]
    content_hash: str
    created_at: float


@dataclass(frozen=True)
class DatasetRecord:
    """One registered version of a dataset. ``id`` is the version's own id (v1's
    ``dataset.id``, a UUID); ``definition`` is the JSON-ready description of its files, format
    and transformations (``modelyard/data/definition.py``); ``content_hash`` is its SHA-256."""

    id: str
    name: str
    version: int
    definition: dict[str, Any]
    content_hash: str
    description: str | None
    created_at: float
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FileInfo:
    """One file below a root: its relative path and size in bytes."""

    path: str
    size: int


@dataclass(frozen=True)
class ComputeRecord:
    """A compute target of the workspace (a cluster; ``local`` is this machine and has none).

    ``provisioning`` is the JSON-ready configuration the SDK stored at creation; ``state`` is
    free text its owner keeps up to date ("Creating", "Succeeded", "Failed", "Deleting");
    ``address`` is where the cluster answers once it does (a Ray address); ``errors`` are
    what went wrong, as v1's ``get_status().errors`` shows them; ``nodes`` are the cluster's
    node counts as its compute side last saw them (``{"current": 2, "target": 2, "idle": 0,
    ...}``), so clients read them without reaching the cluster.
    """

    name: str
    compute_type: str
    provisioning: dict[str, Any]
    state: str
    address: str | None
    errors: list[dict[str, Any]]
    created_at: float
    updated_at: float
    nodes: dict[str, int] = field(default_factory=dict)
