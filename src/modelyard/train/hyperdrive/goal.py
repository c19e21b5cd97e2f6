"""Whether the primary metric is to be made large or small (v1's ``PrimaryMetricGoal``).

Example::

    PrimaryMetricGoal.MAXIMIZE.better(0.93, 0.41)       # True
    PrimaryMetricGoal.of("minimize") is PrimaryMetricGoal.MINIMIZE
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from modelyard.errors import ValidationError


class PrimaryMetricGoal(StrEnum):
    """v1's two goals; the value is v1's text (``"MAXIMIZE"``), which JSON keeps.

    Example::

        HyperDriveConfig(..., primary_metric_goal=PrimaryMetricGoal.MAXIMIZE)
    """

    MAXIMIZE = "MAXIMIZE"
    MINIMIZE = "MINIMIZE"

    @classmethod
    def of(cls, value: object) -> PrimaryMetricGoal:
        """The goal ``value`` names: a PrimaryMetricGoal, or its text in any case."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        raise ValidationError(
            "primary_metric_goal",
            f"{value!r} is not a goal; use PrimaryMetricGoal.MAXIMIZE or "
            "PrimaryMetricGoal.MINIMIZE",
        )

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self is PrimaryMetricGoal.MAXIMIZE else a < b

    def best(self, values: Iterable[float]) -> float:
        """The best of ``values`` (at least one)."""
        return max(values) if self is PrimaryMetricGoal.MAXIMIZE else min(values)

    def worse_first(self, value: float) -> float:
        """A sort key that puts the worst values first."""
        return value if self is PrimaryMetricGoal.MAXIMIZE else -value


__all__ = ["PrimaryMetricGoal"]
