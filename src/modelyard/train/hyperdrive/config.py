"""``HyperDriveConfig``: what to tune, how, and for how long (v1's signature); submitting it.

``exp.submit(HyperDriveConfig(...))`` checks everything it can before anything runs: the
sampler, the policy, the limits, the primary metric, and the children's run configuration
against its compute target (as ``exp.submit`` of that configuration would, its source folder
snapshotted once for every child). It then stores the tuning run (type ``hyperdrive``,
Queued on the workspace's ``local`` compute, whose agent starts its driver: see
:mod:`.driver`) with its plan, and returns a :class:`~.run.HyperDriveRun` at once.

Example::

    config = HyperDriveConfig(
        run_config=ScriptRunConfig("./src", "train.py", compute_target="cpucluster"),
        hyperparameter_sampling=RandomParameterSampling({"--lr": loguniform(-6, -1)}),
        policy=BanditPolicy(evaluation_interval=1, slack_factor=0.1),
        primary_metric_name="validation_acc",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=8, max_concurrent_runs=4)
    hd_run = exp.submit(config)
"""

from __future__ import annotations

import io
import json
import math
import uuid
from typing import TYPE_CHECKING, Any

from modelyard.backend.records import HYPERDRIVE_RUN_TYPE, NOT_STARTED, QUEUED
from modelyard.compute import compute_for
from modelyard.errors import NotFoundError, ValidationError
from modelyard.names import check_name, check_tags
from modelyard.run import Run
from modelyard.run_details import SUBMITTED_BY_PROPERTY, current_account
from modelyard.runner.local_compute import COMPUTE_PROPERTY, LOCAL
from modelyard.submit import prepare_job
from modelyard.train import v1_arguments
from modelyard.train.hyperdrive.bayesian_study import import_optuna
from modelyard.train.hyperdrive.config_checks import (
    check_policy,
    check_primary_metric,
    check_run_limits,
    check_sampling,
    total_children,
)
from modelyard.train.hyperdrive.plan import (
    CONFIG_FILE,
    HYPERPARAMETERS_PROPERTY,
    PRIMARY_METRIC_PROPERTY,
    TuningPlan,
)
from modelyard.train.hyperdrive.run import HyperDriveRun
from modelyard.train.hyperdrive.sampling import BayesianParameterSampling

if TYPE_CHECKING:
    from modelyard.experiment import Experiment

# v1's default: a week.
DEFAULT_MAX_DURATION_MINUTES = 10080
# Room left in a run id for a child's "_<index>" (names are at most 255 characters).
MAX_CUSTOM_RUN_ID_LENGTH = 240

_ARGUMENTS = [
    "hyperparameter_sampling",
    "primary_metric_name",
    "primary_metric_goal",
    "max_total_runs",
    "max_concurrent_runs",
    "max_duration_minutes",
    "policy",
    "estimator",
    "run_config",
    "resume_from",
    "resume_child_runs",
    "pipeline",
    "debug_flag",
    "custom_run_id",
]


