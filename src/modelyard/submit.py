"""``exp.submit``: check a run configuration, snapshot its folder, queue the run.

Submitting returns at once with the run Queued, and tells the run's compute target
(``modelyard.compute``), which starts it.

Snapshot limits default to 300 MB and 2,000 files; ``MODELYARD_SNAPSHOT_MAX_MB`` and
``MODELYARD_SNAPSHOT_MAX_FILES`` change them (v1 had ``AZUREML_SNAPSHOT_...`` settings too).

Inside a submitted script, ``exp.submit`` (of the script's own experiment) queues a child of
the script's run, through the script's channel: a pipeline's steps.

Example::

    run = submit(exp, ScriptRunConfig("./src", "train.py"), tags={"try": "1"})
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard import distributed
from modelyard.backend.snapshot import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, take_snapshot
from modelyard.compute import compute_for
from modelyard.compute.base import Compute
from modelyard.errors import ValidationError
from modelyard.names import check_tags
from modelyard.run import SCRIPT, Run, new_run_id
from modelyard.run_details import SUBMITTED_BY_PROPERTY, current_account
from modelyard.runner.envbuild import check_submittable
from modelyard.runner.job import RECORDED_PROPERTY_PREFIX, JobSpec, queue_job
from modelyard.runner.launchers import DISTRIBUTED_PROPERTY, PER_NODE, PROCESS_COUNT_PROPERTY
from modelyard.runner.local_compute import COMPUTE_PROPERTY

if TYPE_CHECKING:
    from modelyard.experiment import Experiment


def snapshot_limits() -> tuple[int, int]:
    """(bytes, files) a source folder may hold."""
    max_mb = os.environ.get("MODELYARD_SNAPSHOT_MAX_MB")
    max_files = os.environ.get("MODELYARD_SNAPSHOT_MAX_FILES")
    return (
        int(float(max_mb) * 1024**2) if max_mb else DEFAULT_MAX_BYTES,
        int(max_files) if max_files else DEFAULT_MAX_FILES,
    )


@dataclass
class PreparedJob:
    """A run configuration made ready to queue: its job (snapshot taken), the properties its
    runs get, and the compute target that runs them."""

    spec: JobSpec
    properties: dict[str, str]
    compute: Compute


def prepare_job(experiment: Experiment, config: Any) -> PreparedJob:
    """Check ``config`` (an Estimator or ScriptRunConfig) against its compute target and
    environment, and snapshot its source folder, as ``exp.submit`` does before it queues the
    run; a tuning run does it once for all its children."""
    if not callable(getattr(config, "_to_job", None)):
        raise ValidationError(
            "config", f"expected an Estimator or ScriptRunConfig, not {type(config).__name__}"
        )
    folder, spec = config._to_job()
    workspace = experiment.workspace
    compute = compute_for(workspace, spec.compute_target)  # ComputeTargetException: missing
    check_submittable(spec)  # the environment: versions, conda on this machine
    properties = {}
    if spec.distributed is not None:
        spec.distributed, spec.node_count, spec.process_count_per_node = distributed.resolve(
            spec.distributed, spec.node_count, spec.process_count_per_node
        )
        properties[DISTRIBUTED_PROPERTY] = spec.distributed["type"]
        properties[PROCESS_COUNT_PROPERTY] = str(spec.distributed["process_count"])
    elif spec.node_count > 1:
        # The script on each node (a cluster): one process, and one log, per node.
        properties[DISTRIBUTED_PROPERTY] = PER_NODE
        properties[PROCESS_COUNT_PROPERTY] = str(spec.node_count)
    # v1 settings without a meaning here, kept where `run.get_properties()` shows them.
    for name, value in spec.recorded.items():
        properties[RECORDED_PROPERTY_PREFIX + name] = value
    compute.check(spec)
    max_bytes, max_files = snapshot_limits()
    # The workspace's own folder, when it sits inside the source folder, is not the run's.
    own = [] if workspace.server is not None else [workspace.folder]
    snapshot = take_snapshot(
        folder, workspace._backend, max_bytes=max_bytes, max_files=max_files, leave_out=own
    )
    spec.snapshot_id = snapshot.id
    properties.update(
        {
            COMPUTE_PROPERTY: spec.compute_target,
            "modelyard.snapshot_id": snapshot.id,
            "modelyard.script": spec.script,
            SUBMITTED_BY_PROPERTY: current_account(),
        }
    )
    return PreparedJob(spec, properties, compute)


def submit(experiment: Experiment, config: Any, tags: dict[str, Any] | None = None) -> Run:
    """Queue a run of ``config`` (an Estimator or ScriptRunConfig, or a configuration that
    submits itself: ``HyperDriveConfig``); see the module docstring."""
    submits_itself = getattr(config, "_submit", None)
    if callable(submits_itself):
        run: Run = submits_itself(experiment, tags)
        return run
    clean_tags = check_tags("tags", tags)
    job = prepare_job(experiment, config)
    workspace = experiment.workspace
    run_id = new_run_id(experiment.name)
    record = queue_job(
        workspace._backend,
        run_id,
        experiment.name,
        job.spec,
        run_type=SCRIPT,
        # Inside a submitted script what it submits is a child of its run (a pipeline's
        # steps): its channel reaches that run and the runs below it only.
        parent_id=workspace._script_run_id,
        tags=clean_tags,
        properties=job.properties,
    )
    job.compute.queued()
    return Run(experiment, run_id, _record=record)
