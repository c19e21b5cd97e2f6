"""``modelyard run submit|logs|cancel``: starting, following and stopping submitted runs.

They join the ``run`` group of ``cli/run.py``, which holds the commands that only read runs.

Example::

    modelyard run submit ./src train.py --epochs 3 --experiment mnist --wait
    modelyard run submit ./src train.py --experiment mnist -- --wait-for-data
"""

from __future__ import annotations

import sys
import time

import click

from modelyard.backend.records import CANCELED, TERMINAL_STATES
from modelyard.cli.output import print_json, print_message
from modelyard.cli.params import json_option, key_value_option, option_names, tag_values
from modelyard.cli.run import group, run_commands
from modelyard.cli.script_command import ScriptCommand
from modelyard.cli.state import CliState
from modelyard.errors import ConflictError, ValidationError
from modelyard.experiment import Experiment
from modelyard.follow import POLL_INTERVAL_S, STD_LOG, LogFollower, output_log
from modelyard.hints import spoken_as
from modelyard.runner.launchers import process_log_name
from modelyard.script_run_config import ScriptRunConfig


@group.command("submit", cls=ScriptCommand)
@click.argument("source_dir", type=click.Path(file_okay=False))
@click.argument("script")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--experiment",
    "-e",
    "experiment_name",
    required=True,
    metavar="NAME",
    help="The experiment to submit to (created on first use).",
)
@click.option(
    "--compute",
    "compute",
    default="local",
    show_default=True,
    metavar="NAME",
    help="The compute target to run on.",
)
@key_value_option("--tag", "tags", help="Tag the run (repeatable).")
@click.option(
    "--wait",
    is_flag=True,
    help="Stream the run's output and exit with its result (6 when it fails).",
)
@json_option
@click.pass_obj
def submit(
    state: CliState,
    source_dir: str,
    script: str,
    args: tuple[str, ...],
    experiment_name: str,
    compute: str,
    tags: tuple[tuple[str, str | None], ...],
    wait: bool,
    as_json: bool,
) -> None:
    """Submit SCRIPT from SOURCE_DIR as a run.

    ARGS go to the script. The options below are read anywhere before '--', before or after
    SCRIPT. After SCRIPT, any other word goes to the script (--lr 0.1), but a word one typo
    from one of them (--wiat for --wait) is refused. Everything after '--' goes to the script
    as written: an argument of the script that looks like one of these options goes there.

    \b
    Examples:
      modelyard run submit ./src train.py --lr 0.1 --experiment mnist --wait
      modelyard run submit -e mnist ./src train.py -- --tag best --wait-for 3
    """
    with option_names(
        experiment_name="--experiment",
        source_directory="SOURCE_DIR",
        entry_script="SCRIPT",
        tags="--tag",
    ):
        experiment = Experiment(state.workspace, experiment_name)
        run = experiment.submit(
            ScriptRunConfig(source_dir, script, arguments=list(args), compute_target=compute),
            tags=tag_values(tags),
        )
    if as_json:
        print_json({"runId": run.id, "status": run.status})
    else:
        print_message(f"Submitted run {run.id} ({run.status}).")
    if wait:
        with spoken_as(run_commands(run.id)):
            run.wait_for_completion(show_output=not as_json)


@group.command("logs")
@click.argument("run_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the run ends.")
@click.option(
    "--process",
    type=int,
    default=None,
    help="For a distributed run: the process whose output to print (default 0).",
)
@click.pass_obj
def logs(state: CliState, run_id: str, follow: bool, process: int | None) -> None:
    """Print a run's output (stdout and stderr of its script).

    A distributed run's processes each have their own: process 0's, or --process N's.

    \b
    Example:
      modelyard run logs --follow tf-mnist_1714557600_1a2b3c4d
      modelyard run logs --process 1 tf-mnist_1714557600_1a2b3c4d
    """
    run = state.get_run(run_id)
    log_name, process_count = output_log(run)
    if process is not None:
        if not 0 <= process < process_count:
            which = f"processes 0 to {process_count - 1}" if process_count > 1 else "process 0"
            raise ValidationError("--process", f"run {run.id} has {which} only")
        if log_name != STD_LOG:
            log_name = process_log_name(process)
    follower = LogFollower(run, log_name, sys.stdout)
    while True:
        ended = run.get_status() in TERMINAL_STATES
        if not follower.print_new() and not follow:
            print_message(f"Run {run.id} has no output yet ({run.get_status()}).")
            return
        if not follow or ended:
            return
        time.sleep(POLL_INTERVAL_S)


@group.command("cancel")
@click.argument("run_id")
@json_option
@click.pass_obj
def cancel(state: CliState, run_id: str, as_json: bool) -> None:
    """Cancel a run.

    Its processes get SIGTERM, then SIGKILL after a grace period. A run that has already
    finished (Completed, Failed, Canceled) stays as it is, and the command exits with 4.

    \b
    Example:
      modelyard run cancel tf-mnist_1714557600_1a2b3c4d
    """
    run = state.get_run(run_id)
    # The SDK's cancel of a finished run does nothing, as v1's; from the shell that is a
    # conflict (exit 4), so that a script sees that nothing was canceled.
    _refuse_finished(run.status, run.id)
    run.cancel()
    status = run.get_status()
    if status != CANCELED:
        _refuse_finished(status, run.id)  # it ended on its own just before the cancel
    if as_json:
        print_json({"runId": run.id, "status": status})
    else:
        print_message(f"Run {run.id}: {status}.")


def _refuse_finished(status: str, run_id: str) -> None:
    if status in TERMINAL_STATES:
        raise ConflictError(
            f"run {run_id} has already finished ({status}); there is nothing to cancel"
        )
