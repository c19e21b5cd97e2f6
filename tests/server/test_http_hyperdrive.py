"""A tuning run of a server's workspace: submitted from a client, driven on the server's
machine (its local agent starts the driver), its children run there, read back by the client."""

from __future__ import annotations

from pathlib import Path

from modelyard import Experiment, Workspace
from modelyard.script_run_config import ScriptRunConfig
from modelyard.train.hyperdrive import (
    GridParameterSampling,
    HyperDriveConfig,
    HyperDriveRun,
    PrimaryMetricGoal,
    choice,
)
from tests.server.test_http_sdk import member  # noqa: F401 - the fixture
from tests.server_process import ServerProcess

SCRIPTS = Path(__file__).parent.parent / "hyperdrive" / "scripts"


def test_a_tuning_run_of_a_server_workspace_runs_on_the_server(
    member: tuple[str, str],  # noqa: F811 - the fixture imported above
    http_server: ServerProcess,
) -> None:
    ws = Workspace.from_config()
    assert ws.server == http_server.url
    config = HyperDriveConfig(
        run_config=ScriptRunConfig(str(SCRIPTS), "objective.py"),
        hyperparameter_sampling=GridParameterSampling({"--x": choice(0, 1), "--y": choice(-2)}),
        primary_metric_name="score",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_concurrent_runs=2,
    )
    hd_run = Experiment(ws, "tune").submit(config)
    assert isinstance(hd_run, HyperDriveRun)
    hd_run.wait_for_completion()
    children = hd_run.get_children_sorted_by_primary_metric()
    assert [row["hyperparameters"] for row in children] == [
        {"--x": 1, "--y": -2},
        {"--x": 0, "--y": -2},
    ]
    assert {row["status"] for row in children} == {"Completed"}
    assert hd_run.best_child_run_id == children[0]["run_id"]
    # The driver ran on the server's machine, in the workspace's folder there.
    assert (
        "driver (pid"
        in hd_run._backend.read_run_file(hd_run.id, "system_logs/hyperdrive.txt").decode()
    )
