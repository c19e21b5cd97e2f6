"""The Run: one execution, with its status, metrics, tags, properties, files and children.

Interactive runs come from ``exp.start_logging()``; inside a training script
``Run.get_context()`` returns the script's run, or outside one an offline run that prints what
it would have logged, so the same script runs anywhere.

Example::

    run = exp.start_logging()
    for epoch in range(3):
        run.log("loss", 1 / (epoch + 1))
    run.upload_file("notes.txt", "./notes.txt")
    run.complete()
    run.get_metrics()      # {'loss': [1.0, 0.5, 0.333...]}
"""

from __future__ import annotations

import atexit
import builtins
import importlib
import io
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard import follow, run_details
from modelyard.backend.base import METRIC_PAGE_SIZE, every_item
from modelyard.backend.records import (
    CANCEL_REQUESTED,
    CANCELED,
    COMPLETED,
    FAILED,
    HYPERDRIVE_RUN_TYPE,
    IMAGE,
    LIST,
    ROW,
    RUNNING,
    TABLE,
    TERMINAL_STATES,
    MetricBatch,
    MetricSeries,
    RunRecord,
    iso_utc,
)
from modelyard.compute import compute_for
from modelyard.errors import MetricsNotStoredError, NotFoundError, ValidationError
from modelyard.metrics import MetricBuffer, MetricPoint, check_scalar, list_of_scalars, shape_v1
from modelyard.model import Model
from modelyard.names import (
    check_display_name,
    check_metric_name,
    check_tag_key,
    check_tags,
)
from modelyard.run_files import RunFiles
from modelyard.runner.job import JOB_FILE, JobSpec
from modelyard.runner.local_compute import COMPUTE_PROPERTY, LOCAL
from modelyard.ui import portal
from modelyard.widgets import html as repr_html
from modelyard.widgets.listing import RunIterator

if TYPE_CHECKING:
    from types import TracebackType

    from modelyard.environment import Environment
    from modelyard.experiment import Experiment
    from modelyard.offline import OfflineRun
    from modelyard.workspace import Workspace

logger = logging.getLogger(__name__)

INTERACTIVE = "interactive"
CHILD = "child"
SCRIPT = "script"  # submitted with exp.submit
# The most children one create_children call makes: each is a call to the store.
MAX_CHILDREN = 10_000

# One metric buffer per live run in this process, shared by every Run object of that run (so
# points logged through one are seen through another), flushed at interpreter exit so a
# notebook or script that never calls complete() loses nothing it logged. A run that ends
# leaves the table. The lock makes sure two threads opening the same run share one buffer.
_live_buffers: dict[tuple[str, str], MetricBuffer] = {}
_live_buffers_lock = threading.Lock()


@atexit.register
def _flush_live_buffers() -> None:
    for buffer in list(_live_buffers.values()):
        try:
            buffer.flush()
        except Exception as error:
            print(f"modelyard: could not save metrics at exit: {error}", file=sys.stderr)


def new_run_id(experiment_name: str) -> str:
    """A run id in v1's shape: ``<experiment>_<unix time>_<8 hex>``."""
    return f"{experiment_name}_{int(time.time())}_{uuid.uuid4().hex[:8]}"


def run_summary(record: RunRecord) -> dict[str, Any]:
    """The keys of ``Run.get_details()`` that a run's record holds (no tags, properties or
    error): what listings show without a query per run."""
    end = record.ended_at or time.time()
    return {
        "runId": record.id,
        "displayName": record.display_name,
        "experiment": record.experiment_name,
        "number": record.number,
        "runType": record.run_type,
        "status": record.status,
        "parentRunId": record.parent_id,
        "createdTimeUtc": iso_utc(record.created_at),
        "startTimeUtc": iso_utc(record.started_at),
        "endTimeUtc": iso_utc(record.ended_at),
        "durationSeconds": (end - record.started_at) if record.started_at else None,
    }


def _of_process(series: MetricSeries, process: int) -> MetricSeries:
    """The points of ``series`` that process ``process`` of a distributed run logged."""
    if series.processes is None:
        return MetricSeries(series.name, series.kind, [], [], [], [])
    keep = [i for i, p in enumerate(series.processes) if p == process]
    return MetricSeries(
        series.name,
        series.kind,
        [series.values[i] for i in keep],
        [series.steps[i] for i in keep],
        [series.times[i] for i in keep],
        [process] * len(keep),
    )


