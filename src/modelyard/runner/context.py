"""Inside a submitted script: the run it executes in, reached through the supervisor.

The supervisor writes a small JSON file (the run context) and names it in the environment
variable ``MODELYARD_RUN_CONTEXT``; it holds the run id, the experiment and workspace names and
the path of the supervisor's socket. No database URL or credential is in it. In a distributed
run, ``MODELYARD_PROCESS_INDEX`` tells the process's number, which its metric points carry.

Example (what ``Run.get_context()`` does in a script)::

    run = run_from_environment()
    run.log("accuracy", 0.9)
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from modelyard.errors import ConfigError
from modelyard.offline import RUN_CONTEXT_ENV
from modelyard.runner.launchers import PROCESS_INDEX_ENV

if TYPE_CHECKING:
    from modelyard.run import Run

_current: Run | None = None


def run_from_environment() -> Run:
    """The script's run (one object per process, so every caller shares its metric buffer)."""
    global _current
    if _current is not None:
        return _current
    from modelyard.experiment import Experiment
    from modelyard.run import Run
    from modelyard.runner.channel import ChannelBackend
    from modelyard.workspace import Workspace

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
    workspace = Workspace._attached(context["workspace_name"], context["workspace_id"], backend)
    experiment = Experiment(workspace, context["experiment_name"])
    run = Run(experiment, context["run_id"])
    index = os.environ.get(PROCESS_INDEX_ENV, "")
    if index.isdigit():  # a process of a distributed run: its metrics say which
        run._process = int(index)
    _current = run
    return _current
