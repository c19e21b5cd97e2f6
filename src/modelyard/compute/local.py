"""The ``local`` compute target's client side: start, wake and stop the workspace's agent.

The agent (:mod:`modelyard.runner.agent`) runs in its own process, one per workspace folder;
this module reaches it through its socket (:func:`~modelyard.runner.local_compute.socket_path`)
and starts it when none answers. It imports nothing of the agent: the agent is started as
``python -m modelyard.runner.agent``.

Example::

    compute = LocalCompute(ws.folder, ws.name)
    compute.queued()        # start the agent if it is not running, and wake it
    compute.stop()          # stop it once its running runs have ended
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from modelyard.compute.base import Compute
from modelyard.errors import ComputeTargetException, ModelyardError
from modelyard.runner.job import JobSpec
from modelyard.runner.local_compute import (
    LOCAL,
    compute_dir,
    max_concurrent_runs,
    socket_path,
    tell,
    wake,
)
from modelyard.runner.run_environment import agent_environment

START_TIMEOUT_S = 20.0


def stop_agent(location: Path) -> bool:
    """Stop the workspace's agent once its running runs have ended (queued runs stay
    queued until the next submit starts an agent again); False when none was running."""
    return tell(location, b"stop")


def ensure_agent(location: Path, name: str) -> None:
    """Start the workspace's agent unless it runs already, and wake it.

    The agent gets the client's environment reduced to what it and the runs' machinery need
    (``run_environment.agent_environment``): a client's tokens never sit in it.
    """
    folder = compute_dir(location)
    folder.mkdir(parents=True, exist_ok=True)
    path = socket_path(location)  # a ConfigError here, before any wait, when it is unsafe
    if wake(location):
        return
    with open(folder / "agent.log", "ab") as log:
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelyard.runner.agent",
                str(location),
                name,
                path,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=agent_environment(os.environ),
            start_new_session=True,  # detached: closing the notebook leaves it running
            close_fds=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if wake(location):
            return
        time.sleep(0.02)
    raise ModelyardError(
        f"the local compute agent did not start within {START_TIMEOUT_S:g} s; see "
        f"{folder / 'agent.log'}"
    )


def check_fits_one_machine(spec: JobSpec) -> None:
    """Refuse a run of several nodes that ``local`` would only repeat (ComputeTargetException)."""
    # A distributed run of several nodes runs every node's processes here (as v1's local
    # runs of a notebook did before it moved to a cluster); the script once per node,
    # without distribution, would only repeat itself.
    if spec.node_count > 1 and spec.distributed is None:
        raise ComputeTargetException(
            f"node_count={spec.node_count}: the '{LOCAL}' compute target is one machine; "
            "use node_count=1, a distributed_training configuration (every node's "
            "processes then run here) or a cluster"
        )


class LocalCompute(Compute):
    """This machine, through the agent of the workspace folder ``location``."""

    name = LOCAL

    def __init__(self, location: Path, workspace_name: str) -> None:
        self.location = location
        self.workspace_name = workspace_name

    def check(self, spec: JobSpec) -> None:
        check_fits_one_machine(spec)

    def queued(self) -> None:
        ensure_agent(self.location, self.workspace_name)

    def cancel_requested(self) -> None:
        wake(self.location)

    def max_concurrent_runs(self) -> int:
        return max_concurrent_runs()

    def stop(self) -> bool:
        """Stop the agent once its running runs have ended; False when none was running."""
        return stop_agent(self.location)


class LocalFromScript(LocalCompute):
    """The ``local`` target as a submitted script sees it (``exp.submit`` of a child run, a
    pipeline): a run's processes are not given the agent's socket, so they never start or
    wake it; their supervisor wakes it when they queue or cancel a run through its channel
    (``runner/channel.py``)."""

    def queued(self) -> None:
        """The supervisor wakes the agent."""

    def cancel_requested(self) -> None:
        """The supervisor wakes the agent."""


class LocalOnServer(Compute):
    """The ``local`` target of a server's workspace: the server's machine. The server starts
    its agent when a run is queued there or asked to cancel (``server/workspaces.py``)."""

    name = LOCAL

    def check(self, spec: JobSpec) -> None:
        check_fits_one_machine(spec)

    def queued(self) -> None:
        """The server starts the run."""

    def cancel_requested(self) -> None:
        """The server tells its agent."""

    def max_concurrent_runs(self) -> int:
        return max_concurrent_runs()
