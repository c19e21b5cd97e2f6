"""The checks a tuning run's configuration passes at submission."""

from __future__ import annotations

import pytest

from modelyard.errors import ValidationError
from modelyard.train.hyperdrive import (
    BanditPolicy,
    GridParameterSampling,
    NoTerminationPolicy,
    PrimaryMetricGoal,
    RandomParameterSampling,
    choice,
)
from modelyard.train.hyperdrive.config_checks import (
    check_policy,
    check_primary_metric,
    check_run_limits,
    check_sampling,
    total_children,
)


def test_more_concurrent_runs_than_runs_in_all_is_refused() -> None:
    assert check_run_limits(8, 4) == (8, 4)
    assert check_run_limits(4, 4) == (4, 4)
    assert check_run_limits(None, 4) == (None, 4)
    with pytest.raises(ValidationError) as caught:
        check_run_limits(4, 8)
    assert caught.value.field == "max_concurrent_runs"
    assert "8 is more than max_total_runs (4)" in str(caught.value)
    assert "lower max_concurrent_runs to 4 or less" in str(caught.value)


@pytest.mark.parametrize(("total", "concurrent"), [(0, 1), (2, 0), (2.5, 1), (True, 1)])
def test_run_limits_are_positive_integers(total: object, concurrent: object) -> None:
    with pytest.raises(ValidationError, match="integer of at least 1"):
        check_run_limits(total, concurrent)  # type: ignore[arg-type]


def test_the_policy_is_checked_and_none_means_no_termination() -> None:
    assert check_policy(None) == NoTerminationPolicy()
    assert check_policy(NoTerminationPolicy()) == NoTerminationPolicy()
    # Whatever the sampling, Bayesian too (beyond v1, which refused a policy with it).
    bandit = BanditPolicy(slack_factor=0.1)
    assert check_policy(bandit) is bandit
    with pytest.raises(ValidationError, match="expected BanditPolicy"):
        check_policy("bandit")


def test_sampling_metric_and_goal_are_checked() -> None:
    with pytest.raises(ValidationError, match="expected RandomParameterSampling"):
        check_sampling({"a": choice(1)})
    assert check_primary_metric("validation_acc", "maximize") == (
        "validation_acc",
        PrimaryMetricGoal.MAXIMIZE,
    )
    with pytest.raises(ValidationError) as caught:
        check_primary_metric("", PrimaryMetricGoal.MINIMIZE)
    assert caught.value.field == "primary_metric_name"


def test_a_grid_makes_no_more_children_than_its_combinations() -> None:
    grid = GridParameterSampling({"a": choice(1, 2, 3), "b": choice(1, 2)})
    assert total_children(grid, 20) == 6
    assert total_children(grid, 4) == 4
    assert total_children(grid, None) == 6
    assert total_children(RandomParameterSampling({"a": choice(1)}), 20) == 20
