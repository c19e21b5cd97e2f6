"""What every command shares: the workspace named by the global options, opened on first use.

The root group puts one :class:`CliState` in ``ctx.obj``; commands take it with
``@click.pass_obj``. Nothing is opened before a command asks, so ``--help`` and usage errors
never need a workspace, and ``workspace create`` never reads a config.

Example::

    @group.command()
    @click.pass_obj
    def show(state: CliState) -> None:
        print(state.workspace.name)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelyard.errors import ConfigError, NotFoundError
from modelyard.experiment import Experiment
from modelyard.names import check_name
from modelyard.run import Run
from modelyard.workspace import Workspace


@dataclass
class CliState:
    """The global options, and the workspace they name once a command opens it.

    ``config_path`` is a config file or a folder to look in (``--workspace-config``); None
    searches the current folder and its parents, as ``Workspace.from_config()`` does.
    ``json_output`` is set by a command's ``--json`` flag, so errors come out as JSON too.
    """

    config_path: str | None = None
    json_output: bool = False
    _workspace: Workspace | None = field(default=None, repr=False)

    @property
    def workspace(self) -> Workspace:
        """The workspace from the config (ConfigError, exit 5, when there is none)."""
        if self._workspace is None:
            try:
                self._workspace = Workspace.from_config(self.config_path)
            except ConfigError as error:
                raise ConfigError(
                    f"{error}\nFrom the shell: `modelyard workspace create NAME` in this "
                    "folder, or --workspace-config PATH (or $MODELYARD_CONFIG) naming a config"
                ) from error
        return self._workspace

    def get_experiment(self, name: str) -> Experiment:
        """An existing experiment. ``Experiment(ws, name)`` would create a missing one, which
        a command that only reads must not do."""
        check_name("--experiment", name)
        backend = self.workspace._backend
        if all(record.name != name for record in backend.list_experiments()):
            raise NotFoundError(
                f"experiment {name!r} does not exist in workspace {self.workspace.name!r}; "
                "see `modelyard experiment list`"
            )
        return Experiment(self.workspace, name)

    def get_run(self, run_id: str) -> Run:
        """The run with this id, whatever its experiment (NotFoundError when there is none)."""
        record = self.workspace._backend.get_run(run_id)
        return Run(Experiment(self.workspace, record.experiment_name), run_id, _record=record)
