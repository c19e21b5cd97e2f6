"""What the SDK asks of a compute target, whatever runs the runs there.

A run is submitted in two halves: the SDK stores it (its snapshot, its job, status Queued)
through the Backend contract, and then tells the run's compute target that a run is waiting.
The target's side (the local agent today, a Ray cluster next) claims queued runs from the
backend and starts a supervisor for each. The SDK never reaches the runner any other way.

Example::

    compute = compute_for(ws, "local")     # modelyard.compute
    compute.check(spec)                    # ComputeTargetException: what it cannot run
    ...                                    # store the run, Queued
    compute.queued()                       # "a run is waiting"
"""

from __future__ import annotations

import abc

from modelyard.runner.job import JobSpec


class Compute(abc.ABC):
    """One compute target's client side."""

    name: str

    @abc.abstractmethod
    def check(self, spec: JobSpec) -> None:
        """Raise ComputeTargetException when this target cannot run ``spec`` (before anything
        of the run is stored)."""

    @abc.abstractmethod
    def queued(self) -> None:
        """A run was queued here: make sure something will start it."""

    @abc.abstractmethod
    def cancel_requested(self) -> None:
        """A run of this target was asked to cancel: have it noticed now."""

    @abc.abstractmethod
    def max_concurrent_runs(self) -> int:
        """How many runs execute at once here; the rest wait in Queued, first in, first out."""
