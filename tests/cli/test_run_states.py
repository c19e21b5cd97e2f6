"""`modelyard run show|cancel|logs` on runs that do not exist, have finished, or failed.

The same workspace holds a completed, a canceled and a failed run (a real script, a real
process); the commands run in this process through click's CliRunner, and each case once as a
real `python -m modelyard.cli.main` process.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyard import Experiment, Run, Workspace
from modelyard.cli.main import cli
from modelyard.errors import ConflictError, NotFoundError, ValidationError
from modelyard.follow import FAILURE_TAIL_LINES
from modelyard.script_run_config import ScriptRunConfig
from tests.helpers import run_cli

TIMEOUT_S = 120
# The failed script's output: more lines than a tail shows, the last one saying why. (All on
# stdout: stdout and stderr reach the log through two pipes, in no set order.)
FAILING_SCRIPT = """
import sys
for n in range(40):
    print(f"epoch {n}", flush=True)
print("the data folder is empty", flush=True)
sys.exit(3)
"""


@dataclass
class Runs:
    cwd: Path
    config: Path
    ws: Workspace
    completed: str
    canceled: str
    failed: str


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    cwd = tmp_path_factory.mktemp("states")
    ws = Workspace.create("states", folder=cwd / ".modelyard" / "states")
    config = ws.write_config(cwd)
    experiment = Experiment(ws, "states")
    with experiment.start_logging() as completed:
        completed.log("acc", 0.9)
    canceled = experiment.start_logging()
    canceled.cancel()
    (cwd / "src").mkdir()
    (cwd / "src" / "fail.py").write_text(FAILING_SCRIPT)
    failed = experiment.submit(ScriptRunConfig(str(cwd / "src"), "fail.py"))
    failed.wait_for_completion(raise_on_error=False)
    assert (completed.get_status(), canceled.get_status(), failed.get_status()) == (
        "Completed",
        "Canceled",
        "Failed",
    )
    yield Runs(cwd, config, ws, completed.id, canceled.id, failed.id)


def invoke(runs: Runs, *args: str) -> tuple[int, str, str]:
    runner = CliRunner(env={"MODELYARD_CONFIG": None})
    full = ["--workspace-config", str(runs.config), *args]
    result = runner.invoke(cli, full, catch_exceptions=False, prog_name="modelyard")
    return result.exit_code, result.stdout, result.stderr


def shell(runs: Runs, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(runs.cwd, *args, timeout=TIMEOUT_S)


def sdk_error(runs: Runs, run_id: str) -> Exception:
    try:
        Run.get(runs.ws, run_id)
    except (NotFoundError, ValidationError) as error:
        return error
    raise AssertionError(f"Run.get found {run_id!r}")


@pytest.mark.parametrize(
    "command",
    [["show"], ["cancel"], ["logs"], ["logs", "--follow"], ["metrics"], ["download"]],
)
def test_an_unknown_run_id_gives_the_sdks_not_found_message(runs: Runs, command: list[str]) -> None:
    error = sdk_error(runs, "nosuch")
    assert isinstance(error, NotFoundError)
    code, out, err = invoke(runs, "run", *command, "nosuch")
    assert (code, out, err) == (NotFoundError.exit_code, "", f"Error: {error}\n")


def test_an_id_that_cannot_be_a_run_id_gives_the_sdks_message(runs: Runs) -> None:
    error = sdk_error(runs, "a/b")
    assert isinstance(error, ValidationError)
    for command in ("show", "cancel", "logs"):
        code, out, err = invoke(runs, "run", command, "a/b")
        assert (code, out, err) == (ValidationError.exit_code, "", f"Error: {error}\n")


def test_unknown_run_ids_from_the_shell(runs: Runs) -> None:
    message = str(sdk_error(runs, "nosuch"))
    shown = shell(runs, "run", "show", "nosuch")
    assert (shown.returncode, shown.stderr) == (3, f"Error: {message}\n")
    as_json = shell(runs, "--json", "run", "cancel", "nosuch")
    assert as_json.returncode == 3 and as_json.stdout == ""
    assert json.loads(as_json.stderr) == {
        "error": {"code": "not_found", "message": message, "exit_code": 3}
    }


@pytest.mark.parametrize("which", ["completed", "canceled", "failed"])
def test_cancel_of_a_finished_run_says_so_and_exits_4(runs: Runs, which: str) -> None:
    run_id = getattr(runs, which)
    status = Run.get(runs.ws, run_id).get_status()
    code, out, err = invoke(runs, "run", "cancel", run_id)
    assert code == ConflictError.exit_code == 4 and out == ""
    assert (
        err == f"Error: run {run_id} has already finished ({status}); there is nothing to cancel\n"
    )
    assert Run.get(runs.ws, run_id).get_status() == status  # left as it was
    # The SDK keeps v1's behaviour: canceling a finished run does nothing, and raises nothing.
    Run.get(runs.ws, run_id).cancel()
    assert Run.get(runs.ws, run_id).get_status() == status


def test_cancel_of_a_finished_run_from_the_shell(runs: Runs) -> None:
    done = shell(runs, "run", "cancel", runs.completed)
    assert done.returncode == 4 and done.stdout == ""
    assert "has already finished (Completed)" in done.stderr
    as_json = shell(runs, "run", "cancel", runs.completed, "--json")
    assert json.loads(as_json.stderr)["error"]["code"] == "conflict"


def test_show_of_a_failed_run_gives_its_error_and_the_last_lines_of_its_output(
    runs: Runs,
) -> None:
    code, out, err = invoke(runs, "run", "show", runs.failed)
    assert code == 0, err
    lines = out.splitlines()
    assert "Failed" in next(line for line in lines if line.startswith("status"))
    error_line = next(line for line in lines if line.startswith("error"))
    assert "the script exited with code 3" in error_line
    # The tail that wait_for_completion shows on failure, at the end of the page.
    heading = lines.index("Last lines of its output:")
    tail = lines[heading + 1 :]
    assert len(tail) == FAILURE_TAIL_LINES
    assert tail[-1] == "the data folder is empty"
    assert "epoch 39" in tail and "epoch 10" not in tail
    shown = shell(runs, "run", "show", runs.failed).stdout
    assert shown.splitlines()[-len(tail) - 1 :] == lines[heading:]


def test_show_of_other_runs_has_no_output_tail(runs: Runs) -> None:
    for run_id in (runs.completed, runs.canceled):
        code, out, _err = invoke(runs, "run", "show", run_id)
        assert code == 0 and "Last lines" not in out
