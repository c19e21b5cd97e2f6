"""The Experiment: a named group of runs in a workspace, created on first use.

Example::

    exp = Experiment(ws, "tf-mnist")
    with exp.start_logging() as run:
        run.log("accuracy", 0.93)
    [r.id for r in exp.get_runs()]
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.backend.base import every_item
from modelyard.backend.records import RUN_STATES, RUNNING, ExperimentRecord
from modelyard.backend.snapshot import take_snapshot
from modelyard.errors import ValidationError
from modelyard.names import check_display_name, check_experiment_name, tag_filter
from modelyard.run import INTERACTIVE, Run, new_run_id, typed_run
from modelyard.run_details import SNAPSHOT_PROPERTY, SUBMITTED_BY_PROPERTY, current_account
from modelyard.submit import snapshot_limits, submit
from modelyard.widgets import html as repr_html
from modelyard.widgets.listing import RunIterator

if TYPE_CHECKING:
    from modelyard.workspace import Workspace


class Experiment:
    """A named group of runs. ``Experiment(workspace, name)`` creates it on first use."""

    def __init__(self, workspace: Workspace, name: str) -> None:
        check_experiment_name("name", name)
        self._workspace = workspace
        self._name = name
        self._record = workspace._backend.ensure_experiment(name)

    @classmethod
    def _from_record(cls, workspace: Workspace, record: ExperimentRecord) -> Experiment:
        """An experiment the workspace has already (no write to ensure it)."""
        experiment = cls.__new__(cls)
        experiment._workspace = workspace
        experiment._name = record.name
        experiment._record = record
        return experiment

    @property
    def name(self) -> str:
        return self._name

    @property
    def workspace(self) -> Workspace:
        return self._workspace

    @property
    def id(self) -> int:
        return self._record.id

    @staticmethod
    def list(workspace: Workspace) -> list[Experiment]:
        """Every experiment of the workspace, by name."""
        return list(workspace.experiments.values())

    def get_runs(
        self,
        type: str | None = None,
        tags: Any = None,
        properties: Any = None,
        include_children: bool = False,
        status: str | None = None,
    ) -> RunIterator[Run]:
        """The experiment's runs, newest first, read a page at a time; only top-level runs
        unless ``include_children``. ``tags``/``properties`` filter by a key, a
        ``[key, value]`` pair or a dict. ``type`` keeps runs of one type (``interactive``,
        ``script``, ...), ``status`` those in one state (``Completed``, ...).

        Example::

            best = [r for r in exp.get_runs(status="Completed", tags="Best Run")]
        """
        # An iterator as v1's generator is, which a notebook shows as a table.
        return RunIterator(
            self._runs(type, tags, properties, include_children, status),
            lambda runs, complete: repr_html.runs_html([r._record for r in runs], complete),
        )

    def _runs(
        self,
        type: str | None,
        tags: Any,
        properties: Any,
        include_children: bool,
        status: str | None,
    ) -> Iterator[Run]:
        if status is not None and status not in RUN_STATES:
            raise ValidationError(
                "status", f"{status!r} is not a run status; use one of {', '.join(RUN_STATES)}"
            )
        backend = self._workspace._backend
        wanted_tags = tag_filter(tags, "tags")
        wanted_properties = tag_filter(properties, "properties")
        # Read a page at a time as the caller iterates (v1 returns a generator too).
        records = every_item(
            lambda limit, after: backend.list_runs(
                self._name,
                tags=wanted_tags,
                properties=wanted_properties,
                include_children=include_children,
                limit=limit,
                after=after,
            )
        )
        for record in records:
            if (type is None or record.run_type == type) and (
                status is None or record.status == status
            ):
                yield typed_run(self, record)

    def start_logging(
        self,
        outputs: str | os.PathLike[str] | bool | None = None,
        snapshot_directory: str | os.PathLike[str] | None = None,
        display_name: str | None = None,
        **kwargs: Any,
    ) -> Run:
        """Start an interactive run (status Running), for logging from a notebook.

        As in v1, the folder ``./outputs`` of the current folder is tracked: what it holds
        when the run ends (``run.complete()``, ``fail()``, the end of a ``with`` block) is
        uploaded as the run's ``outputs/...``. ``outputs`` names another folder inside the
        current one (its files get its relative path), ``outputs=False`` tracks none. Links
        are not followed out of the folder. ``snapshot_directory`` takes a snapshot of that
        folder, as ``exp.submit`` does (``run.restore_snapshot()`` gives it back).
        ``display_name`` is up to 255 printable characters (the run id when None).

        Example::

            with exp.start_logging(snapshot_directory=".") as run:
                run.log("accuracy", 0.93)      # and ./outputs is uploaded at the end
        """
        if kwargs:
            # v1 takes **kwargs and reads these names only: others went nowhere there.
            raise ValidationError(
                sorted(kwargs)[0],
                "start_logging takes outputs=, snapshot_directory= and display_name= only",
            )
        display_name = check_display_name("display_name", display_name)
        tracked = _tracked_outputs(outputs)
        backend = self._workspace._backend
        properties = {SUBMITTED_BY_PROPERTY: current_account()}
        if snapshot_directory is not None:
            folder = Path(snapshot_directory)
            if not folder.is_dir():
                raise ValidationError("snapshot_directory", f"{folder} is not a folder")
            max_bytes, max_files = snapshot_limits()
            snapshot = take_snapshot(folder, backend, max_bytes=max_bytes, max_files=max_files)
            properties[SNAPSHOT_PROPERTY] = snapshot.id
        record = backend.create_run(
            new_run_id(self._name),
            self._name,
            run_type=INTERACTIVE,
            status=RUNNING,
            display_name=display_name,
            properties=properties,
        )
        run = Run(self, record.id, _record=record)
        run._outputs = tracked
        return run

    def submit(self, config: Any, tags: dict[str, Any] | None = None, **kwargs: Any) -> Run:
        """Submit a run of ``config`` (an Estimator or ScriptRunConfig) and return it, Queued,
        without waiting. The source folder is snapshotted first, so later edits do not
        change the run.

        Example::

            run = exp.submit(ScriptRunConfig("./src", "train.py", arguments=["--epochs", 3]))
            run.wait_for_completion(show_output=True)
        """
        return submit(self, config, tags)

    def __repr__(self) -> str:
        return f"Experiment(workspace={self._workspace.name!r}, name={self._name!r})"

    def _repr_html_(self) -> str:
        records = [
            run._record for run in itertools.islice(self.get_runs(), repr_html.MAX_RUNS_COUNTED)
        ]
        return repr_html.experiment_html(self._name, self._workspace.name, records)


def _tracked_outputs(outputs: str | os.PathLike[str] | bool | None) -> tuple[Path, str] | None:
    """The folder an interactive run uploads when it ends, and the name its files get."""
    if outputs is False:
        return None
    if outputs is None or outputs is True:
        outputs = "outputs"
    if not isinstance(outputs, str | os.PathLike):
        raise ValidationError("outputs", "give a folder's path, or False to track none")
    here = Path.cwd().resolve()
    folder = (here / outputs).resolve()
    if folder == here or not folder.is_relative_to(here):
        raise ValidationError(
            "outputs",
            f"{os.fspath(outputs)!r} is not a folder inside the current one ({here}); give "
            "one below it, or outputs=False",
        )
    return folder, folder.relative_to(here).as_posix()


__all__ = ["Experiment"]
