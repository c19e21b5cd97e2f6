"""The tables of a workspace's metadata database (SQLAlchemy Core).

The schema itself is made by the Alembic migrations in ``store/migrations``; these definitions
are what the code queries with, and a test checks that the two agree.

Metric points are not stored a row each: a batch of points of one metric is one row of
``metric_chunks`` with the values, steps and times packed (see ``store/metric_codec.py``).
A million points are then a few dozen rows, written and read in well under a second.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

settings = Table(
    "settings",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("parent_id", String(255), ForeignKey("runs.id"), nullable=True),
    Column("display_name", String(255), nullable=False),
    Column("run_type", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("heartbeat_at", Float, nullable=True),
    Column("error", Text, nullable=True),
    # The worker that claimed the run (claim_run) and when its lease ends, in the database's
    # clock; both NULL for a run no worker claimed.
    Column("lease_holder", String(255), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    UniqueConstraint("experiment_id", "number", name="uq_runs_experiment_number"),
    Index("ix_runs_experiment_created", "experiment_id", "created_at"),
    Index("ix_runs_parent", "parent_id"),
    # Every agent looks for expired leases every few seconds: by state, then expiry.
    Index("ix_runs_status_lease", "status", "lease_expires_at"),
)

# Each change of a run's status, in order (``id``), with when it happened: the run page's
# timeline (Queued, Preparing, Running, ...). Written with the change, in its transaction.
run_status_changes = Table(
    "run_status_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(255), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(32), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_run_status_changes_run", "run_id", "id"),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", String(255), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_run_tags_key_value", "key", "value"),
)

run_properties = Table(
    "run_properties",
    metadata,
    Column("run_id", String(255), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_run_properties_key_value", "key", "value"),
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(255), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("description", Text, nullable=False),
    Column("count", Integer, nullable=False),
    Column("last_value", Text, nullable=True),
    Column("last_step", Integer, nullable=True),
    UniqueConstraint("run_id", "name", name="uq_metrics_run_name"),
)

metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("metric_id", Integer, ForeignKey("metrics.id", ondelete="CASCADE"), nullable=False),
    Column("batch_id", String(64), nullable=False),
    Column("first_index", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    # The process of a distributed run that logged the chunk's points (NULL otherwise).
    Column("process", Integer, nullable=True),
    UniqueConstraint("metric_id", "batch_id", name="uq_metric_chunks_batch"),
    Index("ix_metric_chunks_metric_first", "metric_id", "first_index"),
)

# A datastore's storage options (credentials) are not here: they are kept in the workspace
# folder's secrets file (store/secrets.py), out of a database that may be shared.
datastores = Table(
    "datastores",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("url", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# The last version number given to each model name: versions are never reused, even after
# the newest one is deleted, so "name:version" always means the same files.
model_names = Table(
    "model_names",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("last_version", Integer, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("storage_path", Text, nullable=False, unique=True),
    Column("root_name", Text, nullable=False),
    Column("run_id", String(255), ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
    Column("description", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("name", "version", name="uq_models_name_version"),
)

model_tags = Table(
    "model_tags",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

model_properties = Table(
    "model_properties",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

# Registered environments: a version per distinct content of a name.
environments = Table(
    "environments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("definition", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("name", "version", name="uq_environments_name_version"),
)

# Registered dataset versions: the definition (JSON text) names the files, which stay where
# they are. ``id`` is the version's own id (v1's dataset.id); tags are JSON text.
datasets = Table(
    "datasets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("definition", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("tags", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("name", "version", name="uq_datasets_name_version"),
)

# Compute targets (clusters) by name: what the SDK stored about each and what the
# compute side records as the cluster comes and goes. Provisioning and errors are JSON text.
compute_targets = Table(
    "compute_targets",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("compute_type", String(255), nullable=False),
    Column("provisioning", Text, nullable=False),
    Column("state", String(64), nullable=False),
    Column("address", Text, nullable=True),
    Column("errors", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("nodes", Text, nullable=False),
)

# A compute target's node counts (``nodes``, JSON) each time they changed: the compute page's
# chart of nodes over time. Kept NODE_HISTORY_DAYS (backend/local/computes.py).
compute_node_counts = Table(
    "compute_node_counts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "compute_name",
        String(255),
        ForeignKey("compute_targets.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("at", Float, nullable=False),
    Column("nodes", Text, nullable=False),
    Index("ix_compute_node_counts_compute_at", "compute_name", "at"),
)
