"""``modelyard experiment list``."""

from __future__ import annotations

import click

from modelyard.cli.output import format_time, iso_utc, print_json, print_table
from modelyard.cli.params import json_option
from modelyard.cli.state import CliState


@click.group("experiment")
def group() -> None:
    """List the experiments of the workspace.

    \b
    Example:
      modelyard experiment list
    """


@group.command("list")
@json_option
@click.pass_obj
def list_experiments(state: CliState, as_json: bool) -> None:
    """List experiments and their number of runs.

    Runs counted are top-level runs (child runs are not counted).

    \b
    Example:
      modelyard experiment list --json
    """
    backend = state.workspace._backend
    experiments = [
        (record, len(backend.list_runs(record.name))) for record in backend.list_experiments()
    ]
    if as_json:
        print_json(
            [
                {"name": record.name, "runs": runs, "createdTimeUtc": iso_utc(record.created_at)}
                for record, runs in experiments
            ]
        )
        return
    print_table(
        ["name", "runs", "created"],
        ([record.name, runs, format_time(record.created_at)] for record, runs in experiments),
        empty="No experiments yet; a run creates its experiment on first use.",
    )
