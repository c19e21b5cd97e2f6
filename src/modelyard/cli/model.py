"""``modelyard model list|show|register|download``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from modelyard.cli.output import (
    format_tags,
    format_time,
    iso_utc,
    print_fields,
    print_json,
    print_message,
    print_table,
)
from modelyard.cli.params import (
    ModelRef,
    TagPair,
    json_option,
    key_value_option,
    model_ref_argument,
    option_names,
    tag_filter,
    tag_values,
)
from modelyard.cli.state import CliState
from modelyard.hints import spoken_as
from modelyard.model import Model


@click.group("model")
def group() -> None:
    """Register, list, inspect and download model versions.

    \b
    Example:
      modelyard model list --latest
    """


def model_summary(model: Model) -> dict[str, Any]:
    """A model version as the ``--json`` outputs print it."""
    return {
        "id": model.id,
        "name": model.name,
        "version": model.version,
        "description": model.description,
        "tags": model.tags,
        "properties": model.properties,
        "runId": model.run_id,
        "createdTimeUtc": iso_utc(model.created_time.timestamp()),
    }


@group.command("list")
@click.option("--name", metavar="N", help="Only versions of this model.")
@key_value_option(
    "--tag",
    "tags",
    help="Keep versions with this tag: key=value, or key for any value. Repeatable.",
)
@click.option("--latest", is_flag=True, help="Only the newest version of each model.")
@json_option
@click.pass_obj
def list_models(
    state: CliState,
    name: str | None,
    tags: tuple[TagPair, ...],
    latest: bool,
    as_json: bool,
) -> None:
    """List registered model versions, newest first.

    \b
    Example:
      modelyard model list --name tf-dnn-mnist --latest
    """
    with option_names(name="--name", tags="--tag"):
        models = Model.list(state.workspace, name=name, tags=tag_filter(tags), latest=latest)
    if as_json:
        print_json([model_summary(model) for model in models])
        return
    print_table(
        ["id", "created", "run", "tags", "description"],
        (
            [
                model.id,
                format_time(model.created_time.timestamp()),
                model.run_id,
                format_tags(model.tags),
                model.description,
            ]
            for model in models
        ),
        empty="No models match." if name or tags else "No models registered yet.",
    )


@group.command("show")
@model_ref_argument("model_ref")
@json_option
@click.pass_obj
def show(state: CliState, model_ref: ModelRef, as_json: bool) -> None:
    """Show a model version and its files.

    Without :VERSION, the latest version.

    \b
    Example:
      modelyard model show tf-dnn-mnist:2
    """
    name, version = model_ref
    with option_names(name="NAME"):
        model = Model(state.workspace, name, version=version)
    files = model.get_file_names()
    if as_json:
        print_json({**model_summary(model), "files": files})
        return
    print_fields(
        [
            ("id", model.id),
            ("created", format_time(model.created_time.timestamp())),
            ("run", model.run_id),
            ("description", model.description),
            ("tags", format_tags(model.tags) or None),
            ("properties", format_tags(model.properties) or None),
            ("files", len(files)),
        ]
    )
    for file_name in files:
        print_message(f"  {file_name}")


@group.command("register")
@click.argument("path")
@click.option("--name", required=True, metavar="NAME", help="The model's name.")
@key_value_option(
    "--tag",
    "tags",
    help="A tag to set: key=value, or key alone. Repeatable.",
)
@click.option("--description", metavar="D", help="A description of this version.")
@click.option(
    "--from-run",
    "run_id",
    metavar="RUN_ID",
    help="Register a file or folder among this run's files; PATH is its name there "
    "(e.g. outputs/model).",
)
@json_option
@click.pass_obj
def register(
    state: CliState,
    path: str,
    name: str,
    tags: tuple[TagPair, ...],
    description: str | None,
    run_id: str | None,
    as_json: bool,
) -> None:
    """Register a file or folder as a new model version.

    PATH is a local file or folder, or with --from-run a file or folder among the run's files.

    \b
    Examples:
      modelyard model register ./model.pkl --name sklearn-mnist --tag area=mnist
      modelyard model register outputs/model --name tf-dnn-mnist --from-run RUN_ID
    """
    with option_names(model_path="PATH", model_name="--name", tags="--tag", run_id="--from-run"):
        if run_id is not None:
            model = state.get_run(run_id).register_model(
                model_name=name, model_path=path, tags=tag_values(tags), description=description
            )
        else:
            model = Model.register(
                state.workspace,
                model_path=path,
                model_name=name,
                tags=tag_values(tags),
                description=description,
            )
    if as_json:
        print_json(model_summary(model))
        return
    print_message(f"Registered {model.id}")


@group.command("download")
@model_ref_argument("model_ref")
@click.option(
    "--output",
    "output_dir",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The folder to download into.",
)
@click.option("--exist-ok", is_flag=True, help="Replace the model's file or folder if it exists.")
@json_option
@click.pass_obj
def download(
    state: CliState, model_ref: ModelRef, output_dir: Path, exist_ok: bool, as_json: bool
) -> None:
    """Download a model version to a folder.

    Without :VERSION, the latest version. The model's file or folder appears whole in --output,
    or not at all.

    \b
    Example:
      modelyard model download tf-dnn-mnist:3 --output ./model
    """
    name, version = model_ref
    with option_names(name="NAME"):
        model = Model(state.workspace, name, version=version)
    with spoken_as({"exist_ok=True": "--exist-ok", "target_dir": "--output"}):
        path = model.download(target_dir=output_dir, exist_ok=exist_ok)
    if as_json:
        print_json({"id": model.id, "path": path})
        return
    print_message(f"Downloaded {model.id} to {path}")
