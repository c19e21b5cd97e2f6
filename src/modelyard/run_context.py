"""The run a piece of code executes in: ``Run.get_context()``.

Inside a submitted script, the supervisor writes a small JSON file (the run context) and names
it in ``MODELYARD_RUN_CONTEXT``; it holds the run id, the experiment and workspace names and
the path of the supervisor's socket. No database URL or credential is in it. The script's run,
its experiment and its workspace are then built on a
:class:`~modelyard.backend.channel.ChannelBackend` to that socket. In a distributed run,
``MODELYARD_PROCESS_INDEX`` tells the process's number, which its metric points carry.
Outside a run, the context is an :class:`~modelyard.offline.OfflineRun`.

This module builds a whole object graph (a Workspace holding an Experiment holding the Run),
so it sits above every SDK noun; ``Run.get_context`` reaches it when called.

Example (what ``Run.get_context()`` does in a script)::

    run = get_context()
    run.log("accuracy", 0.9)
"""

from __future__ import annotations

import json
import os

from modelyard.backend.channel import ChannelBackend
from modelyard.backend.channel_wire import PROCESS_INDEX_ENV, RUN_CONTEXT_ENV
from modelyard.errors import ConfigError, UserError
from modelyard.experiment import Experiment
from modelyard.offline import OfflineRun
from modelyard.run import Run
from modelyard.workspace import Workspace

_current: Run | None = None


def get_context(allow_offline: bool = True) -> Run | OfflineRun:
    """The current run: the script's real run under modelyard, else an offline run (or a
    UserError when ``allow_offline`` is False)."""
    if os.environ.get(RUN_CONTEXT_ENV):
        return run_from_environment()
    if not allow_offline:
        raise UserError(
            "this code is not running inside a modelyard run; submit it with "
            "exp.submit(...) or call Run.get_context() with allow_offline=True"
        )
    return OfflineRun()


def run_from_environment() -> Run:
    """The script's run (one object per process, so every caller shares its metric buffer)."""
    global _current
    if _current is not None:
        return _current
    path = os.environ[RUN_CONTEXT_ENV]
    try:
        with open(path) as f:
            context = json.load(f)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read the run context {path}: {error}") from error
    # mypy cannot see the forwarding methods, generated from the contract at import.
    backend = ChannelBackend(  # type: ignore[abstract]
        context["socket"], context["workspace_name"], context.get("workdir")
    )
    workspace = Workspace._attached(
        context["workspace_name"], context["workspace_id"], backend, context["run_id"]
    )
    experiment = Experiment(workspace, context["experiment_name"])
    run = Run(experiment, context["run_id"])
    index = os.environ.get(PROCESS_INDEX_ENV, "")
    if index.isdigit():  # a process of a distributed run: its metrics say which
        run._process = int(index)
    _current = run
    return _current
