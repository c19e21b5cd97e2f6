"""What the ``RunDetails`` widget shows of a run, read from the backend a little at a time.

A :class:`RunWatcher` keeps what it has read (each metric's points, the log's offset) and on
each :meth:`RunWatcher.poll` reads only what is new: the points after the ones it has, the log
from its offset, the children that have not ended. The result is plain JSON-ready data, which
the widget puts in its traits and its front end draws.

Example::

    watcher = RunWatcher(run)
    state = watcher.poll()
    state["status"], state["metrics"]["loss"]["count"], state["log_tail"][-80:]
"""

from __future__ import annotations

import io
import json
import math
from typing import TYPE_CHECKING, Any

from modelyard.backend.base import METRIC_PAGE_SIZE
from modelyard.backend.records import (
    HYPERDRIVE_RUN_TYPE,
    SCALAR,
    TERMINAL_STATES,
    RunRecord,
)
from modelyard.follow import LogFollower, output_log
from modelyard.train.hyperdrive.plan import PRIMARY_METRIC_PROPERTY
from modelyard.widgets.html import duration, number

if TYPE_CHECKING:
    from modelyard.run import Run

# The log tail kept and shown: its last characters (a long line is cut, not dropped).
LOG_TAIL_CHARS = 32 * 1024
# Points kept for one metric's chart; past it every other point is dropped and the stride
# doubles, so a long series keeps its shape in bounded memory (the count stays exact).
MAX_CHART_POINTS = 2_000
# Children listed (the newest).
MAX_CHILDREN_SHOWN = 200


def _plain(value: Any) -> Any:
    """A metric value as JSON can carry it: NaN and infinities become None (JSON has none)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Series:
    """The points of one metric the widget has read: every ``stride``-th one."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.count = 0
        self.stride = 1
        self.steps: list[int] = []
        self.values: list[Any] = []
        self.last: Any = None

    def add(self, steps: list[int], values: list[Any]) -> None:
        for step, value in zip(steps, values, strict=True):
            if self.count % self.stride == 0:
                self.steps.append(step)
                self.values.append(_plain(value))
            self.count += 1
            self.last = value
            if len(self.values) > MAX_CHART_POINTS:
                self.steps = self.steps[::2]
                self.values = self.values[::2]
                self.stride *= 2

    def as_json(self) -> dict[str, Any]:
        chartable = self.kind == SCALAR and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in self.values
        )
        return {
            "kind": self.kind,
            "count": self.count,
            "last": number(self.last),
            # A series of numbers is drawn; other metrics are shown by their last value.
            "steps": list(self.steps) if chartable else [],
            "values": list(self.values) if chartable else [],
        }


class RunWatcher:
    """Reads a run's status, metrics, log and children, only what is new at each poll."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self._backend = run._backend
        self._series: dict[str, _Series] = {}
        self._log = io.StringIO()
        self._tail = ""
        self._follower: LogFollower | None = None
        self._log_name = ""
        # Children that have ended do not change: their rows are kept, not read again.
        self._ended_children: dict[str, dict[str, Any]] = {}
        self._primary: tuple[str, str] | None = None

    def _primary_metric(self, record: RunRecord) -> tuple[str, str] | None:
        """A tuning run's primary metric and goal (``("accuracy", "MAXIMIZE")``)."""
        if self._primary is None and record.run_type == HYPERDRIVE_RUN_TYPE:
            text = self._backend.get_run_details(record.id).properties.get(PRIMARY_METRIC_PROPERTY)
            if text:
                config = json.loads(text)
                self._primary = (str(config["name"]), str(config["goal"]).upper())
        return self._primary

    def _read_metrics(self) -> dict[str, Any]:
        for info in self._backend.list_metrics(self.run.id):
            series = self._series.setdefault(info.name, _Series(info.kind))
            # A page at a time: a long series is never held whole, only its chart's points.
            while info.count > series.count:
                pages = self._backend.get_metric_series(
                    self.run.id, [info.name], start=series.count, limit=METRIC_PAGE_SIZE
                )
                if not pages or not pages[0].values:
                    break
                series.add(pages[0].steps, pages[0].values)
        return {name: series.as_json() for name, series in sorted(self._series.items())}

    def _read_log(self) -> str:
        if self._follower is None:
            self._log_name = output_log(self.run)[0]
            self._follower = LogFollower(self.run, self._log_name, self._log)
        self._follower.print_new()
        new = self._log.getvalue()
        if new:
            self._tail = (self._tail + new)[-LOG_TAIL_CHARS:]
            self._log.seek(0)
            self._log.truncate()
        return self._tail

    def _child_row(self, child: RunRecord, primary: tuple[str, str] | None) -> dict[str, Any]:
        cached = self._ended_children.get(child.id)
        if cached is not None:
            return cached
        metric, value, best = "", "", None
        if primary is not None:
            metric, goal = primary
            points = [
                v
                for series in self._backend.get_metric_series(child.id, [metric])
                for v in series.values
                if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            ]
            if points:
                best = max(points) if goal == "MAXIMIZE" else min(points)
                value = number(best)
        else:
            # A plain parent's children: their first metric's last value.
            infos = self._backend.list_metrics(child.id)
            if infos:
                metric, value = infos[0].name, number(infos[0].last_value)
        row = {
            "run_id": child.id,
            "name": child.display_name,
            "status": child.status,
            "duration": duration(child),
            "metric": metric,
            "value": value,
            # A tuning run's child: its best primary metric, for the front end's chart.
            "best": best,
        }
        if child.status in TERMINAL_STATES:
            self._ended_children[child.id] = row
        return row

    def _read_children(self, record: RunRecord) -> list[dict[str, Any]]:
        children = self._backend.list_runs(
            record.experiment_name, parent_id=record.id, limit=MAX_CHILDREN_SHOWN
        )
        primary = self._primary_metric(record)
        return [self._child_row(child, primary) for child in children]

    def poll(self) -> dict[str, Any]:
        """The run as it is now: ``status``, ``duration``, ``metrics`` (name -> ``kind``,
        ``count``, ``last``, and ``steps``/``values`` for a series of numbers), ``log_tail``,
        ``log_name``, ``children`` and ``primary_metric``."""
        record = self._backend.get_run(self.run.id)
        primary = self._primary_metric(record)
        return {
            "run_id": record.id,
            "name": record.display_name,
            "experiment": record.experiment_name,
            "run_type": record.run_type,
            "status": record.status,
            "duration": duration(record),
            "error": str((record.error or {}).get("message", "")),
            "metrics": self._read_metrics(),
            "log_tail": self._read_log(),
            "log_name": self._log_name,
            "children": self._read_children(record),
            "primary_metric": (
                {"name": primary[0], "goal": primary[1]} if primary is not None else {}
            ),
            "ended": record.status in TERMINAL_STATES,
        }
