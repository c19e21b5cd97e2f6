"""Each early-termination policy stops exactly the children v1's definition says, on hand-made
metric series: both goals, the delay and interval edges, finished children, and reasons that
carry the figures."""

from __future__ import annotations

import json
import math

import pytest

from modelyard.errors import ValidationError
from modelyard.train.hyperdrive import (
    BanditPolicy,
    EarlyTerminationPolicy,
    MedianStoppingPolicy,
    NoTerminationPolicy,
    PrimaryMetricGoal,
    TruncationSelectionPolicy,
)
from modelyard.train.hyperdrive.policies import ChildMetrics, Stop

MAX, MIN = PrimaryMetricGoal.MAXIMIZE, PrimaryMetricGoal.MINIMIZE


def negated(children: dict[str, list[float]]) -> dict[str, list[float]]:
    return {key: [-v for v in values] for key, values in children.items()}


def stopped(stops: list[Stop]) -> list[str]:
    return [stop.child for stop in stops]


# Bandit -------------------------------------------------------------------------------------


def test_bandit_slack_factor_compares_with_the_best_at_the_same_interval() -> None:
    policy = BanditPolicy(slack_factor=0.1)
    children = {"a": [0.5, 0.93], "b": [0.5, 0.80], "c": [0.5, 0.85]}
    stops = policy.decide(MAX, children, metric_name="validation_acc")
    # v1: stopped when Y + Y * 0.1 < best, i.e. below 0.93 / 1.1 = 0.845455.
    assert stopped(stops) == ["b"]
    assert stops[0].reason == (
        "BanditPolicy: validation_acc 0.8 (its best by interval 2) is outside slack_factor 0.1 "
        "of the best by interval 2, 0.93 (threshold 0.845455)"
    )
    # At interval 1 they were level: none stopped.
    assert policy.decide(MAX, {k: v[:1] for k, v in children.items()}) == []


def test_bandit_slack_factor_when_minimizing() -> None:
    policy = BanditPolicy(slack_factor=0.1)
    children = {"a": [2.0, 1.0], "b": [2.0, 1.15], "c": [2.0, 1.05]}
    stops = policy.decide(MIN, children, metric_name="loss")
    assert stopped(stops) == ["b"]  # above 1.0 * 1.1
    assert "loss 1.15" in stops[0].reason and "threshold 1.1)" in stops[0].reason


def test_bandit_slack_amount_for_both_goals() -> None:
    policy = BanditPolicy(slack_amount=0.2)
    children = {"a": [0.9], "b": [0.65], "c": [0.75]}
    assert stopped(policy.decide(MAX, children)) == ["b"]  # below 0.9 - 0.2
    assert stopped(policy.decide(MIN, negated(children))) == ["b"]  # above -0.9 + 0.2
    reason = policy.decide(MAX, children, "acc")[0].reason
    assert "slack_amount 0.2" in reason and "threshold 0.7)" in reason


def test_bandit_judges_a_child_by_its_best_so_far() -> None:
    policy = BanditPolicy(slack_factor=0.1)
    children = {"leader": [0.95, 0.95], "dipped": [0.9, 0.5]}
    assert policy.decide(MAX, children) == []


def test_bandit_with_a_negative_metric_never_stops_the_best() -> None:
    policy = BanditPolicy(slack_factor=0.1)
    children = {"best": [-1.0], "near": [-1.05], "far": [-1.2]}
    # threshold -1 - 1 * 0.1 / 1.1 = -1.0909
    assert stopped(policy.decide(MAX, children)) == ["far"]


