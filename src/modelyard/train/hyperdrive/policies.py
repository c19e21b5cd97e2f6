"""Early termination: which children of a tuning run to stop, as v1 defines each policy
(v1's ``azureml.train.hyperdrive.policy``).

Each policy has a pure decision function, :meth:`EarlyTerminationPolicy.decide`: given the
goal and, per child, the primary metric's values as logged so far (in order; a child may be
finished), it returns the children to stop now, each with a reason naming the policy and the
figures that decided it. A driver calls it whenever new values arrive and cancels those.

As in v1, each logged value of the primary metric is one *interval*; a policy evaluates at the
intervals that are multiples of ``evaluation_interval`` and at least ``delay_evaluation``
(interval 1 is the first value). A running child is judged at its latest such interval ``N``
against the other children's figures at that same interval (every child, finished or running,
that logged at least ``N`` values): so a child young in training is compared with the older
children's performance when they were as old. Finished children are compared with, never
stopped. A value that is not a number (NaN) counts as the worst possible.

- :class:`BanditPolicy`: stops a child whose best value by interval ``N`` is outside the slack
  of the best value any child had by interval ``N``. v1's slack_factor ``s``: to maximize, the
  child must reach ``best / (1 + s)`` (v1's example: ``Y + Y * s`` compared with the best); to
  minimize, stay below ``best * (1 + s)``. For a negative best the slack is taken on its size
  (``best - |best| * s / (1 + s)``, ``best + |best| * s``), so the best child is never outside
  its own slack. slack_amount ``a``: within ``best - a`` (maximize) or ``best + a`` (minimize).
- :class:`MedianStoppingPolicy`: stops a child whose best value by interval ``N`` is worse
  than the median of the running averages (the mean of the first ``N`` values) of all
  children at ``N``, itself included.
- :class:`TruncationSelectionPolicy`: at interval ``N``, ranks the children by their value at
  ``N`` and stops the running ones among the lowest ``truncation_percentage`` percent
  (``floor(children * percentage / 100)`` of them: with too few children to make up one whole
  percentage, none). ``exclude_finished_jobs=True`` leaves finished children out of the
  ranking.
- :class:`NoTerminationPolicy`: stops none.

Example::

    policy = BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=2)
    policy.decide(PrimaryMetricGoal.MAXIMIZE,
                  {"run_1": [0.80, 0.90, 0.93], "run_2": [0.30, 0.35, 0.41]},
                  metric_name="validation_acc")
    # [Stop(child='run_2', reason='BanditPolicy: validation_acc 0.41 (its best by interval
    #  3) is outside slack_factor 0.1 of the best by interval 3, 0.93 (threshold 0.845455)')]
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from modelyard.errors import ValidationError
from modelyard.train import v1_arguments
from modelyard.train.hyperdrive.goal import PrimaryMetricGoal


@dataclass(frozen=True)
class ChildMetrics:
    """One child's primary metric as logged so far, and whether the child has ended.

    Example::

        ChildMetrics([0.5, 0.61, 0.7], finished=True)
    """

    values: Sequence[float]
    finished: bool = False


@dataclass(frozen=True)
class Stop:
    """A child to stop, and why (the text to record with its cancellation)."""

    child: str
    reason: str


Children = Mapping[str, ChildMetrics | Sequence[float]]


def _figure(value: float) -> str:
    return f"{value:.6g}"


def _int(field: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(field, f"expected an integer of at least {minimum}, not {value!r}")
    return value


class EarlyTerminationPolicy:
    """What the policies share: when they evaluate, the decision, and JSON.

    Example::

        EarlyTerminationPolicy.from_dict(policy.to_dict())          # the same policy
    """

    POLICY_NAME: ClassVar[str] = ""

    def __init__(self, evaluation_interval: int = 1, delay_evaluation: int = 0) -> None:
        self.evaluation_interval = _int("evaluation_interval", evaluation_interval, 1)
        self.delay_evaluation = _int("delay_evaluation", delay_evaluation, 0)

    def evaluates_at(self, interval: int) -> bool:
        """Whether the policy evaluates at ``interval`` (1 is the first logged value)."""
        return (
            interval >= 1
            and interval % self.evaluation_interval == 0
            and interval >= self.delay_evaluation
        )

    def latest_evaluation(self, count: int) -> int | None:
        """The latest interval at most ``count`` at which the policy evaluates, if any."""
        interval = count - count % self.evaluation_interval
        return interval if interval >= 1 and self.evaluates_at(interval) else None

    def decide(
        self,
        goal: PrimaryMetricGoal | str,
        children: Children,
        metric_name: str = "primary metric",
    ) -> list[Stop]:
        """The running children to stop now, in the order given (see the module docstring).

        ``children`` maps each child's key to its :class:`ChildMetrics`, or to its values
        alone (a running child).
        """
        goal = PrimaryMetricGoal.of(goal)
        series = {key: _as_metrics(goal, child) for key, child in children.items()}
        stops: list[Stop] = []
        for key, (values, finished) in series.items():
            interval = None if finished else self.latest_evaluation(len(values))
            if interval is None:
                continue
            reason = self._judge(goal, key, interval, series, metric_name)
            if reason is not None:
                stops.append(Stop(key, f"{type(self).__name__}: {reason}"))
        return stops

    def _judge(
        self,
        goal: PrimaryMetricGoal,
        key: str,
        interval: int,
        series: dict[str, tuple[list[float], bool]],
        metric_name: str,
    ) -> str | None:
        return None

    def _arguments(self) -> dict[str, Any]:
        return {
            "evaluation_interval": self.evaluation_interval,
            "delay_evaluation": self.delay_evaluation,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, read back with :meth:`from_dict`."""
        return {"type": self.POLICY_NAME, **self._arguments()}

    @staticmethod
    def from_dict(data: Mapping[str, Any] | None) -> EarlyTerminationPolicy:
        """The policy ``to_dict`` wrote (None: no termination, as v1's ``policy=None``)."""
        if data is None:
            return NoTerminationPolicy()
        kinds: dict[str, type[EarlyTerminationPolicy]] = {
            kind.POLICY_NAME: kind
            for kind in (
                BanditPolicy,
                MedianStoppingPolicy,
                TruncationSelectionPolicy,
                NoTerminationPolicy,
            )
        }
        kind = data.get("type")
        if kind not in kinds:
            raise ValidationError(
                "policy", f"unknown policy {kind!r}; expected one of {', '.join(kinds)}"
            )
        arguments = {name: value for name, value in data.items() if name != "type"}
        return kinds[kind](**arguments)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={value!r}" for name, value in self._arguments().items())
        return f"{type(self).__name__}({arguments})"


