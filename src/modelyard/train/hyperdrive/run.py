"""``HyperDriveRun``: a tuning run and its children (v1's ``HyperDriveRun``).

``exp.submit(HyperDriveConfig(...))`` returns one; ``HyperDriveRun(exp, run_id)`` opens an
existing one. Its children are ordinary :class:`~modelyard.run.Run` objects, each with its
sampled configuration in :attr:`Run.hyperparameters <modelyard.run.Run.hyperparameters>`.

Example::

    hd_run = exp.submit(config)
    hd_run.wait_for_completion(show_output=True)       # a live table of the children
    best = hd_run.get_best_run_by_primary_metric()
    best.register_model("mnist", "outputs/model")
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from modelyard.backend.records import (
    CANCEL_REQUESTED,
    CANCELED,
    COMPLETED,
    FAILED,
    HYPERDRIVE_RUN_TYPE,
    TERMINAL_STATES,
)
from modelyard.compute import compute_for
from modelyard.errors import RunFailedError, ValidationError
from modelyard.follow import POLL_INTERVAL_S, LogFollower
from modelyard.hints import say
from modelyard.run import Run
from modelyard.runner.local_compute import LOCAL
from modelyard.train.hyperdrive.goal import PrimaryMetricGoal
from modelyard.train.hyperdrive.plan import (
    BEST_CHILD_PROPERTY,
    LOG_FILE,
    PRIMARY_METRIC_PROPERTY,
    RESUMED_FROM_PROPERTY,
    TuningPlan,
)

if TYPE_CHECKING:
    from modelyard.experiment import Experiment
    from modelyard.train.hyperdrive.config import HyperDriveConfig

# How often the live table is drawn again.
TABLE_INTERVAL_S = 1.0


class HyperDriveRun(Run):
    """A tuning run; see the module docstring.

    Example::

        hd_run = HyperDriveRun(exp, "HD_0123abcd...")
        hd_run.get_children_sorted_by_primary_metric(top=3)
    """

    def __init__(
        self,
        experiment: Experiment,
        run_id: str,
        hyperdrive_config: HyperDriveConfig | None = None,
        _record: Any = None,
    ) -> None:
        super().__init__(experiment, run_id, _record=_record)
        if self.type != HYPERDRIVE_RUN_TYPE:
            raise ValidationError(
                "run_id", f"run {run_id!r} is a {self.type} run, not a tuning (hyperdrive) run"
            )
        self.hyperdrive_config = hyperdrive_config
        # The rows of children that have ended, which change no more (the live table is
        # drawn again every TABLE_INTERVAL_S: only the running children are read again).
        self._ended_rows: dict[str, dict[str, Any]] = {}

    @property
    def primary_metric_config(self) -> dict[str, str]:
        """``{"name": ..., "goal": ...}``: the metric the children are ranked by."""
        config: dict[str, str] = json.loads(self.get_properties()[PRIMARY_METRIC_PROPERTY])
        return config

    def _goal(self) -> tuple[str, PrimaryMetricGoal]:
        config = self.primary_metric_config
        return config["name"], PrimaryMetricGoal.of(config["goal"])

    def _tuning_children(self) -> list[Run]:
        """The children the driver made, first made first."""
        children = [
            child
            for child in self.get_children()
            if TuningPlan.child_index(self.id, child.id) is not None
        ]
        return sorted(children, key=lambda c: TuningPlan.child_index(self.id, c.id) or 0)

    # -- what the children found -------------------------------------------------------

    def get_hyperparameters(self) -> dict[str, dict[str, Any]]:
        """Each child's configuration: ``{child run id: {parameter: value}}``."""
        return {child.id: child.hyperparameters or {} for child in self._tuning_children()}

    def get_metrics(
        self, name: str | None = None, recursive: bool = False, process: int | None = None
    ) -> dict[str, Any]:
        """Each child's metrics, as v1's HyperDriveRun gives them: ``{child run id: {name:
        value or values}}`` (``name`` keeps one metric; ``recursive`` adds the children's
        own children)."""
        result: dict[str, Any] = {}
        for child in self._tuning_children():
            if recursive:
                result.update(child.get_metrics(name, recursive=True, process=process))
            else:
                result[child.id] = child.get_metrics(name, process=process)
        return result

    def _ranked(self) -> list[dict[str, Any]]:
        """The children as rows (see get_children_sorted_by_primary_metric), best first."""
        metric, goal = self._goal()
        rows: list[dict[str, Any]] = []
        for child in self._tuning_children():
            if child.id in self._ended_rows:
                rows.append(self._ended_rows[child.id])
                continue
            values = [
                float(value)
                for series in self._backend.get_metric_series(child.id, [metric])
                for value in series.values
                if isinstance(value, int | float) and not isinstance(value, bool)
            ]
            rows.append(
                {
                    "run_id": child.id,
                    "hyperparameters": child.hyperparameters or {},
                    "best_primary_metric": goal.best(values) if values else None,
                    "status": child.status,
                    "resumed_from": child.get_properties().get(RESUMED_FROM_PROPERTY),
                }
            )
            if child.status in TERMINAL_STATES:
                self._ended_rows[child.id] = rows[-1]
        with_metric = [row for row in rows if row["best_primary_metric"] is not None]
        with_metric.sort(key=lambda row: goal.worse_first(row["best_primary_metric"]))
        with_metric.reverse()  # best first
        return with_metric + [row for row in rows if row["best_primary_metric"] is None]

    def get_children_sorted_by_primary_metric(
        self, top: int = 0, reverse: bool = False, discard_no_metric: bool = False
    ) -> list[dict[str, Any]]:
        """The children, best first by the primary metric (``reverse=True``: worst first),
        each ``{"run_id", "hyperparameters", "best_primary_metric", "status"}``; ``top=N``
        keeps the first N (0: all); children that logged no primary metric come last, or
        not at all with ``discard_no_metric=True``.

        Example::

            hd_run.get_children_sorted_by_primary_metric(top=2)
            # [{'run_id': 'HD_..._3', 'hyperparameters': {'--lr': 0.01}, 'best_primary_metric':
            #   0.97, 'status': 'Completed'}, ...]
        """
        if isinstance(top, bool) or not isinstance(top, int) or top < 0:
            raise ValidationError("top", f"expected a non-negative integer, not {top!r}")
        rows = [{k: v for k, v in row.items() if k != "resumed_from"} for row in self._ranked()]
        if discard_no_metric:
            rows = [row for row in rows if row["best_primary_metric"] is not None]
        if reverse:
            rows.reverse()
        return rows[:top] if top else rows

    def get_best_run_by_primary_metric(
        self,
        include_failed: bool = True,
        include_canceled: bool = True,
        include_resume_from_runs: bool = True,
    ) -> Run | None:
        """The child with the best primary metric (None when none logged it). Failed and
        canceled children (those a policy stopped) count unless excluded;
        ``include_resume_from_runs=False`` leaves out the children that ran a configuration
        of an earlier tuning run again.

        Example::

            best = hd_run.get_best_run_by_primary_metric(include_canceled=False)
            best.register_model("mnist", "outputs/model")
        """
        for row in self._ranked():
            if row["best_primary_metric"] is None:
                break
            if (
                (row["status"] == FAILED and not include_failed)
                or (row["status"] == CANCELED and not include_canceled)
                or (row["resumed_from"] is not None and not include_resume_from_runs)
            ):
                continue
            return Run(self._experiment, row["run_id"])
        return None

    @property
    def best_child_run_id(self) -> str | None:
        """The best child as the driver recorded it when the run completed (None before)."""
        return self.get_properties().get(BEST_CHILD_PROPERTY)

    # -- control -----------------------------------------------------------------------

    def cancel(self) -> None:
        """Cancel the tuning run: its driver cancels every child that has not ended, then
        records Canceled."""
        if self.get_status() in TERMINAL_STATES:
            return
        self._record = self._backend.update_run_status(self.id, CANCEL_REQUESTED)
        compute_for(self.workspace, LOCAL).cancel_requested()

    def wait_for_completion(
        self,
        show_output: bool = False,
        wait_post_processing: bool = False,
        raise_on_error: bool = True,
        out: TextIO | None = None,
    ) -> dict[str, Any]:
        """Wait until the tuning run ends; returns ``get_details()``.

        With ``show_output=True``: at a terminal, a table of the children (state,
        parameters, best primary metric so far) drawn again as they change; elsewhere (a log,
        a notebook's text output) what the driver does, line by line, and the table at the
        end. A run that ends Failed or Canceled raises RunFailedError with its reason, unless
        ``raise_on_error=False``. Ctrl-C stops the waiting, not the run.

        Example::

            hd_run.wait_for_completion(show_output=True)
        """
        out = out or sys.stdout
        if self.get_status() not in TERMINAL_STATES:
            # Its driver needs the local agent, which may have gone (a reboot): it comes
            # back and carries on from the store.
            compute_for(self.workspace, LOCAL).queued()
        try:
            if show_output:
                self._follow(out)
            else:
                while self._backend.get_run(self.id).status not in TERMINAL_STATES:
                    time.sleep(POLL_INTERVAL_S)
        except KeyboardInterrupt:
            out.write(
                f"\nStopped waiting; tuning run {self.id} goes on. Cancel it with "
                f"{say('hd_run.cancel()')}.\n"
            )
            raise
        details = self.get_details()
        status = details["status"]
        if raise_on_error and status != COMPLETED:
            message = (details.get("error") or {}).get("message", status)
            raise RunFailedError(f"tuning run {self.id} ended {status}: {message}", details=details)
        return details

    def _follow(self, out: TextIO) -> None:
        console = Console(file=out, highlight=False)
        if console.is_terminal:
            with Live(self._table(), console=console, auto_refresh=False) as live:
                while self._backend.get_run(self.id).status not in TERMINAL_STATES:
                    time.sleep(TABLE_INTERVAL_S)
                    live.update(self._table(), refresh=True)
                live.update(self._table(), refresh=True)
            return
        out.write(f"RunId: {self.id}\nStatus: {self.get_status()}\n\n")
        log = LogFollower(self, LOG_FILE, out)
        while True:
            status = self._backend.get_run(self.id).status
            log.print_new()
            if status in TERMINAL_STATES:
                log.print_new()
                break
            time.sleep(POLL_INTERVAL_S)
        out.write("\n")
        console.print(self._table())
        out.flush()

    def _table(self) -> Group:
        """The live table: one row per child, best first, under a line on the whole run."""
        metric, goal = self._goal()
        record = self._refresh()
        rows = self._ranked()
        table = Table(show_edge=False, header_style="bold")
        for column in ("child", "status", "parameters", f"best {metric}"):
            table.add_column(column)
        for row in rows:
            parameters = " ".join(f"{k}={v}" for k, v in row["hyperparameters"].items())
            best = row["best_primary_metric"]
            table.add_row(
                row["run_id"].rpartition("_")[2],
                row["status"],
                parameters,
                "-" if best is None else f"{best:.6g}",
            )
        ended = sum(1 for row in rows if row["status"] in TERMINAL_STATES)
        head = (
            f"{self.id}: {record.status}; {len(rows)} children made, {ended} ended; "
            f"{goal.value.lower()} {metric}"
        )
        return Group(Text(head), table)


# v1 imports PrimaryMetricGoal from azureml.train.hyperdrive.run.
__all__ = ["HyperDriveRun", "PrimaryMetricGoal"]