class HyperDriveConfig:
    """A tuning run's configuration (v1's ``azureml.train.hyperdrive.HyperDriveConfig``).

    Give the children's run configuration as ``run_config`` (a ScriptRunConfig or an
    Estimator) or, as older v1 code does, ``estimator``: one of the two. Each child runs it
    with its sampled parameters added to the script's arguments (``sampling.script_arguments``).

    - ``max_total_runs``: how many children at most (a grid makes no more than its
      combinations, and needs none); random and Bayesian sampling need it.
    - ``max_concurrent_runs``: how many run at once; None means as many as the children's
      compute target runs at once (``compute.max_concurrent_runs()``), where v1 started all
      of them and let the target queue them: a Bayesian sampler learns nothing from children
      it had to choose before any ended.
    - ``max_duration_minutes`` (a week by default): then the running children are canceled
      and the tuning run ends.
    - ``policy``: early termination (None: none).
    - ``resume_from``: earlier tuning runs (HyperDriveRun objects or their ids) whose
      children this one learns from: a Bayesian study starts with their results, and random
      and grid sampling skip the configurations they tried.
    - ``resume_child_runs``: children of earlier tuning runs whose configurations run again
      first, each as a new child (counted in ``max_total_runs``).
    - ``custom_run_id``: the tuning run's id (a name of at most 240 characters).
    - ``pipeline`` is refused (pipelines are not supported); ``debug_flag`` changes nothing.

    Example::

        HyperDriveConfig(run_config=src, hyperparameter_sampling=GridParameterSampling(
                             {"--lr": choice(0.1, 0.01)}),
                         primary_metric_name="loss",
                         primary_metric_goal=PrimaryMetricGoal.MINIMIZE)
    """

    def __init__(
        self,
        hyperparameter_sampling: Any,
        primary_metric_name: str,
        primary_metric_goal: Any,
        max_total_runs: int | None = None,
        max_concurrent_runs: int | None = None,
        max_duration_minutes: float = DEFAULT_MAX_DURATION_MINUTES,
        policy: Any = None,
        estimator: Any = None,
        run_config: Any = None,
        resume_from: list[Any] | None = None,
        resume_child_runs: list[Any] | None = None,
        pipeline: Any = None,
        debug_flag: Any = None,
        custom_run_id: str | None = None,
        **unknown: Any,
    ) -> None:
        v1_arguments.check_unknown("HyperDriveConfig", unknown, _ARGUMENTS)
        if pipeline is not None:
            raise ValidationError(
                "pipeline",
                "pipelines are not supported; give the children's ScriptRunConfig or "
                "Estimator as run_config",
            )
        if (estimator is None) == (run_config is None):
            raise ValidationError(
                "run_config",
                "give the children's run configuration as run_config (a ScriptRunConfig or "
                "an Estimator) or as estimator, not both"
                if estimator is not None
                else "give the children's run configuration: run_config=ScriptRunConfig(...) "
                "or estimator=Estimator(...)",
            )
        self.run_config = run_config if run_config is not None else estimator
        if not callable(getattr(self.run_config, "_to_job", None)):
            raise ValidationError(
                "run_config",
                f"expected a ScriptRunConfig or an Estimator, not {type(self.run_config).__name__}",
            )
        self.hyperparameter_sampling = check_sampling(hyperparameter_sampling)
        self.policy = check_policy(policy)
        self.primary_metric_name, self.primary_metric_goal = check_primary_metric(
            primary_metric_name, primary_metric_goal
        )
        total, self.max_concurrent_runs = check_run_limits(max_total_runs, max_concurrent_runs)
        self.max_total_runs = total_children(self.hyperparameter_sampling, total)
        if self.max_total_runs is None:
            raise ValidationError(
                "max_total_runs",
                "random and Bayesian sampling have no end of their own: say how many children "
                "to run, e.g. max_total_runs=20",
            )
        if (
            isinstance(max_duration_minutes, bool)
            or not isinstance(max_duration_minutes, int | float)
            or not math.isfinite(max_duration_minutes)
            or max_duration_minutes <= 0
        ):
            raise ValidationError(
                "max_duration_minutes",
                f"expected a positive number of minutes, not {max_duration_minutes!r}",
            )
        self.max_duration_minutes = max_duration_minutes
        if isinstance(self.hyperparameter_sampling, BayesianParameterSampling):
            import_optuna()  # ImportError: how to install it, before anything is stored
        self.resume_from = [_run_id("resume_from", run) for run in resume_from or []]
        self.resume_child_runs = [
            _run_id("resume_child_runs", run) for run in resume_child_runs or []
        ]
        if custom_run_id is not None:
            check_name("custom_run_id", custom_run_id)
            if len(custom_run_id) > MAX_CUSTOM_RUN_ID_LENGTH:
                raise ValidationError(
                    "custom_run_id",
                    f"at most {MAX_CUSTOM_RUN_ID_LENGTH} characters (its children's ids add "
                    f"their number), not {len(custom_run_id)}",
                )
        self.custom_run_id = custom_run_id
        self.debug_flag = debug_flag

    @property
    def estimator(self) -> Any:
        """v1's name for the children's run configuration."""
        return self.run_config

    def _submit(self, experiment: Experiment, tags: dict[str, Any] | None) -> HyperDriveRun:
        """What ``exp.submit(config)`` does with a tuning configuration (module docstring)."""
        clean_tags = check_tags("tags", tags)
        workspace = experiment.workspace
        backend = workspace._backend
        self._check_resumed(experiment)
        job = prepare_job(experiment, self.run_config)
        concurrent = self.max_concurrent_runs or job.compute.max_concurrent_runs()
        plan = TuningPlan(
            sampling=self.hyperparameter_sampling.to_dict(),
            policy=self.policy.to_dict(),
            primary_metric_name=self.primary_metric_name,
            primary_metric_goal=self.primary_metric_goal.value,
            total=self.max_total_runs,
            concurrent=min(concurrent, self.max_total_runs or concurrent),
            max_duration_s=float(self.max_duration_minutes) * 60.0,
            child_spec=job.spec.to_json(),
            child_properties=job.properties,
            child_target=job.spec.compute_target,
            resume_from=self.resume_from,
            resume_child_runs=self.resume_child_runs,
        )
        run_id = self.custom_run_id or f"HD_{uuid.uuid4().hex}"
        if self.custom_run_id is not None:
            try:
                backend.get_run(run_id)
            except NotFoundError:
                pass
            else:
                raise ValidationError(
                    "custom_run_id", f"run {run_id!r} exists already; choose another id"
                )
        backend.create_run(
            run_id,
            experiment.name,
            run_type=HYPERDRIVE_RUN_TYPE,
            status=NOT_STARTED,
            parent_id=workspace._script_run_id,
            tags=clean_tags,
            properties={
                # Its driver runs on the local compute; the children on their own target.
                COMPUTE_PROPERTY: LOCAL,
                "modelyard.snapshot_id": job.properties["modelyard.snapshot_id"],
                "modelyard.hyperdrive.children_target": job.spec.compute_target,
                PRIMARY_METRIC_PROPERTY: json.dumps(
                    {"name": self.primary_metric_name, "goal": self.primary_metric_goal.value}
                ),
                SUBMITTED_BY_PROPERTY: current_account(),
            },
        )
        backend.upload_run_file(run_id, CONFIG_FILE, io.BytesIO(plan.to_json()))
        record = backend.update_run_status(run_id, QUEUED)
        compute_for(workspace, LOCAL).queued()
        if job.spec.compute_target != LOCAL:
            job.compute.queued()  # a local cluster whose head stopped is started again
        return HyperDriveRun(experiment, run_id, _record=record)

    def _check_resumed(self, experiment: Experiment) -> None:
        """The runs of ``resume_from`` are tuning runs of this workspace over the same
        parameters; those of ``resume_child_runs`` are their children (or any tuning run's)."""
        backend = experiment.workspace._backend
        names = set(self.hyperparameter_sampling.parameter_space)
        for run_id in self.resume_from:
            record = _existing(backend, "resume_from", run_id)
            if record.run_type != HYPERDRIVE_RUN_TYPE:
                raise ValidationError(
                    "resume_from", f"run {run_id!r} is a {record.run_type} run, not a tuning run"
                )
            earlier = TuningPlan.from_json(backend.read_run_file(run_id, CONFIG_FILE, size=1 << 24))
            if set(earlier.sampling.get("parameter_space", {})) != names:
                raise ValidationError(
                    "resume_from",
                    f"run {run_id!r} tuned {sorted(earlier.sampling.get('parameter_space', {}))}"
                    f", not {sorted(names)}: a run resumed from must tune the same parameters",
                )
        for run_id in self.resume_child_runs:
            record = _existing(backend, "resume_child_runs", run_id)
            properties = backend.get_run_details(run_id).properties
            if HYPERPARAMETERS_PROPERTY not in properties or record.parent_id is None:
                raise ValidationError(
                    "resume_child_runs", f"run {run_id!r} is not a child of a tuning run"
                )
            given = set(json.loads(properties[HYPERPARAMETERS_PROPERTY]))
            if given != names:
                raise ValidationError(
                    "resume_child_runs",
                    f"run {run_id!r} was given {sorted(given)}, not {sorted(names)}",
                )


def _run_id(field: str, run: Any) -> str:
    if isinstance(run, Run):
        return run.id
    if isinstance(run, str):
        return check_name(field, run)
    raise ValidationError(field, f"expected runs or run ids, not {run!r}")


def _existing(backend: Any, field: str, run_id: str) -> Any:
    try:
        return backend.get_run(run_id)
    except NotFoundError:
        raise ValidationError(field, f"run {run_id!r} does not exist in this workspace") from None


__all__ = ["DEFAULT_MAX_DURATION_MINUTES", "HyperDriveConfig"]
