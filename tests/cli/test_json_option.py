"""`--json` at the root (`modelyard --json run list`) or after the command: the same output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyard import Experiment, Workspace
from modelyard.cli.main import cli
from tests.helpers import run_cli

TIMEOUT_S = 120


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    cwd = tmp_path_factory.mktemp("json")
    ws = Workspace.create("json", folder=cwd / ".modelyard" / "json")
    ws.write_config(cwd)
    (cwd / "model.bin").write_bytes(b"weights")
    with Experiment(ws, "tf-mnist").start_logging() as run:
        run.log("loss", 0.5)
        run.upload_file("outputs/model.bin", cwd / "model.bin")
        run.register_model("mnist", "outputs/model.bin")
    return cwd, run.id


def _invoke(cwd: Path, args: list[str]) -> tuple[int, str, str]:
    runner = CliRunner(env={"MODELYARD_CONFIG": None})
    config = str(cwd / ".modelyard" / "config.json")
    result = runner.invoke(cli, ["--workspace-config", config, *args], prog_name="modelyard")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["workspace", "show"],
        ["experiment", "list"],
        ["run", "list"],
        ["run", "show", "RUN"],
        ["run", "metrics", "RUN"],
        ["datastore", "list"],
        ["model", "list"],
        ["model", "show", "mnist"],
        ["compute", "list"],
        ["env", "curated"],
    ],
)
def test_json_at_the_root_is_the_commands_json(
    project: tuple[Path, str], command: list[str]
) -> None:
    cwd, run_id = project
    command = [run_id if word == "RUN" else word for word in command]
    after = _invoke(cwd, [*command, "--json"])
    root = _invoke(cwd, ["--json", *command])
    both = _invoke(cwd, ["--json", *command, "--json"])
    assert after[0] == 0, after
    json.loads(after[1])  # JSON, not a table
    assert root == after == both


def test_errors_are_json_with_the_root_option(project: tuple[Path, str]) -> None:
    cwd, _run_id = project
    code, out, err = _invoke(cwd, ["--json", "model", "show", "nosuch"])
    assert (code, out) == (3, "")
    assert json.loads(err)["error"]["code"] == "not_found"


def test_json_at_the_root_from_the_shell(project: tuple[Path, str]) -> None:
    cwd, run_id = project
    root = run_cli(cwd, "--json", "run", "list", timeout=TIMEOUT_S)
    after = run_cli(cwd, "run", "list", "--json", timeout=TIMEOUT_S)
    assert root.returncode == 0, root.stderr
    assert root.stdout == after.stdout
    assert [r["runId"] for r in json.loads(root.stdout)] == [run_id]
    top = " ".join(run_cli(cwd, "--help", timeout=TIMEOUT_S).stdout.split())
    assert "add --json here or after the command" in top
