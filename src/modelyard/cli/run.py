"""``modelyard run list|show|metrics|download``.

Runs are found by id alone (``state.get_run``), whatever their experiment, so every command
that takes a RUN_ID works on a copied id from ``run list`` or a notebook. Submitting, following
logs and canceling (``run submit|logs|cancel``) join this group with the run supervisor.
"""

from __future__ import annotations

from pathlib import Path

import click

from modelyard.backend.records import FAILED
from modelyard.cli.output import (
    format_duration,
    format_tags,
    format_time,
    format_value,
    iso_utc,
    print_fields,
    print_json,
    print_message,
    print_table,
)
from modelyard.cli.params import TagPair, json_option, key_value_option, option_names, tag_filter
from modelyard.cli.state import CliState
from modelyard.errors import NotFoundError
from modelyard.follow import failure_output
from modelyard.names import check_metric_name
from modelyard.run import run_summary

DEFAULT_LIMIT = 50


@click.group("run")
def group() -> None:
    """List runs, and read their details, metrics and files.

    \b
    Example:
      modelyard run show tf-mnist_1714557600_1a2b3c4d
    """


def run_commands(run_id: str) -> dict[str, str]:
    """The SDK's advice about a run (``run.cancel()``, ...) as the commands that do it, for
    :func:`modelyard.hints.spoken_as`.

    Example::

        with spoken_as(run_commands(run.id)):
            run.wait_for_completion(show_output=True)   # "Files: `modelyard run download ...`"
    """
    return {
        "run.get_file_names()": f"`modelyard run download {run_id}`",
        "run.download_file(name)": f"`modelyard run logs --process N {run_id}`",
        "run.cancel()": f"`modelyard run cancel {run_id}`",
    }


@group.command("list")
@click.option(
    "--experiment",
    "-e",
    "experiment_name",
    metavar="NAME",
    help="The experiment whose runs to list (default: every experiment).",
)
@key_value_option(
    "--tag",
    "tags",
    help="Keep runs with this tag: key=value, or key for any value. Repeat to require several.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Show at most this many runs, newest first; 0 shows them all.",
)
@click.option("--include-children", is_flag=True, help="List child runs too.")
@json_option
@click.pass_obj
def list_runs(
    state: CliState,
    experiment_name: str | None,
    tags: tuple[TagPair, ...],
    limit: int,
    include_children: bool,
    as_json: bool,
) -> None:
    """List runs, newest first.

    \b
    Example:
      modelyard run list --experiment tf-mnist --tag stage=test --limit 5
    """
    backend = state.workspace._backend
    if experiment_name is not None:
        names = [state.get_experiment(experiment_name).name]
    else:
        names = [record.name for record in backend.list_experiments()]
    with option_names(tags="--tag"):
        records = [
            record
            for name in names
            for record in backend.list_runs(
                name, tags=tag_filter(tags), include_children=include_children
            )
        ]
    records.sort(key=lambda record: record.created_at, reverse=True)
    if limit:
        records = records[:limit]
    if as_json:
        print_json([run_summary(record) for record in records])
        return
    # Display names default to the run id; the column shows only when some run has its own.
    named = any(record.display_name != record.id for record in records)
    rows = []
    for record in records:
        own_name = record.display_name if record.display_name != record.id else None
        rows.append(
            [
                record.id,
                record.number,
                *([own_name] if named else []),
                record.status,
                format_time(record.started_at),
                format_duration(run_summary(record)["durationSeconds"]),
            ]
        )
    print_table(
        ["run id", "#", *(["name"] if named else []), "status", "started", "duration"],
        rows,
        empty="No runs match." if tags else "No runs yet.",
    )


