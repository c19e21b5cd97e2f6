"""The Experiment: a named group of runs in a workspace, created on first use.

Example::

    exp = Experiment(ws, "tf-mnist")
    with exp.start_logging() as run:
        run.log("accuracy", 0.93)
    [r.id for r in exp.get_runs()]
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from modelyard.backend.base import every_item
from modelyard.backend.records import RUNNING, ExperimentRecord
from modelyard.names import check_display_name, check_experiment_name, tag_filter
from modelyard.run import INTERACTIVE, Run, new_run_id
from modelyard.submit import submit

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
    ) -> Iterator[Run]:
        """The experiment's runs, newest first; only top-level runs unless
        ``include_children``. ``tags``/``properties`` filter by a key, a ``[key, value]`` pair
        or a dict. ``type`` keeps runs of one type (``interactive``, ``script``, ...)."""
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
            if type is None or record.run_type == type:
                yield Run(self, record.id, _record=record)

    def start_logging(
        self,
        snapshot_directory: str | None = None,
        display_name: str | None = None,
        outputs: str | None = None,
    ) -> Run:
        """Start an interactive run (status Running), for logging from a notebook.

        With ``snapshot_directory`` the folder's files are stored with the run under
        ``snapshot/``. ``display_name`` is up to 255 printable characters (the run id when
        None). Use it as a context manager to complete (or fail) it at the end.
        """
        display_name = check_display_name("display_name", display_name)
        backend = self._workspace._backend
        record = backend.create_run(
            new_run_id(self._name),
            self._name,
            run_type=INTERACTIVE,
            status=RUNNING,
            display_name=display_name,
        )
        run = Run(self, record.id, _record=record)
        if snapshot_directory is not None:
            run.upload_folder("snapshot", snapshot_directory)
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
        runs = list(self.get_runs())
        return (
            f"<table><tr><th>Name</th><th>Workspace</th><th>Runs</th></tr><tr>"
            f"<td>{html.escape(self._name)}</td><td>{html.escape(self._workspace.name)}</td>"
            f"<td>{len(runs)}</td></tr></table>"
        )
