"""A finished run with TensorBoard scalars, shared by the TensorBoard tests that only read it."""

from __future__ import annotations

import pytest

from modelyard import Experiment, Run, ScriptRunConfig, Workspace
from tests.tensorboard.board import SCRIPTS


@pytest.fixture(scope="package")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A run whose script wrote 5 steps of ``loss`` and ``accuracy`` to ./logs, completed; its
    workspace's config is in the folder ``finished_run.experiment.workspace.folder.parent``."""
    folder = tmp_path_factory.mktemp("tb")
    ws = Workspace.create("tb", folder=folder / "ws")
    ws.write_config(folder)
    run = Experiment(ws, "tb").submit(
        ScriptRunConfig(SCRIPTS, "write_scalars.py", arguments=["--steps", "5"])
    )
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Completed", run._backend.read_run_file(
        run.id, "user_logs/std_log.txt"
    )
    assert any(name.startswith("logs/events.out.tfevents.") for name in run.get_file_names())
    return run
