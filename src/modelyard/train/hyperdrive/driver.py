"""The driver of a tuning run: it samples configurations, starts children, stops poor ones.

The workspace's local agent starts it, in a process of its own on the local compute's machine
(``python -m modelyard.train.hyperdrive.driver <workspace folder> <workspace> <run id>``),
when the tuning run is queued, and again whenever a driver of a run that has not ended is
gone (killed with SIGKILL, its machine restarted): so it survives the client that submitted
the run, and a driver killed at any point carries on where the last one stopped. It knows the
workspace only through the Backend contract, and keeps nothing of its own: what it has done
is in the store as it goes, in the children themselves.

- **Children** are ordinary runs of the tuning run's experiment, on the children's compute
  target, with ids ``<run id>_<n>`` (v1's shape) and their configuration in the
  ``hyperparameters`` property, stored before the child is queued
  (:func:`~modelyard.runner.job.queue_job`). A restarted driver counts them: random and grid
  configurations are a function of the index, so none is repeated or skipped; a child left
  half-made (stored, not queued) is queued; a Bayesian study is made again from the children,
  those still running included.
- **Every poll** (``POLL_INTERVAL_S``), it reads the children's states and their new points
  of the primary metric, tells ended children to the Bayesian study, applies the policy (a
  stopped child gets a cancel request whose error is the policy's reason, which its
  supervisor records with Canceled), and starts children while fewer than
  ``max_concurrent_runs`` are active, until ``max_total_runs`` were made or
  ``max_duration_minutes`` has passed.
- **Failing early**: when the first children (as many as run at once) all failed, the tuning
  run fails with the first one's error (a script refusing its parameters, say); when they all
  ended without logging the primary metric, it fails saying so. The other children are
  canceled.
- **Ending**: once every child has ended, the run is Completed with its best child and figure
  in its properties (``best_child_run_id``, ``best_metric``), or Failed when none completed.
  A cancel request of the tuning run cancels its children first, then records Canceled.
- **Its lease** is renewed every ``HEARTBEAT_INTERVAL_S`` under a name of the run's own
  (:func:`~modelyard.runner.local_compute.driver_holder`), so the driver an agent starts again
  holds it as the first one did. A file lock in the run's folder of the local compute keeps
  a second driver of the same run from starting.
- **SIGTERM** (the agent stopping): the driver stops at its next poll and leaves the run as it
  is, for the next agent's driver. What it does goes to the run's
  ``system_logs/hyperdrive.txt``.

Example::

    Driver(backend, run_id, wake=lambda: None).run()       # what main() does
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from modelyard.backend.base import Backend, every_item
from modelyard.backend.records import (
    CANCEL_REQUESTED,
    CANCELED,
    COMPLETED,
    FAILED,
    NOT_STARTED,
    PREPARING,
    RUNNING,
    TERMINAL_STATES,
    RunRecord,
)
from modelyard.backend.workspace_folder import open_backend, read_workspace_file
from modelyard.errors import ConflictError, ModelyardError, NotFoundError, StorageError
from modelyard.run import SCRIPT
from modelyard.runner.job import Argument, JobSpec, queue_job
from modelyard.runner.local_compute import compute_dir, driver_holder, wake
from modelyard.runner.process_identity import start_time
from modelyard.store.private import write_private_file
from modelyard.train.hyperdrive import bayesian_study
from modelyard.train.hyperdrive.bayesian_study import BayesianStudy, Observation
from modelyard.train.hyperdrive.goal import PrimaryMetricGoal
from modelyard.train.hyperdrive.plan import (
    BEST_CHILD_PROPERTY,
    BEST_METRIC_PROPERTY,
    CONFIG_FILE,
    HYPERPARAMETERS_PROPERTY,
    LOG_FILE,
    RESUMED_FROM_PROPERTY,
    TuningPlan,
)
from modelyard.train.hyperdrive.policies import ChildMetrics, EarlyTerminationPolicy
from modelyard.train.hyperdrive.sampling import (
    BayesianParameterSampling,
    Configuration,
    GridParameterSampling,
    HyperParameterSampling,
    RandomParameterSampling,
    script_arguments,
)

# How often the driver looks at its children: the most a child's end waits before the next
# child is made.
POLL_INTERVAL_S = 0.2
HEARTBEAT_INTERVAL_S = 5.0
# As the agent's supervisors hold theirs (runner/agent.py LEASE_SECONDS).
LEASE_SECONDS = 30.0
# Random draws in a row that were all tried before (resume_from) after which the space is
# taken as exhausted: a small discrete space.
MAX_REPEATED_DRAWS = 1000
# The driver's files in the run's folder of the local compute.
LOCK_FILE = "driver.lock"
PROCESSES_FILE = "processes.json"  # as a supervisor's: the agent sees whether it is alive


class _Stop(Exception):
    """The driver stops now, leaving the run to the next one (SIGTERM, a lost lease)."""


@dataclass
class Child:
    """One child as the driver knows it."""

    id: str
    index: int
    configuration: Configuration
    status: str
    error: dict[str, Any] | None = None
    values: list[float] = field(default_factory=list)  # the primary metric so far
    told: bool = False  # its end was told to the Bayesian study
    stopping: bool = False  # a cancel request was sent

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL_STATES


class Driver:
    """The driver's loop; see the module docstring."""

    def __init__(
        self, backend: Backend, run_id: str, wake: Callable[[], None] = lambda: None
    ) -> None:
        self.backend = backend
        self.run_id = run_id
        self.wake = wake
        self.holder = driver_holder(run_id)
        self.signals: list[str] = []
        self.log_offset = 0
        self.children: dict[str, Child] = {}
        self.next_heartbeat = 0.0
        # Random and grid sampling: the configurations drawn so far, and the draws made.
        self.drawn: list[Configuration] = []
        self.draws = 0

    # -- the log ---------------------------------------------------------------------

    def say(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n".encode()
        sys.stdout.write(line.decode())
        sys.stdout.flush()
        with contextlib.suppress(ModelyardError):
            self.backend.append_run_file(self.run_id, LOG_FILE, self.log_offset, line)
            self.log_offset += len(line)

    def _log_size(self) -> int:
        for info in self.backend.list_run_files(self.run_id, LOG_FILE):
            if info.path == LOG_FILE:
                return info.size
        return 0

    # -- the loop ----------------------------------------------------------------------

    def run(self) -> int:
        """Drive the run until it ends or this driver must stop; the process's exit code."""
        record = self.backend.get_run(self.run_id)
        if record.status in TERMINAL_STATES:
            return 0
        self.experiment = record.experiment_name
        self.log_offset = self._log_size()
        try:
            self.plan = TuningPlan.from_json(
                self.backend.read_run_file(self.run_id, CONFIG_FILE, size=1 << 26)
            )
            self.sampling = HyperParameterSampling.from_dict(self.plan.sampling)
            self.policy = EarlyTerminationPolicy.from_dict(self.plan.policy)
            self.goal = PrimaryMetricGoal.of(self.plan.primary_metric_goal)
            self.metric = self.plan.primary_metric_name
            self.heartbeat()
            if record.status == PREPARING:
                record = self.backend.update_run_status(self.run_id, RUNNING)
            self.started_at = record.started_at or time.time()
            self.load()
            while True:
                self.check_signal()
                if self.step():
                    return 0
                time.sleep(POLL_INTERVAL_S)
        except _Stop as stop:
            self.say(f"driver stopping: {stop}; a new driver carries on from the store")
            return 0
        except StorageError as error:
            # The store is away (while the driver read the plan or its children, outside the
            # loop, which waits it out): not the run's fault. The agent starts a new driver,
            # and fails the run only after MAX_DRIVER_RESTARTS of them.
            with contextlib.suppress(Exception):
                self.say(f"the workspace did not answer ({error}); exiting for a new driver")
            return 1
        except Exception as error:
            # A fault of the driver itself: the run cannot go on. Its children are told.
            self.say(f"driver failed: {traceback.format_exc()}")
            with contextlib.suppress(Exception):
                self.cancel_children("the tuning run failed")
                self.backend.update_run_status(
                    self.run_id,
                    FAILED,
                    error={"message": f"the tuning run's driver failed: {error}"},
                )
            return 1

    def heartbeat(self) -> None:
        """Renew the lease when it is time (the run's status is read at every poll)."""
        now = time.monotonic()
        if now < self.next_heartbeat:
            return
        try:
            self.backend.renew_lease(self.run_id, self.holder, LEASE_SECONDS)
        except ConflictError as taken:
            raise _Stop(f"the run's lease is not this driver's: {taken}") from None
        self.next_heartbeat = now + HEARTBEAT_INTERVAL_S

    def note_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signal.Signals(signum).name)

    def check_signal(self) -> None:
        if self.signals:
            raise _Stop(f"asked to stop ({self.signals[0]})")

    def step(self) -> bool:
        """One poll; True when the run has ended."""
        try:
            self.heartbeat()
            record = self.backend.get_run(self.run_id)
            if record.status in TERMINAL_STATES:
                # Ended by someone else (run.complete() on it, say): its children with it.
                self.say(f"the run ended ({record.status}) without its driver")
                self.refresh()
                self.cancel_children(f"the tuning run {self.run_id} ended ({record.status})")
                return True
            self.refresh()
            if record.status == CANCEL_REQUESTED:
                return self.cancel()
            if (reason := self.first_children_failed()) is not None:
                return self.end_early(reason)
            self.apply_policy()
            if self.past_deadline():
                return self.end_at_deadline()
            self.start_children()
            return self.finish()
        except ModelyardError as error:
            if isinstance(error, NotFoundError):
                raise
            # The database or server is away: the lease outlasts several missed polls.
            self.say(f"the workspace did not answer ({error}); trying again")
            time.sleep(1.0)
            return False

    # -- what the children are ---------------------------------------------------------

    def _child_records(
        self, experiment: str | None = None, run_id: str | None = None
    ) -> list[RunRecord]:
        """The children of ``run_id`` (this run) in ``experiment`` (this run's)."""
        name, parent = experiment or self.experiment, run_id or self.run_id
        return list(
            every_item(
                lambda limit, after: self.backend.list_runs(
                    name, parent_id=parent, limit=limit, after=after
                )
            )
        )

    def load(self) -> None:
        """The children made by earlier drivers; one stored but not queued is queued."""
        for record in self._child_records():
            index = TuningPlan.child_index(self.run_id, record.id)
            if index is None:
                continue  # not one the driver made (a script's own child run, say)
            properties = self.backend.get_run_details(record.id).properties
            configuration = json.loads(properties.get(HYPERPARAMETERS_PROPERTY, "{}"))
            child = Child(record.id, index, configuration, record.status, record.error)
            child.values = self._new_values(child)
            self.children[record.id] = child
            if record.status == NOT_STARTED:
                self.say(f"{record.id}: stored but not queued by the last driver; queuing it")
                self.queue(index, configuration, properties.get(RESUMED_FROM_PROPERTY))
        self.earlier = self._earlier_observations()
        self.study = self._study()
        if self.children:
            self.say(
                f"driver (pid {os.getpid()}) resuming: {len(self.children)} children made, "
                f"{sum(c.ended for c in self.children.values())} ended"
            )
        else:
            self.say(
                f"driver (pid {os.getpid()}): {self.sampling.SAMPLING_NAME} sampling, "
                f"{self.plan.total} children, {self.plan.concurrent} at a time, on "
                f"{self.plan.child_target}; {type(self.policy).__name__}; "
                f"{self.goal.value.lower()} {self.metric}"
            )
        self.refresh()

    def refresh(self) -> None:
        """The children's states, and the new points of their primary metric."""
        records = {record.id: record for record in self._child_records()}
        for child in self.children.values():
            record = records.get(child.id)
            if record is None:
                continue
            was_ended = child.ended
            if not was_ended:
                child.values.extend(self._new_values(child))
            child.status, child.error = record.status, record.error
            if child.ended and not was_ended:
                child.values.extend(self._new_values(child))  # the last points
                self.say(f"{child.id}: {child.status}{self._figure(child)}")
            if child.ended and not child.told:
                self._tell(child)

    def _new_values(self, child: Child) -> list[float]:
        series = self.backend.get_metric_series(child.id, [self.metric], start=len(child.values))
        values: list[float] = []
        for one in series:
            for value in one.values:
                with contextlib.suppress(TypeError, ValueError):
                    values.append(float(value))
        return values

    def _figure(self, child: Child) -> str:
        if not child.values:
            return f" (no {self.metric})"
        return f" ({self.metric} best {self.goal.best(child.values):.6g})"

    # -- the Bayesian study ------------------------------------------------------------

    def _observation(self, child: Child) -> Observation:
        best = self.goal.best(child.values) if child.values else None
        if not child.ended:
            return Observation(child.id, child.configuration, bayesian_study.RUNNING)
        if child.status == COMPLETED and best is not None:
            return Observation(child.id, child.configuration, bayesian_study.COMPLETED, best)
        if child.status == CANCELED and child.values:
            return Observation(
                child.id, child.configuration, bayesian_study.STOPPED, child.values[-1]
            )
        return Observation(child.id, child.configuration, bayesian_study.FAILED)

    def _earlier_observations(self) -> list[Observation]:
        """The children of the runs this one resumes from (``resume_from``), as results."""
        found = []
        for run_id in self.plan.resume_from:
            experiment = self.backend.get_run(run_id).experiment_name
            for record in self._child_records(experiment, run_id):
                properties = self.backend.get_run_details(record.id).properties
                if HYPERPARAMETERS_PROPERTY not in properties:
                    continue
                child = Child(
                    record.id,
                    0,
                    json.loads(properties[HYPERPARAMETERS_PROPERTY]),
                    record.status,
                    record.error,
                )
                child.values = self._new_values(child)
                found.append(self._observation(child))
        return found

    def _study(self) -> BayesianStudy | None:
        if not isinstance(self.sampling, BayesianParameterSampling):
            return None
        history = [
            *self.earlier,
            *(self._observation(child) for child in self._by_index()),
        ]
        for child in self.children.values():
            child.told = child.ended
        return self.sampling.study(self.goal, history)

    def _tell(self, child: Child) -> None:
        child.told = True
        if self.study is None:
            return
        observation = self._observation(child)
        self.study.tell(child.id, observation.value, observation.state)

    # -- early termination -------------------------------------------------------------

    def apply_policy(self) -> None:
        series = {
            child.id: ChildMetrics(child.values, finished=child.ended or child.stopping)
            for child in self.children.values()
            if child.values
        }
        for stop in self.policy.decide(self.goal, series, metric_name=self.metric):
            child = self.children[stop.child]
            self.say(f"{child.id}: stopping it: {stop.reason}")
            self._cancel(child, stop.reason)

    def _cancel(self, child: Child, reason: str) -> None:
        if child.ended or child.stopping:
            return
        child.stopping = True
        with contextlib.suppress(ConflictError):  # it ended meanwhile
            self.backend.update_run_status(child.id, CANCEL_REQUESTED, error={"message": reason})
        self.wake()

    def cancel_children(self, reason: str) -> None:
        for child in self.children.values():
            self._cancel(child, reason)

    def cancel(self) -> bool:
        """The tuning run was asked to cancel: its children first, then itself."""
        self.cancel_children(f"the tuning run {self.run_id} was canceled")
        if any(not child.ended for child in self.children.values()):
            return False
        self.say("canceled: every child has ended")
        self.backend.update_run_status(
            self.run_id, CANCELED, error={"message": "canceled by the user"}
        )
        return True

    # -- failing early, deadlines, the end ---------------------------------------------

    def first_children_failed(self) -> str | None:
        """Why the tuning run cannot succeed, judging by its first children (as many as run
        at once), or None: they all failed, or none of them logged the primary metric."""
        first = self._by_index()[: self.plan.concurrent]
        if len(first) < self.plan.concurrent or not all(child.ended for child in first):
            return None
        if all(child.status == FAILED for child in first):
            error = first[0].error or {}
            message = error.get("message", "no reason recorded")
            tail = str(error.get("stderr_tail") or "").strip()
            return (
                f"its first {len(first)} children failed; the first, {first[0].id}, with: "
                f"{message}" + (f"\nLast lines of its output:\n{tail}" if tail else "")
            )
        if not any(child.values for child in self.children.values()):
            logged = sorted({m.name for c in first for m in self.backend.list_metrics(c.id)})
            return (
                f"none of its first {len(first)} children logged the primary metric "
                f"{self.metric!r}"
                + (f" (they logged {', '.join(logged)})" if logged else " (they logged no metric)")
                + f": log it in the script with run.log({self.metric!r}, value), or give "
                "primary_metric_name one they log"
            )
        return None

    def end_early(self, reason: str) -> bool:
        self.cancel_children("the tuning run failed: " + reason.splitlines()[0])
        if any(not child.ended for child in self.children.values()):
            return False
        self.say(f"failed: {reason}")
        self.backend.update_run_status(self.run_id, FAILED, error={"message": reason})
        return True

    def past_deadline(self) -> bool:
        return time.time() >= self.started_at + self.plan.max_duration_s

    def end_at_deadline(self) -> bool:
        minutes = self.plan.max_duration_s / 60
        self.cancel_children(f"max_duration_minutes ({minutes:g}) of the tuning run passed")
        if any(not child.ended for child in self.children.values()):
            return False
        self.say(f"max_duration_minutes ({minutes:g}) passed")
        return self.complete()

    def finish(self) -> bool:
        if self.next_configuration(peek=True) is not None or any(
            not child.ended for child in self.children.values()
        ):
            return False
        return self.complete()

    def complete(self) -> bool:
        ranked = [
            (self.goal.best(child.values), child)
            for child in self.children.values()
            if child.values and child.status in (COMPLETED, CANCELED)
        ]
        completed = [child for child in self.children.values() if child.status == COMPLETED]
        if not completed:
            message = f"none of its {len(self.children)} children completed"
            self.say(f"failed: {message}")
            self.backend.update_run_status(self.run_id, FAILED, error={"message": message})
            return True
        if ranked:
            best_value = self.goal.best(value for value, _ in ranked)
            best = next(child for value, child in ranked if value == best_value)
            self.backend.add_run_properties(
                self.run_id,
                {BEST_CHILD_PROPERTY: best.id, BEST_METRIC_PROPERTY: repr(best_value)},
            )
            self.say(f"completed: best child {best.id}, {self.metric} {best_value:.6g}")
        else:
            self.say(f"completed: no child logged {self.metric}")
        self.backend.update_run_status(self.run_id, COMPLETED)
        return True

    # -- making children ---------------------------------------------------------------

    def _by_index(self) -> list[Child]:
        return sorted(self.children.values(), key=lambda child: child.index)

    def start_children(self) -> None:
        active = sum(1 for child in self.children.values() if not child.ended)
        while active < self.plan.concurrent:
            made = self.next_configuration()
            if made is None:
                return
            index, configuration, resumed_from = made
            self.queue(index, configuration, resumed_from)
            active += 1

    def next_configuration(
        self, peek: bool = False
    ) -> tuple[int, Configuration, str | None] | None:
        """The next child's index, configuration and the child it runs again (or None), or
        None when no more are to be made. ``peek`` asks without making one (no Bayesian ask)."""
        index = len(self.children)
        if self.plan.total is not None and index >= self.plan.total:
            return None
        resumed = self.plan.resume_child_runs
        if index < len(resumed):
            if peek:  # finish() asks each poll: there is one, nothing to read
                return index, {}, resumed[index]
            properties = self.backend.get_run_details(resumed[index]).properties
            return index, json.loads(properties[HYPERPARAMETERS_PROPERTY]), resumed[index]
        if isinstance(self.sampling, BayesianParameterSampling):
            if peek:
                return index, {}, None
            assert self.study is not None
            return index, self.study.ask(TuningPlan.child_id(self.run_id, index)), None
        configuration = self._drawn(index - len(resumed))
        return None if configuration is None else (index, configuration, None)

    def _drawn(self, count: int) -> Configuration | None:
        """The ``count``-th configuration of random or grid sampling (0 first), skipping
        those the runs resumed from tried; None when there is none. Drawn once each, in
        order, and kept: a restarted driver draws them again the same way."""
        assert isinstance(self.sampling, RandomParameterSampling | GridParameterSampling)
        tried = [observation.configuration for observation in self.earlier]
        repeated = 0
        while len(self.drawn) <= count:
            if isinstance(self.sampling, GridParameterSampling) and (
                self.draws >= self.sampling.count
            ):
                return None
            configuration = self.sampling.configuration(self.draws)
            self.draws += 1
            if configuration in tried:
                repeated += 1
                if repeated >= MAX_REPEATED_DRAWS:
                    return None
                continue
            repeated = 0
            self.drawn.append(configuration)
        return self.drawn[count]

    def queue(self, index: int, configuration: Configuration, resumed_from: str | None) -> None:
        child_id = TuningPlan.child_id(self.run_id, index)
        spec = JobSpec.from_json(self.plan.child_spec)
        spec.arguments = [
            *spec.arguments,
            *(Argument(value=word) for word in script_arguments(configuration)),
        ]
        properties = {
            **self.plan.child_properties,
            HYPERPARAMETERS_PROPERTY: json.dumps(configuration),
        }
        if resumed_from is not None:
            properties[RESUMED_FROM_PROPERTY] = resumed_from
        record = queue_job(
            self.backend,
            child_id,
            self.experiment,
            spec,
            run_type=SCRIPT,
            properties=properties,
            parent_id=self.run_id,
        )
        self.wake()
        self.children[child_id] = Child(child_id, index, configuration, record.status)
        self.say(f"{child_id}: queued with {' '.join(script_arguments(configuration))}")


def _wake(location: Path) -> None:
    """Have the local agent look at its queue now (a child was queued or asked to cancel)."""
    with contextlib.suppress(ModelyardError, OSError):
        wake(location)


def main(argv: list[str]) -> int:
    """``<workspace folder> <workspace name> <run id>``: drive the run, unless another driver
    of it is running (its lock is held)."""
    location, name, run_id = Path(argv[0]), argv[1], argv[2]
    info = read_workspace_file(location, name)
    run_dir = compute_dir(location) / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = open(run_dir / LOCK_FILE, "w")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another driver drives {run_id}", flush=True)
        return 0
    record: dict[str, Any] = {
        "supervisor_pid": os.getpid(),
        "supervisor_start": start_time(os.getpid()),
        "pgid": None,
        "pgids": [],
        "starts": {},
    }
    write_private_file(run_dir / PROCESSES_FILE, json.dumps(record).encode())
    driver = Driver(open_backend(location, info), run_id, wake=lambda: _wake(location))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, driver.note_signal)
    return driver.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