def _as_metrics(
    goal: PrimaryMetricGoal, child: ChildMetrics | Sequence[float]
) -> tuple[list[float], bool]:
    metrics = child if isinstance(child, ChildMetrics) else ChildMetrics(child)
    worst = -math.inf if goal is PrimaryMetricGoal.MAXIMIZE else math.inf
    values = []
    for value in metrics.values:
        number = float(value)
        values.append(worst if math.isnan(number) else number)
    return values, metrics.finished


def _cohort(
    series: dict[str, tuple[list[float], bool]], interval: int, exclude_finished: bool = False
) -> dict[str, list[float]]:
    """The first ``interval`` values of every child that logged that many."""
    return {
        key: values[:interval]
        for key, (values, finished) in series.items()
        if len(values) >= interval and not (exclude_finished and finished)
    }


class BanditPolicy(EarlyTerminationPolicy):
    """Stop a child outside a slack of the best child at the same interval (v1 signature).

    Exactly one of ``slack_factor`` (a ratio) and ``slack_amount`` (in the metric's units).

    Example::

        BanditPolicy(evaluation_interval=1, slack_factor=0.1, delay_evaluation=5)
    """

    POLICY_NAME = "Bandit"

    def __init__(
        self,
        evaluation_interval: int = 1,
        slack_factor: float | None = None,
        slack_amount: float | None = None,
        delay_evaluation: int = 0,
        **unknown: Any,
    ) -> None:
        v1_arguments.check_unknown(
            "BanditPolicy",
            unknown,
            ["evaluation_interval", "slack_factor", "slack_amount", "delay_evaluation"],
        )
        super().__init__(evaluation_interval, delay_evaluation)
        if (slack_factor is None) == (slack_amount is None):
            raise ValidationError(
                "slack_factor",
                "give exactly one of slack_factor (a ratio, e.g. 0.1) and slack_amount (in the "
                "metric's units, e.g. 0.05)",
            )
        for name, value in (("slack_factor", slack_factor), ("slack_amount", slack_amount)):
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValidationError(name, f"expected a number of at least 0, not {value!r}")
        self.slack_factor = slack_factor
        self.slack_amount = slack_amount

    def _arguments(self) -> dict[str, Any]:
        return {
            "evaluation_interval": self.evaluation_interval,
            "slack_factor": self.slack_factor,
            "slack_amount": self.slack_amount,
            "delay_evaluation": self.delay_evaluation,
        }

    def threshold(self, goal: PrimaryMetricGoal, best: float) -> float:
        """The worst figure still within the slack of ``best``."""
        maximize = goal is PrimaryMetricGoal.MAXIMIZE
        if self.slack_amount is not None:
            return best - self.slack_amount if maximize else best + self.slack_amount
        factor = float(self.slack_factor or 0.0)
        if maximize:
            return best - abs(best) * factor / (1 + factor)
        return best + abs(best) * factor

    def _judge(
        self,
        goal: PrimaryMetricGoal,
        key: str,
        interval: int,
        series: dict[str, tuple[list[float], bool]],
        metric_name: str,
    ) -> str | None:
        cohort = _cohort(series, interval)
        best = goal.best(goal.best(values) for values in cohort.values())
        figure = goal.best(cohort[key])
        threshold = self.threshold(goal, best)
        if not goal.better(threshold, figure):
            return None
        slack = (
            f"slack_factor {self.slack_factor:g}"
            if self.slack_factor is not None
            else f"slack_amount {self.slack_amount:g}"
        )
        return (
            f"{metric_name} {_figure(figure)} (its best by interval {interval}) is outside "
            f"{slack} of the best by interval {interval}, {_figure(best)} "
            f"(threshold {_figure(threshold)})"
        )


