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

from modelyard.errors import NotFoundError
from modelyard.experiment import Experiment
from modelyard.hints import spoken_as
from modelyard.names import check_name
from modelyard.run import Run
from modelyard.workspace import Workspace

# The SDK's advice when no workspace is found, as the commands that do it.
_WORKSPACE_COMMANDS = {
    "Workspace.create(name).write_config()": "`modelyard workspace create NAME` in this folder, "
    "or name a config with --workspace-config PATH (or $MODELYARD_CONFIG)",
    "Workspace.create({name!r}, folder={folder!r})": (
        "`modelyard workspace create {name} --folder {folder!r} --no-config`"
    ),
}


@dataclass
class CliState:
    """The global options, and the workspace they name once a command opens it.

    ``config_path`` is a config file or a folder to look in (``--workspace-config``); None
    searches the current folder and its parents, as ``Workspace.from_config()`` does.
    ``json_output`` is set by ``--json``, given to the root or to a command: commands print
    JSON then, and errors come out as JSON too.
    """

    config_path: str | None = None
    json_output: bool = False
    _workspace: Workspace | None = field(default=None, repr=False)

    @property
    def workspace(self) -> Workspace:
        """The workspace from the config (ConfigError, exit 5, when there is none)."""
        if self._workspace is None:
            with spoken_as(_WORKSPACE_COMMANDS):
                self._workspace = Workspace.from_config(self.config_path)
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
        """The run with this id, whatever its experiment: ``Run.get``, so that the command
        line and the SDK say the same of an id that is not a run's (NotFoundError, exit 3)."""
        return Run.get(self.workspace, run_id)