# Runs of these types come back as their own class, as v1 "rehydrates" them (a tuning run as a
# HyperDriveRun, from Run.get, get_runs, get_children, parent), found by name: the SDK's nouns
# import nothing of modelyard.train.
_RUN_CLASSES = {HYPERDRIVE_RUN_TYPE: ("modelyard.train.hyperdrive.run", "HyperDriveRun")}


def typed_run(experiment: Experiment, record: RunRecord) -> Run:
    """The run of ``record`` as the class of its type (a plain Run for most).

    Example::

        typed_run(exp, backend.get_run("HD_1700000000_1a2b3c4d"))   # HyperDriveRun(...)
    """
    found = _RUN_CLASSES.get(record.run_type)
    if found is None:
        return Run(experiment, record.id, _record=record)
    module, name = found
    run_class: type[Run] = getattr(importlib.import_module(module), name)
    return run_class(experiment, record.id, _record=record)


def _image_file_name(name: str, index: int, process: int | None = None) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "image"
    if process is not None:  # the processes of a distributed run each log their own
        safe = f"{safe}_process_{process:02d}"
    return f"images/{safe}.png" if index == 0 else f"images/{safe}_{index}.png"


class Run(RunFiles):
    """A run of an experiment. ``Run(experiment, run_id)`` opens an existing one."""

    def __init__(self, experiment: Experiment, run_id: str, _record: RunRecord | None = None):
        self._experiment = experiment
        self._backend = experiment.workspace._backend
        self._record = _record or self._backend.get_run(run_id)
        if self._record.experiment_name != experiment.name:
            raise NotFoundError(
                f"run {run_id!r} belongs to experiment {self._record.experiment_name!r}, "
                f"not {experiment.name!r}"
            )
        self._buffer: MetricBuffer | None = None
        self._buffer_key = (experiment.workspace._id, self._record.id)
        # Inside a process of a distributed run: its number, kept with every point it logs.
        self._process: int | None = None
        # An interactive run's tracked outputs folder and the name its files get in the run
        # (exp.start_logging(outputs=...)): uploaded when the run ends, as v1 did.
        self._outputs: tuple[Path, str] | None = None

    @staticmethod
    def get(workspace: Workspace, run_id: str) -> Run:
        """The run ``run_id`` of any experiment of ``workspace`` (v1's ``Run.get``);
        NotFoundError when there is none, ValidationError for an id that cannot be one.

        Example::

            run = Run.get(ws, "tf-mnist_1700000000_1a2b3c4d")
        """
        return workspace.get_run(run_id)

    @staticmethod
    def list(
        experiment: Experiment,
        type: str | None = None,
        tags: Any = None,
        properties: Any = None,
        status: str | None = None,
        include_children: bool = False,
        _rehydrate_runs: bool = True,
    ) -> RunIterator[Run]:
        """The experiment's runs, newest first, read a page at a time (v1's ``Run.list``):
        see :meth:`Experiment.get_runs`. ``_rehydrate_runs`` is v1's and changes nothing
        here: every run comes with its record.

        Example::

            [r.id for r in Run.list(exp, status="Completed", tags={"best": None})]
        """
        return experiment.get_runs(
            type=type,
            tags=tags,
            properties=properties,
            status=status,
            include_children=include_children,
        )

    # -- identity ------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def number(self) -> int:
        """The run's number within its experiment, counting from 1."""
        return self._record.number

    @property
    def display_name(self) -> str:
        return self._record.display_name

    @property
    def experiment(self) -> Experiment:
        return self._experiment

    @property
    def type(self) -> str:
        return self._record.run_type

    @property
    def status(self) -> str:
        """The status when this object last looked; ``get_status()`` asks again."""
        return self._record.status

    @property
    def parent(self) -> Run | None:
        """The parent run, or None for a top-level run."""
        if self._record.parent_id is None:
            return None
        return typed_run(self._experiment, self._backend.get_run(self._record.parent_id))

    def _refresh(self) -> RunRecord:
        self._record = self._backend.get_run(self.id)
        return self._record

    def get_status(self) -> str:
        """The run's current status (``Running``, ``Completed``, ...)."""
        return self._refresh().status

    def get_details(self) -> dict[str, Any]:
        """The run's details with v1's keys: ``runId``, ``target``, ``status``,
        ``startTimeUtc``, ``endTimeUtc``, ``properties``, ``tags``, ``inputDatasets``,
        ``outputDatasets``, ``runDefinition`` (what it runs: script, arguments, target,
        environment, ...), ``logFiles`` (name -> where the file is), ``submittedBy`` (the OS
        account), ``warnings``, and ``error`` when it failed (see run_details.py).

        Example::

            run.get_details()["runDefinition"]["arguments"]     # ['--lr', '0.5']
        """
        details = self._backend.get_run_details(self.id)
        self._record = details.run
        return run_details.v1_details(self._backend, details, run_summary(details.run))

    def get_details_with_logs(self) -> dict[str, Any]:
        """:meth:`get_details` with the text of each log file under ``logFiles`` instead of
        its place, as v1 returns them.

        Example::

            print(run.get_details_with_logs()["logFiles"]["user_logs/std_log.txt"])
        """
        details = self.get_details()
        details["logFiles"] = {
            name: run_details.read_whole(self._backend, self.id, name)
            for name in details["logFiles"]
        }
        return details

    def get_environment(self) -> Environment:
        """The environment the run was submitted with: the registered or curated one it
        named, else one made of the packages it asked for.

        Example::

            run.get_environment().pip_packages
        """
        try:
            with self._backend.open_run_file(self.id, JOB_FILE) as job:
                spec = JobSpec.from_json(job.read().decode())
        except NotFoundError:
            raise NotFoundError(
                f"run {self.id} has no environment: it was not submitted (an interactive "
                "run from start_logging runs in the notebook's own Python)"
            ) from None
        # Imported here: a script's `from modelyard import Run` need not load environments
        # (their conda files, PyYAML).
        from modelyard.environment import Environment

        return Environment._of_job(self.workspace, spec, self.id)

    # -- metrics -------------------------------------------------------------------------

    def _metrics(self) -> MetricBuffer:
        if self._buffer is not None:
            return self._buffer
        with _live_buffers_lock:
            buffer = _live_buffers.get(self._buffer_key)
            if buffer is None:
                counts: dict[str, int] | None = None

                process = self._process

                def next_index(name: str) -> int:
                    nonlocal counts
                    if process is not None:
                        # A process counts its own points: steps are per process.
                        return len(self._points_of(name, process))
                    if counts is None:
                        counts = {m.name: m.count for m in self._backend.list_metrics(self.id)}
                    return counts.get(name, 0)

                def sink(batches: list[MetricBatch], run_id: str = self.id) -> None:
                    for batch in batches:
                        batch.process = process
                    self._backend.log_metrics(run_id, batches)

                buffer = _live_buffers[self._buffer_key] = MetricBuffer(sink, next_index)
            self._buffer = buffer
        return buffer

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        """Log a number, string or bool. Logged several times, it becomes a series; ``step``
        defaults to the point's index in the series.

        Example::

            run.log("accuracy", 0.91)
        """
        buffer = self._buffer or self._metrics()
        buffer.add_scalar(name, value, step)
        if description:
            buffer.set_description(name, description)

    def log_list(self, name: str, value: Iterable[Any], description: str = "") -> None:
        """Log a list of numbers, strings or bools as one point: any iterable of them (a
        list, tuple, range, generator or 1-D numpy array).

        Example::

            run.log_list("accuracies", (a for a in [0.5, 0.7, 0.9]))
        """
        self._metrics().add(name, LIST, list_of_scalars(name, value), None, description)

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        """Log one row of a table: ``run.log_row("roc", x=0.1, y=0.8)``."""
        if not kwargs:
            raise ValidationError("kwargs", "log_row needs at least one column=value")
        row = {column: check_scalar(name, value) for column, value in kwargs.items()}
        self._metrics().add(name, ROW, row, None, description or "")

    def log_table(
        self, name: str, value: dict[str, builtins.list[Any]], description: str = ""
    ) -> None:
        """Log a table as a dict of column -> list of values, all lists the same length."""
        if not isinstance(value, dict) or not value:
            raise ValidationError("value", "log_table takes a non-empty dict of column -> list")
        lengths = {len(column) for column in value.values() if isinstance(column, list | tuple)}
        if len(lengths) != 1 or not all(isinstance(c, list | tuple) for c in value.values()):
            raise ValidationError("value", "every column of a table is a list of the same length")
        table = {str(k): [check_scalar(name, v) for v in column] for k, column in value.items()}
        self._metrics().add(name, TABLE, table, None, description)

    def log_image(
        self,
        name: str,
        path: str | os.PathLike[str] | None = None,
        plot: Any = None,
        description: str = "",
    ) -> None:
        """Log an image file (``path``) or a matplotlib figure (``plot``, saved as PNG)."""
        check_metric_name("name", name)
        if (path is None) == (plot is None):
            raise ValidationError("path", "give exactly one of path= or plot=")
        buffer = self._metrics()
        # The index is taken before the upload, so two threads never write one file name.
        index = buffer.reserve(name, IMAGE)
        file_name = _image_file_name(name, index, self._process)
        if plot is not None:
            figure = getattr(plot, "gcf", lambda: plot)()  # pyplot module or a Figure
            data = io.BytesIO()
            figure.savefig(data, format="png")
            data.seek(0)
            self._backend.upload_run_file(self.id, file_name, data)
        else:
            source = Path(path)  # type: ignore[arg-type]
            if not source.is_file():
                raise ValidationError("path", f"{source} is not a file")
            self._backend.upload_run_file(self.id, file_name, source)
        buffer.add(name, IMAGE, file_name, index, description, reserved=True)

    def flush(self) -> None:
        """Save every metric point logged so far; returns when they are stored. The run does
        this by itself; call it when another process must see the points now, or to know
        they are safe: a point logged before a ``flush()`` that returned survives a crash.

        Raises :class:`~modelyard.errors.MetricsNotStoredError` when points logged since the
        last report could not be stored (it says how many, of which metrics, and why).
        """
        buffer = self._buffer or _live_buffers.get(self._buffer_key)
        if buffer is not None:
            buffer.flush()

    def _store_pending(self) -> None:
        """Store what was logged before a read; a loss is left for flush() to report."""
        buffer = self._buffer or _live_buffers.get(self._buffer_key)
        if buffer is not None:
            buffer.flush(report=False)

    def get_metrics(
        self, name: str | None = None, recursive: bool = False, process: int | None = None
    ) -> dict[str, Any]:
        """The run's metrics, v1-style: ``{name: value}`` for a metric logged once,
        ``{name: [values]}`` for one logged several times. With ``recursive=True``, a dict of
        run id -> metrics for this run and every run below it.

        In a distributed run every process logs to the run, and a metric holds the points of
        all of them in logging order; ``process=N`` keeps those of process N (the ``NN`` of
        ``user_logs/std_log_process_NN.txt``).

        Example::

            run.get_metrics()                     # {'loss': [0.9, 0.91, 0.5, 0.52]}
            run.get_metrics("loss", process=1)    # {'loss': [0.91, 0.52]}
        """
        if recursive:
            result = {self.id: self.get_metrics(name, process=process)}
            for child in self.get_children(recursive=True):
                result[child.id] = child.get_metrics(name, process=process)
            return result
        self._store_pending()
        names = None if name is None else [name]
        metrics = {}
        for series in self._backend.get_metric_series(self.id, names):
            if process is not None:
                series = _of_process(series, process)
                if not series.values:
                    continue
            metrics[series.name] = shape_v1(series)
        return metrics

    def get_metric_history(
        self, name: str, process: int | None = None
    ) -> builtins.list[MetricPoint]:
        """Every point of one metric with its step and time, in logging order (those of one
        process of a distributed run with ``process=N``)."""
        self._store_pending()
        points: list[MetricPoint] = []
        read = 0  # points of every process read so far: the index of the next page
        found = False
        # Read in pages, so a metric of millions of points never travels in one reply.
        while True:
            page = self._backend.get_metric_series(
                self.id, [name], start=read, limit=METRIC_PAGE_SIZE
            )
            if not page:
                break
            found = True
            read += len(page[0].values)
            only = page[0] if process is None else _of_process(page[0], process)
            points.extend(
                MetricPoint(step, value, at)
                for step, value, at in zip(only.steps, only.values, only.times, strict=True)
            )
            if len(page[0].values) < METRIC_PAGE_SIZE:
                break
        if not found:
            raise NotFoundError(f"run {self.id!r} has no metric {name!r}")
        return points

    def _points_of(self, name: str, process: int) -> builtins.list[Any]:
        """The stored values of one metric logged by one process."""
        series = self._backend.get_metric_series(self.id, [name])
        return _of_process(series[0], process).values if series else []

    # -- tags and properties -------------------------------------------------------------

    def tag(self, key: str, value: str | None = None) -> None:
        """Set one tag (a tag without a value is an empty string)."""
        self._backend.set_run_tags(self.id, check_tags("key", {key: value}))

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Add or replace several tags."""
        self._backend.set_run_tags(self.id, check_tags("tags", tags))

    def get_tags(self) -> dict[str, str]:
        return self._backend.get_run_details(self.id).tags

    @property
    def tags(self) -> dict[str, str]:
        """The run's tags, read now (v1's ``run.tags``)."""
        return self.get_tags()

    def add_properties(self, properties: dict[str, Any]) -> None:
        """Add properties (immutable, unlike tags: a new value for a key raises
        ConflictError)."""
        self._backend.add_run_properties(self.id, check_tags("properties", properties))

    def get_properties(self) -> dict[str, str]:
        """The run's properties (immutable key -> value strings)."""
        return self._backend.get_run_details(self.id).properties

    @property
    def properties(self) -> dict[str, str]:
        """The run's properties, read now (v1's ``run.properties``)."""
        return self.get_properties()

    @property
    def hyperparameters(self) -> dict[str, Any] | None:
        """A tuning run's child: the configuration it was given (``{"--lr": 0.01, ...}``, as
        its script received them as arguments); None for other runs.

        Example::

            [child.hyperparameters for child in hd_run.get_children()]
        """
        text = self.get_properties().get(run_details.HYPERPARAMETERS_PROPERTY)
        if text is None:
            return None
        configuration: dict[str, Any] = json.loads(text)
        return configuration

    @property
    def input_datasets(self) -> dict[str, Any]:
        """Inside the run's script, its dataset inputs by name: the local folder's path for
        one given ``.as_mount()`` or ``.as_download()``, the dataset itself for one given
        ``as_named_input(name)`` alone (as v1 gives them); elsewhere an empty dict (the
        inputs a run had are in its property ``modelyard.inputDatasets``).

        Example::

            folder = Run.get_context().input_datasets["mnist"]
        """
        # Imported when asked: a script that takes no dataset never loads the dataset and
        # storage modules (fsspec) behind it.
        from modelyard.data.run_inputs import input_datasets

        return input_datasets(self.id)

    # -- children ------------------------------------------------------------------------

    def child_run(self, name: str | None = None, run_id: str | None = None) -> Run:
        """Start a child run (status Running) under this one; ``name`` is its display name
        (see :meth:`Experiment.start_logging`)."""
        name = check_display_name("name", name)
        return self._new_child(run_id or new_run_id(self._experiment.name), name, {})

    def _new_child(self, run_id: str, name: str | None, tags: dict[str, str]) -> Run:
        record = self._backend.create_run(
            run_id,
            self._experiment.name,
            run_type=CHILD,
            status=RUNNING,
            display_name=name,
            parent_id=self.id,
            tags=tags,
            properties={run_details.SUBMITTED_BY_PROPERTY: run_details.current_account()},
        )
        return Run(self._experiment, record.id, _record=record)

    def create_children(
        self,
        count: int | None = None,
        tag_key: str | None = None,
        tag_values: Iterable[Any] | None = None,
    ) -> builtins.list[Run]:
        """Start several child runs (status Running) at once, as v1 did; returns them in
        order. ``count`` says how many; with ``tag_key`` and ``tag_values`` child *i* gets
        the tag ``tag_key: tag_values[i]`` (and ``count``, when given, must match).
        Inside a submitted script the children are the script's run's own.

        Example::

            for child, lr in zip(run.create_children(tag_key="lr", tag_values=[0.1, 0.01]),
                                 [0.1, 0.01]):
                child.log("lr", lr)
                child.complete()
        """
        if (tag_key is None) != (tag_values is None):
            raise ValidationError(
                "tag_key" if tag_key is None else "tag_values",
                "give tag_key and tag_values together (child i is tagged tag_key: tag_values[i])",
            )
        values: builtins.list[Any] | None = None
        if tag_values is not None:
            if isinstance(tag_values, str | bytes | dict):
                raise ValidationError("tag_values", "give a list of values, one per child")
            values = builtins.list(tag_values)
            check_tag_key("tag_key", tag_key)
        if count is None:
            if values is None:
                raise ValidationError("count", "give count, or tag_key and tag_values")
            count = len(values)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CHILDREN:
            raise ValidationError(
                "count", f"{count!r} is not a number of children: 1 to {MAX_CHILDREN}"
            )
        if values is not None and len(values) != count:
            raise ValidationError(
                "tag_values", f"count={count} but {len(values)} tag_values; give one per child"
            )
        return [
            self._new_child(
                new_run_id(self._experiment.name),
                None,
                check_tags("tag_values", {tag_key: values[i]}) if values is not None else {},
            )
            for i in range(count)
        ]

    def get_children(self, recursive: bool = False) -> Iterator[Run]:
        """The runs started under this one, newest first (and theirs, when recursive)."""
        records = every_item(
            lambda limit, after: self._backend.list_runs(
                self._experiment.name, parent_id=self.id, limit=limit, after=after
            )
        )
        for record in records:
            child = typed_run(self._experiment, record)
            yield child
            if recursive:
                yield from child.get_children(recursive=True)

    # -- ending --------------------------------------------------------------------------

    def _end(self, status: str, error: dict[str, Any] | None = None) -> None:
        """Store the pending points, then record ``status``; a loss of points is raised after
        the run has ended, so the run ends either way and the caller hears of the loss."""
        lost: MetricsNotStoredError | None = None
        not_uploaded: BaseException | None = None
        if self._outputs is not None and self.get_status() not in TERMINAL_STATES:
            folder, prefix = self._outputs
            try:
                # The folder as it was resolved at the start: a part of it that became a link
                # since could lead out of it, so nothing is uploaded through one.
                if folder.is_dir() and folder.resolve() == folder:
                    self.upload_folder(prefix, folder)
                elif os.path.lexists(folder):
                    logger.warning("%s is not a folder (or is a link): not uploaded", folder)
            except Exception as upload_error:  # the run ends either way; the caller hears
                not_uploaded = upload_error
        buffer = self._buffer or _live_buffers.get(self._buffer_key)
        if buffer is not None:
            try:
                buffer.close()
            except MetricsNotStoredError as error_of_metrics:
                lost = error_of_metrics
        self._record = self._backend.update_run_status(self.id, status, error=error)
        with _live_buffers_lock:
            _live_buffers.pop(self._buffer_key, None)
        self._buffer = None
        self._outputs = None
        if not_uploaded is not None:
            raise not_uploaded
        if lost is not None:
            raise lost

    def complete(self) -> None:
        """Mark the run Completed (after saving every metric point)."""
        self._end(COMPLETED)

    def fail(self, error_details: Any = None, error_code: str | None = None) -> None:
        """Mark the run Failed, with the error's message (and code) in its details."""
        message = str(error_details) if error_details is not None else "failed by the user"
        error = {"message": message, "code": error_code or "UserError"}
        if isinstance(error_details, BaseException):
            error["type"] = type(error_details).__name__
        self._end(FAILED, error)

    def cancel(self) -> None:
        """Cancel the run. A submitted run goes through CancelRequested: its supervisor stops
        its processes (SIGTERM, then SIGKILL after a grace period) and marks it Canceled (a
        tuning run's driver cancels its children first)."""
        status = self.get_status()
        if status in TERMINAL_STATES:
            return
        if self.type not in (SCRIPT, HYPERDRIVE_RUN_TYPE):
            self._end(CANCELED)
            return
        self._record = self._backend.update_run_status(self.id, CANCEL_REQUESTED)
        target = self.get_properties().get(COMPUTE_PROPERTY, LOCAL)
        compute_for(self.workspace, target).cancel_requested()

    def wait_for_completion(
        self,
        show_output: bool = False,
        wait_post_processing: bool = False,
        raise_on_error: bool = True,
    ) -> dict[str, Any]:
        """Wait until the run ends; returns ``get_details()``.

        With ``show_output=True`` the script's output is printed as it comes (from its
        beginning), then a summary. A run that ends Failed or Canceled raises
        :class:`~modelyard.errors.RunFailedError` with the exit code and the last lines of the
        output, unless ``raise_on_error=False``. Ctrl-C stops the waiting, not the run.

        Example::

            run = exp.submit(est)
            run.wait_for_completion(show_output=True)
        """
        return follow.wait_for_completion(self, show_output, wait_post_processing, raise_on_error)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: builtins.type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.get_status() in TERMINAL_STATES:
            self.flush()
        elif exc is None:
            self.complete()
        else:
            self.fail(exc)

    # -- models --------------------------------------------------------------------------

    def register_model(
        self,
        model_name: str,
        model_path: str | None = None,
        tags: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        description: str | None = None,
        datasets: builtins.list[tuple[str, Any]] | None = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
        **kwargs: Any,
    ) -> Model:
        """Register a file or folder among the run's files (``outputs/model``; v1's default
        is the model's name) as the next version of ``model_name``; the model remembers this
        run. v1's arguments are taken as :meth:`Model.register` takes them.

        Example::

            run.register_model("tf-dnn-mnist", "outputs/model",
                               model_framework=Model.Framework.TENSORFLOW,
                               model_framework_version="2.21")
        """
        return Model._register_from_run(
            self,
            model_name,
            model_path if model_path is not None else model_name,
            tags=tags,
            properties=properties,
            description=description,
            v1=Model._v1_arguments(
                "run.register_model",
                model_framework=model_framework,
                model_framework_version=model_framework_version,
                datasets=datasets,
                sample_input_dataset=sample_input_dataset,
                sample_output_dataset=sample_output_dataset,
                resource_configuration=resource_configuration,
                **kwargs,
            ),
        )

    # -- context -------------------------------------------------------------------------

    @classmethod
    def get_context(cls, allow_offline: bool = True) -> Run | OfflineRun:
        """The run this code executes in; outside a modelyard run, an offline run that prints
        what it would have logged (or an error when ``allow_offline=False``)."""
        # The one import made when called: the context builds a Workspace, which lists
        # Experiments, which hold Runs (this module); see run_context.py.
        from modelyard import run_context

        return run_context.get_context(allow_offline)

    @property
    def workspace(self) -> Workspace:
        return self._experiment.workspace

    # -- display -------------------------------------------------------------------------

    def get_portal_url(self) -> str:
        """The URL of the run's page in the web UI. Start the UI with ``modelyard ui`` (in the
        workspace's folder, or with ``--workspace``): while it runs this is its address, else
        the address it takes by default (``http://127.0.0.1:8766/runs/<run id>``). The page
        asks for the token ``modelyard ui`` printed, once per browser. A server's workspace's
        run is on the server's UI (``<server>/ui/<workspace>/runs/<run id>``, after its login).

        Example::

            print(run.get_portal_url())     # http://127.0.0.1:8766/runs/mnist_1714557600_1a2b3c4d
        """
        ws = self.workspace
        if ws._server is not None:
            return portal.run_url(portal.server_ui_url(ws._server, ws.name), self.id)
        return portal.run_url(portal.ui_base_url(ws._folder), self.id)

    def __repr__(self) -> str:
        return (
            f"Run(experiment={self._experiment.name!r}, id={self.id!r}, "
            f"status={self._record.status!r})"
        )

    def _repr_html_(self) -> str:
        return repr_html.run_html(self._backend, self._refresh(), self.get_portal_url())


__all__ = ["Run"]
