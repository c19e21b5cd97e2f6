"""Hyperparameter tuning, with v1's names (v1's ``azureml.train.hyperdrive``).

What a tuning run is made of, each in its module:

- :mod:`.parameter_expressions`: the search space's distributions (``choice``, ``uniform``,
  ``loguniform`` ...);
- :mod:`.sampling`: ``RandomParameterSampling``, ``GridParameterSampling``,
  ``BayesianParameterSampling`` (Optuna, through :mod:`.bayesian_study`), and
  ``script_arguments``, the child's arguments for a configuration;
- :mod:`.policies`: the early-termination policies and their decision functions;
- :mod:`.goal`: ``PrimaryMetricGoal``;
- :mod:`.config_checks`: the checks a tuning run's configuration passes at submission;
- :mod:`.config`: ``HyperDriveConfig``, and what ``exp.submit`` of one stores;
- :mod:`.run`: ``HyperDriveRun``, the tuning run and its children;
- :mod:`.driver`: the process that samples, starts and stops the children;
- :mod:`.plan`: what the tuning run stores for its driver.

Example::

    from modelyard.train.hyperdrive import (BanditPolicy, HyperDriveConfig, PrimaryMetricGoal,
                                            RandomParameterSampling, choice, loguniform)

    sampling = RandomParameterSampling({"--batch-size": choice(25, 50, 100),
                                        "--learning-rate": loguniform(-6, -1)})
    policy = BanditPolicy(evaluation_interval=2, slack_factor=0.1)
    config = HyperDriveConfig(run_config=ScriptRunConfig("./src", "train.py"),
                              hyperparameter_sampling=sampling, policy=policy,
                              primary_metric_name="validation_acc",
                              primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
                              max_total_runs=8, max_concurrent_runs=4)
    hd_run = exp.submit(config)
    hd_run.wait_for_completion(show_output=True)
"""

from __future__ import annotations

from modelyard.train.hyperdrive.config import HyperDriveConfig
from modelyard.train.hyperdrive.goal import PrimaryMetricGoal
from modelyard.train.hyperdrive.parameter_expressions import (
    choice,
    lognormal,
    loguniform,
    normal,
    qlognormal,
    qloguniform,
    qnormal,
    quniform,
    randint,
    uniform,
)
from modelyard.train.hyperdrive.policies import (
    BanditPolicy,
    EarlyTerminationPolicy,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    TruncationSelectionPolicy,
)
from modelyard.train.hyperdrive.run import HyperDriveRun
from modelyard.train.hyperdrive.sampling import (
    BayesianParameterSampling,
    GridParameterSampling,
    HyperParameterSampling,
    RandomParameterSampling,
)

__all__ = [
    "BanditPolicy",
    "BayesianParameterSampling",
    "EarlyTerminationPolicy",
    "GridParameterSampling",
    "HyperDriveConfig",
    "HyperDriveRun",
    "HyperParameterSampling",
    "MedianStoppingPolicy",
    "NoTerminationPolicy",
    "PrimaryMetricGoal",
    "RandomParameterSampling",
    "TruncationSelectionPolicy",
    "choice",
    "lognormal",
    "loguniform",
    "normal",
    "qlognormal",
    "qloguniform",
    "qnormal",
    "quniform",
    "randint",
    "uniform",
]
