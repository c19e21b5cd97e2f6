"""``modelyard hyperdrive show``: a tuning run's children, best first."""

from __future__ import annotations

import click

from modelyard.cli.output import format_value, print_fields, print_json, print_table
from modelyard.cli.params import json_option
from modelyard.cli.state import CliState
from modelyard.train.hyperdrive import HyperDriveRun


@click.group("hyperdrive")
def group() -> None:
    """Look at tuning (HyperDrive) runs.

    \b
    Example:
      modelyard hyperdrive show HD_3f1c0e2a9b7d4c5e8f6a1b2c3d4e5f60
    """


@group.command("show")
@click.argument("run_id")
@json_option
@click.pass_obj
def show(state: CliState, run_id: str, as_json: bool) -> None:
    """Show a tuning run and its children, best first.

    Children are sorted by the primary metric; those that logged none come last.

    \b
    Example:
      modelyard hyperdrive show HD_3f1c0e2a9b7d4c5e8f6a1b2c3d4e5f60 --json
    """
    run = state.get_run(run_id)
    hd_run = HyperDriveRun(run.experiment, run.id)  # ValidationError: not a tuning run
    metric = hd_run.primary_metric_config
    children = hd_run.get_children_sorted_by_primary_metric()
    details = hd_run.get_details()
    if as_json:
        print_json(
            {
                "runId": hd_run.id,
                "status": details["status"],
                "primaryMetric": metric,
                "bestChildRunId": hd_run.best_child_run_id,
                "error": details.get("error"),
                "children": children,
            }
        )
        return
    print_fields(
        [
            ("run id", hd_run.id),
            ("experiment", details["experiment"]),
            ("status", details["status"]),
            ("primary metric", f"{metric['name']} ({metric['goal'].lower()})"),
            ("best child", hd_run.best_child_run_id),
            ("error", (details.get("error") or {}).get("message")),
        ]
    )
    print_table(
        ["child", "status", f"best {metric['name']}", "hyperparameters"],
        (
            [
                child["run_id"],
                child["status"],
                "-" if child["best_primary_metric"] is None else child["best_primary_metric"],
                " ".join(f"{k}={format_value(v)}" for k, v in child["hyperparameters"].items()),
            ]
            for child in children
        ),
        empty="No children yet.",
        title="Children, best first",
    )
