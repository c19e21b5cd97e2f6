"""The checks a tuning run's configuration passes at submission."""

from __future__ import annotations

import pytest

from modelyard.errors import ValidationError
from modelyard.train.hyperdrive import (
    BanditPolicy,
    BayesianParameterSampling,
    GridParameterSampling,
    NoTerminationPolicy,
    PrimaryMetricGoal,
    RandomParameterSampling,
    choice,
    uniform,
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


def test_every_sampling_takes_a_termination_policy_bayesian_too() -> None:
    bayesian = BayesianParameterSampling({"a": uniform(0, 1)})
    assert check_policy(bayesian, None) == NoTerminationPolicy()
    assert check_policy(bayesian, NoTerminationPolicy()) == NoTerminationPolicy()
    # Beyond v1, which refused it: stopped children are told to the study as pruned.
    bandit_for_bayesian = BanditPolicy(slack_factor=0.1)
    assert check_policy(bayesian, bandit_for_bayesian) is bandit_for_bayesian
    random = RandomParameterSampling({"a": uniform(0, 1)})
    bandit = BanditPolicy(slack_factor=0.1)
    assert check_policy(random, bandit) is bandit
    with pytest.raises(ValidationError, match="expected BanditPolicy"):
        check_policy(random, "bandit")


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