def test_policies_evaluate_only_from_the_delay_on_and_at_multiples_of_the_interval() -> None:
    poor = [0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    good = [0.9, 0.9, 0.9, 0.9, 0.9, 0.9]

    def stops_at(policy: EarlyTerminationPolicy, length: int) -> list[str]:
        return stopped(policy.decide(MAX, {"good": good, "poor": poor[:length]}))

    delayed = BanditPolicy(slack_factor=0.1, delay_evaluation=3)
    assert [bool(stops_at(delayed, n)) for n in range(1, 7)] == [
        False,
        False,
        True,
        True,
        True,
        True,
    ]
    every_two = BanditPolicy(slack_factor=0.1, evaluation_interval=2, delay_evaluation=3)
    # Intervals 4 and 6 only (multiples of 2, at least 3); at 5 it is judged as at 4.
    assert [bool(stops_at(every_two, n)) for n in range(1, 7)] == [
        False,
        False,
        False,
        True,
        True,
        True,
    ]
    assert every_two.evaluates_at(4) and not every_two.evaluates_at(5)
    assert not every_two.evaluates_at(2) and every_two.latest_evaluation(5) == 4
    assert every_two.latest_evaluation(3) is None


def test_a_child_is_judged_at_its_latest_evaluation_interval() -> None:
    """With interval 2, a child that logged 3 values is judged at 2, not at 3."""
    policy = BanditPolicy(slack_factor=0.1, evaluation_interval=2)
    children = {"good": [0.9, 0.9, 0.9], "late_drop": [0.9, 0.9, 0.1]}
    assert policy.decide(MAX, children) == []
    falls = {"good": [0.9, 0.9, 0.9], "slow": [0.1, 0.2, 0.95]}
    stops = policy.decide(MAX, falls)
    assert stopped(stops) == ["slow"] and "interval 2" in stops[0].reason


def test_finished_children_are_compared_with_but_never_stopped() -> None:
    policy = BanditPolicy(slack_factor=0.1)
    children = {
        "finished_best": ChildMetrics([0.9, 0.95], finished=True),
        "finished_poor": ChildMetrics([0.1, 0.1], finished=True),
        "running": [0.5, 0.6],
    }
    assert stopped(policy.decide(MAX, children)) == ["running"]


def test_a_value_that_is_not_a_number_counts_as_the_worst() -> None:
    policy = BanditPolicy(slack_factor=0.1)
    children = {"a": [0.9], "b": [math.nan]}
    assert stopped(policy.decide(MAX, children)) == ["b"]
    assert stopped(policy.decide(MIN, children)) == ["b"]


# Median stopping ----------------------------------------------------------------------------

MEDIAN_CHILDREN = {
    "a": [0.1, 0.2, 0.3],  # average 0.2, best 0.3
    "b": [0.5, 0.6, 0.7],  # average 0.6, best 0.7
    "c": [0.8, 0.8, 0.9],  # average 0.833
    "d": [0.4, 0.4, 0.4],  # average 0.4, best 0.4
}


def test_median_stopping_compares_the_best_with_the_median_of_running_averages() -> None:
    policy = MedianStoppingPolicy()
    assert policy.delay_evaluation == 0  # v1's default
    stops = policy.decide(MAX, MEDIAN_CHILDREN, metric_name="acc")
    # The median of 0.2, 0.4, 0.6 and 0.833 is 0.5.
    assert stopped(stops) == ["a", "d"]
    assert stops[0].reason == (
        "MedianStoppingPolicy: acc 0.3 (its best by interval 3) is worse than the median 0.5 of "
        "the running averages of the 4 children at interval 3"
    )
    assert stopped(policy.decide(MIN, negated(MEDIAN_CHILDREN))) == ["a", "d"]


def test_median_stopping_respects_its_delay_and_uses_children_as_old() -> None:
    assert MedianStoppingPolicy(delay_evaluation=4).decide(MAX, MEDIAN_CHILDREN) == []
    # A young child (2 values) is compared with the others' first 2 values.
    young = {**MEDIAN_CHILDREN, "young": [0.1, 0.15]}
    stops = MedianStoppingPolicy().decide(MAX, young)
    assert "young" in stopped(stops)
    reason = next(s.reason for s in stops if s.child == "young")
    assert "at interval 2" in reason and "of the 5 children" in reason


def test_a_lone_child_is_never_below_its_own_median() -> None:
    assert MedianStoppingPolicy().decide(MAX, {"only": [0.1, 0.05, 0.01]}) == []


# Truncation selection -----------------------------------------------------------------------

FIVE = {"a": [0.5, 0.9], "b": [0.5, 0.2], "c": [0.5, 0.6], "d": [0.5, 0.4], "e": [0.5, 0.7]}


def test_truncation_stops_the_lowest_percentage_at_the_interval() -> None:
    stops = TruncationSelectionPolicy(20).decide(MAX, FIVE, metric_name="acc")
    assert stopped(stops) == ["b"]
    assert stops[0].reason == (
        "TruncationSelectionPolicy: acc 0.2 at interval 2 is in the lowest 20% of the 5 "
        "children at interval 2 (ranked 5 of 5; the lowest 1 are stopped)"
    )
    assert stopped(TruncationSelectionPolicy(40).decide(MAX, FIVE)) == ["b", "d"]
    assert stopped(TruncationSelectionPolicy(40).decide(MIN, FIVE)) == ["a", "e"]


def test_truncation_with_too_few_children_for_one_whole_share_stops_none() -> None:
    four = {k: v for k, v in FIVE.items() if k != "a"}
    assert TruncationSelectionPolicy(20).decide(MAX, four) == []
    assert stopped(TruncationSelectionPolicy(25).decide(MAX, four)) == ["b"]


def test_truncation_counts_finished_children_unless_told_to_exclude_them() -> None:
    children: dict[str, ChildMetrics | list[float]] = {
        **FIVE,
        "b": ChildMetrics([0.5, 0.2], finished=True),
    }
    # The finished child takes the lowest place: no running child is in the lowest 25%.
    assert TruncationSelectionPolicy(25).decide(MAX, children) == []
    excluding = TruncationSelectionPolicy(25, exclude_finished_jobs=True)
    assert stopped(excluding.decide(MAX, children)) == ["d"]


def test_truncation_respects_its_delay() -> None:
    assert TruncationSelectionPolicy(40, delay_evaluation=3).decide(MAX, FIVE) == []
    # At interval 1 they are level; ties keep the children's order, so the first are lowest.
    assert stopped(
        TruncationSelectionPolicy(40).decide(MAX, {k: v[:1] for k, v in FIVE.items()})
    ) == [
        "a",
        "b",
    ]


# No termination, JSON and bad arguments -----------------------------------------------------


def test_no_termination_stops_none() -> None:
    assert NoTerminationPolicy().decide(MAX, {"a": [0.9], "b": [0.0]}) == []


@pytest.mark.parametrize(
    "policy",
    [
        BanditPolicy(evaluation_interval=2, slack_factor=0.15, delay_evaluation=10),
        BanditPolicy(slack_amount=0.05),
        MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=5),
        TruncationSelectionPolicy(20, 2, 4, exclude_finished_jobs=True),
        NoTerminationPolicy(),
    ],
    ids=repr,
)
def test_every_policy_goes_to_json_and_back(policy: EarlyTerminationPolicy) -> None:
    assert EarlyTerminationPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy


def test_no_policy_in_json_is_no_termination() -> None:
    assert EarlyTerminationPolicy.from_dict(None) == NoTerminationPolicy()


@pytest.mark.parametrize(
    ("make", "field", "words"),
    [
        (lambda: BanditPolicy(), "slack_factor", "exactly one of slack_factor"),
        (lambda: BanditPolicy(slack_factor=0.1, slack_amount=0.1), "slack_factor", "exactly one"),
        (lambda: BanditPolicy(slack_factor=-0.1), "slack_factor", "at least 0"),
        (lambda: BanditPolicy(slack_amount="x"), "slack_amount", "at least 0"),
        (lambda: BanditPolicy(0, slack_factor=0.1), "evaluation_interval", "at least 1"),
        (
            lambda: BanditPolicy(slack_factor=0.1, delay_evaluation=-1),
            "delay_evaluation",
            "least 0",
        ),
        (lambda: BanditPolicy(slack_fator=0.1), "slack_fator", "did you mean slack_factor?"),
        (lambda: MedianStoppingPolicy(evaluation_interval=1.5), "evaluation_interval", "integer"),
        (lambda: MedianStoppingPolicy(slack_factor=0.1), "slack_factor", "not an argument"),
        (lambda: TruncationSelectionPolicy(0), "truncation_percentage", "from 1 to 99"),
        (lambda: TruncationSelectionPolicy(100), "truncation_percentage", "from 1 to 99"),
        (
            lambda: TruncationSelectionPolicy(10, exclude_finished_jobs=1),
            "exclude_finished_jobs",
            "True",
        ),
        (lambda: NoTerminationPolicy(delay_evaluation=1), "delay_evaluation", "not an argument"),
    ],
)
def test_bad_policy_arguments_are_refused_naming_the_argument(make, field: str, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as caught:
        make()
    assert caught.value.field == field
    assert words in str(caught.value)


def test_an_unknown_policy_or_goal_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown policy 'Hyperband'"):
        EarlyTerminationPolicy.from_dict({"type": "Hyperband"})
    with pytest.raises(ValidationError, match="is not a goal"):
        BanditPolicy(slack_factor=0.1).decide("LARGER", {"a": [1.0]})
    assert PrimaryMetricGoal.of("maximize") is MAX