@group.command("show")
@click.argument("run_id")
@json_option
@click.pass_obj
def show(state: CliState, run_id: str, as_json: bool) -> None:
    """Show a run: status, times, tags, error, files.

    Of a failed run, also the last lines of its output.

    \b
    Example:
      modelyard run show tf-mnist_1714557600_1a2b3c4d
    """
    run = state.get_run(run_id)
    details = run.get_details()
    files = run.get_file_names()
    if as_json:
        print_json({**details, "files": files, "portalUrl": run.get_portal_url()})
        return
    metrics = state.workspace._backend.list_metrics(run.id)
    error = details.get("error")
    print_fields(
        [
            ("run id", details["runId"]),
            ("display name", details["displayName"]),
            ("experiment", details["experiment"]),
            ("number", details["number"]),
            ("type", details["runType"]),
            ("status", details["status"]),
            ("parent", details["parentRunId"]),
            ("created", format_time(run._record.created_at)),
            ("started", format_time(run._record.started_at)),
            ("ended", format_time(run._record.ended_at)),
            ("duration", format_duration(details["durationSeconds"])),
            ("tags", format_tags(details["tags"]) or None),
            ("properties", format_tags(details["properties"]) or None),
            ("error", error.get("message") if error else None),
            (
                "metrics",
                ", ".join(f"{m.name}={format_value(m.last_value, 20)}" for m in metrics) or None,
            ),
            ("files", len(files)),
            ("web UI", run.get_portal_url()),
        ]
    )
    for name in files:
        print_message(f"  {name}")
    if details["status"] == FAILED:
        output = failure_output(run, error or {})
        if output:
            print_message("")
            for line in output.split("\n"):
                print_message(line)


@group.command("metrics")
@click.argument("run_id")
@click.option(
    "--name", "metric_name", metavar="NAME", help="Print every point of this metric instead."
)
@json_option
@click.pass_obj
def metrics(state: CliState, run_id: str, metric_name: str | None, as_json: bool) -> None:
    """Show a run's metrics, or one metric's points.

    Without --name: a table of each metric's name, count and last value. With --name: every
    point of that metric (step, value).

    \b
    Examples:
      modelyard run metrics tf-mnist_1714557600_1a2b3c4d
      modelyard run metrics tf-mnist_1714557600_1a2b3c4d --name validation_acc --json
    """
    run = state.get_run(run_id)
    if metric_name is not None:
        check_metric_name("--name", metric_name)
        points = run.get_metric_history(metric_name)
        if as_json:
            print_json(
                {
                    "runId": run.id,
                    "name": metric_name,
                    "points": [
                        {"step": p.step, "value": p.value, "timeUtc": iso_utc(p.time)}
                        for p in points
                    ],
                }
            )
            return
        print_table(["step", "value"], ([p.step, p.value] for p in points), empty="No points.")
        return
    infos = state.workspace._backend.list_metrics(run.id)
    if as_json:
        print_json(
            [
                {
                    "name": info.name,
                    "kind": info.kind,
                    "count": info.count,
                    "lastValue": info.last_value,
                    "lastStep": info.last_step,
                    "description": info.description,
                }
                for info in infos
            ]
        )
        return
    print_table(
        ["name", "count", "last value"],
        ([info.name, info.count, info.last_value] for info in infos),
        empty=f"Run {run.id} has no metrics.",
    )


@group.command("download")
@click.argument("run_id")
@click.option(
    "--prefix",
    metavar="P",
    help="Only files whose name starts with this, e.g. outputs/ (default: every file).",
)
@click.option(
    "--output",
    "output_dir",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The folder to download into; files keep their names (outputs/model/...).",
)
@json_option
@click.pass_obj
def download(
    state: CliState, run_id: str, prefix: str | None, output_dir: Path, as_json: bool
) -> None:
    """Download a run's files.

    Files keep their relative paths (outputs/model/...) below --output; existing files are
    replaced.

    \b
    Example:
      modelyard run download tf-mnist_1714557600_1a2b3c4d --prefix outputs/ --output ./result
    """
    run = state.get_run(run_id)
    with option_names(prefix="--prefix"):
        written = run.download_files(prefix=prefix, output_directory=output_dir)
    if not written:
        raise NotFoundError(
            f"run {run.id!r} has no files"
            + (f" whose name starts with {prefix!r}" if prefix else "")
            + "; see `modelyard run show`"
        )
    if as_json:
        print_json({"runId": run.id, "files": [str(path) for path in written]})
        return
    print_message(f"Downloaded {len(written)} file(s) of run {run.id} to {output_dir}")