class MedianStoppingPolicy(EarlyTerminationPolicy):
    """Stop a child whose best is worse than the median of all children's running averages
    at the same interval (v1 signature; v1's default ``delay_evaluation`` is 0).

    Example::

        MedianStoppingPolicy(evaluation_interval=1, delay_evaluation=5)
    """

    POLICY_NAME = "MedianStopping"

    def __init__(
        self, evaluation_interval: int = 1, delay_evaluation: int = 0, **unknown: Any
    ) -> None:
        v1_arguments.check_unknown(
            "MedianStoppingPolicy", unknown, ["evaluation_interval", "delay_evaluation"]
        )
        super().__init__(evaluation_interval, delay_evaluation)

    def _judge(
        self,
        goal: PrimaryMetricGoal,
        key: str,
        interval: int,
        series: dict[str, tuple[list[float], bool]],
        metric_name: str,
    ) -> str | None:
        cohort = _cohort(series, interval)
        averages = [statistics.fmean(values) for values in cohort.values()]
        median = statistics.median(averages)
        figure = goal.best(cohort[key])
        if not goal.better(median, figure):
            return None
        return (
            f"{metric_name} {_figure(figure)} (its best by interval {interval}) is worse than "
            f"the median {_figure(median)} of the running averages of the {len(cohort)} "
            f"children at interval {interval}"
        )


class TruncationSelectionPolicy(EarlyTerminationPolicy):
    """Stop the lowest ``truncation_percentage`` percent of the children at each evaluation
    interval (v1 signature, with ``exclude_finished_jobs``).

    Example::

        TruncationSelectionPolicy(truncation_percentage=20, evaluation_interval=1,
                                  delay_evaluation=5)
    """

    POLICY_NAME = "TruncationSelection"

    def __init__(
        self,
        truncation_percentage: int,
        evaluation_interval: int = 1,
        delay_evaluation: int = 0,
        exclude_finished_jobs: bool = False,
        **unknown: Any,
    ) -> None:
        v1_arguments.check_unknown(
            "TruncationSelectionPolicy",
            unknown,
            [
                "truncation_percentage",
                "evaluation_interval",
                "delay_evaluation",
                "exclude_finished_jobs",
            ],
        )
        super().__init__(evaluation_interval, delay_evaluation)
        if (
            isinstance(truncation_percentage, bool)
            or not isinstance(truncation_percentage, int)
            or not 1 <= truncation_percentage <= 99
        ):
            raise ValidationError(
                "truncation_percentage",
                f"expected an integer from 1 to 99 (a percentage), not {truncation_percentage!r}",
            )
        if not isinstance(exclude_finished_jobs, bool):
            raise ValidationError(
                "exclude_finished_jobs", f"expected True or False, not {exclude_finished_jobs!r}"
            )
        self.truncation_percentage = truncation_percentage
        self.exclude_finished_jobs = exclude_finished_jobs

    def _arguments(self) -> dict[str, Any]:
        return {
            "truncation_percentage": self.truncation_percentage,
            "evaluation_interval": self.evaluation_interval,
            "delay_evaluation": self.delay_evaluation,
            "exclude_finished_jobs": self.exclude_finished_jobs,
        }

    def _judge(
        self,
        goal: PrimaryMetricGoal,
        key: str,
        interval: int,
        series: dict[str, tuple[list[float], bool]],
        metric_name: str,
    ) -> str | None:
        cohort = _cohort(series, interval, self.exclude_finished_jobs)
        # Worst first; equal values keep the order the children were given in.
        ranked = sorted(cohort, key=lambda k: goal.worse_first(cohort[k][-1]))
        truncated = len(cohort) * self.truncation_percentage // 100
        if key not in ranked[:truncated]:
            return None
        rank = len(ranked) - ranked.index(key)
        return (
            f"{metric_name} {_figure(cohort[key][-1])} at interval {interval} is in the lowest "
            f"{self.truncation_percentage}% of the {len(cohort)} children at interval "
            f"{interval} (ranked {rank} of {len(cohort)}; the lowest {truncated} are stopped)"
        )


class NoTerminationPolicy(EarlyTerminationPolicy):
    """Stop no child: every child runs to its end (v1's, and v1's choice with Bayesian).

    Example::

        NoTerminationPolicy().decide("MAXIMIZE", {"run_1": [0.1]})     # []
    """

    POLICY_NAME = "Default"

    def __init__(self, **unknown: Any) -> None:
        v1_arguments.check_unknown("NoTerminationPolicy", unknown, [])
        super().__init__()

    def _arguments(self) -> dict[str, Any]:
        return {}


__all__ = [
    "BanditPolicy",
    "ChildMetrics",
    "EarlyTerminationPolicy",
    "MedianStoppingPolicy",
    "NoTerminationPolicy",
    "Stop",
    "TruncationSelectionPolicy",
]
