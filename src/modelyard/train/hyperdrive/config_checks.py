"""The checks of a tuning run's configuration that ``HyperDriveConfig`` and the driver share.

Each raises :class:`~modelyard.errors.ValidationError` naming the argument and what to do, at
submission, before any child runs.

Example::

    check_run_limits(max_total_runs=8, max_concurrent_runs=4)          # (8, 4)
    check_run_limits(max_total_runs=4, max_concurrent_runs=8)
    # ValidationError: max_concurrent_runs: 8 is more than max_total_runs (4) ...
    check_policy("bandit")
    # ValidationError: policy: expected BanditPolicy, MedianStoppingPolicy, ...
"""

from __future__ import annotations

from typing import Any

from modelyard.errors import ValidationError
from modelyard.names import check_metric_name
from modelyard.train.hyperdrive.goal import PrimaryMetricGoal
from modelyard.train.hyperdrive.policies import EarlyTerminationPolicy, NoTerminationPolicy
from modelyard.train.hyperdrive.sampling import GridParameterSampling, HyperParameterSampling


def _count(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(field, f"expected an integer of at least 1, not {value!r}")
    return value


def check_run_limits(
    max_total_runs: int | None, max_concurrent_runs: int | None
) -> tuple[int | None, int | None]:
    """The two limits, checked: positive integers (None: no limit of that kind), and no more
    children at a time than in all."""
    total = None if max_total_runs is None else _count("max_total_runs", max_total_runs)
    concurrent = (
        None if max_concurrent_runs is None else _count("max_concurrent_runs", max_concurrent_runs)
    )
    if total is not None and concurrent is not None and concurrent > total:
        raise ValidationError(
            "max_concurrent_runs",
            f"{concurrent} is more than max_total_runs ({total}): at most max_total_runs "
            f"children can run at once; lower max_concurrent_runs to {total} or less",
        )
    return total, concurrent


def check_sampling(sampling: Any) -> HyperParameterSampling:
    """``sampling`` when it is one of the samplers, else a ValidationError."""
    if not isinstance(sampling, HyperParameterSampling):
        raise ValidationError(
            "hyperparameter_sampling",
            f"expected RandomParameterSampling, GridParameterSampling or "
            f"BayesianParameterSampling, not {sampling!r}",
        )
    return sampling


def check_policy(policy: Any) -> EarlyTerminationPolicy:
    """The policy a tuning run uses (None: NoTerminationPolicy, as in v1), whatever its
    sampling. Unlike v1, Bayesian sampling takes a policy too: a stopped child is told to
    the study as pruned (with its last value), which Optuna's TPE learns from, so poor
    regions cost fewer epochs."""
    if policy is None:
        return NoTerminationPolicy()
    if not isinstance(policy, EarlyTerminationPolicy):
        raise ValidationError(
            "policy",
            f"expected BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy, "
            f"NoTerminationPolicy or None, not {policy!r}",
        )
    return policy


def check_primary_metric(name: Any, goal: Any) -> tuple[str, PrimaryMetricGoal]:
    """The primary metric's name (a valid metric name) and goal."""
    return check_metric_name("primary_metric_name", name), PrimaryMetricGoal.of(goal)


def total_children(sampling: HyperParameterSampling, max_total_runs: int | None) -> int | None:
    """How many children the tuning run makes at most: ``max_total_runs``, and never more than
    a grid's combinations (None: no limit, until ``max_duration_minutes`` or a cancel)."""
    if isinstance(sampling, GridParameterSampling):
        return sampling.count if max_total_runs is None else min(sampling.count, max_total_runs)
    return max_total_runs


__all__ = [
    "check_policy",
    "check_primary_metric",
    "check_run_limits",
    "check_sampling",
    "total_children",
]
