"""``modelyard datastore list|upload|download``.

Transfers print the SDK's own progress bar (on a terminal) and summary line; with ``--json``
they print only the JSON result.
"""

from __future__ import annotations

from pathlib import Path

import click

from modelyard.cli.output import format_time, iso_utc, print_json, print_table
from modelyard.cli.params import json_option, option_names
from modelyard.cli.state import CliState
from modelyard.datastore import Datastore
from modelyard.hints import spoken_as
from modelyard.store.secrets import redact

_datastore_option = click.option(
    "--datastore",
    "datastore_name",
    metavar="NAME",
    help="The datastore to use (default: the workspace's default datastore).",
)
# The SDK's advice ("pass overwrite=True to replace them") in this command's words.
_FLAGS = {"overwrite=True": "--overwrite"}
_overwrite_option = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace files that exist (default: leave them and list them as skipped).",
)


@click.group("datastore")
def group() -> None:
    """List datastores, and upload and download their files.

    \b
    Example:
      modelyard datastore upload ./data/mnist --target mnist
    """


def _datastore(state: CliState, name: str | None) -> Datastore:
    if name is None:
        return state.workspace.get_default_datastore()
    with option_names(name="--datastore"):
        return Datastore.get(state.workspace, name)


@group.command("list")
@json_option
@click.pass_obj
def list_datastores(state: CliState, as_json: bool) -> None:
    """List the datastores of the workspace.

    Their storage options, which may hold credentials, are shown by name only (the JSON
    gives each value as "***").

    \b
    Example:
      modelyard datastore list
    """
    records = state.workspace._backend.list_datastores()
    if as_json:
        print_json(
            [
                {
                    "name": record.name,
                    "url": record.url,
                    "isDefault": record.is_default,
                    "createdTimeUtc": iso_utc(record.created_at),
                    "storageOptions": redact(record.storage_options),
                }
                for record in records
            ]
        )
        return
    print_table(
        ["name", "url", "default", "created", "options"],
        (
            [
                record.name,
                record.url,
                "yes" if record.is_default else "",
                format_time(record.created_at),
                ", ".join(sorted(record.storage_options)),
            ]
            for record in records
        ),
        empty="No datastores.",
    )


@group.command("upload")
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@_datastore_option
@click.option(
    "--target",
    "target_path",
    metavar="PATH",
    help="The folder in the datastore to upload into (default: its root).",
)
@_overwrite_option
@json_option
@click.pass_obj
def upload(
    state: CliState,
    src: Path,
    datastore_name: str | None,
    target_path: str | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Upload a local folder or file to a datastore.

    A folder's contents go below --target (the folder's own name is not kept).

    \b
    Example:
      modelyard datastore upload ./data/mnist --target mnist --overwrite
    """
    datastore = _datastore(state, datastore_name)
    show_progress = not as_json
    with option_names(target_path="--target", src_dir="SRC", files="SRC"), spoken_as(_FLAGS):
        _upload(datastore, src, target_path, overwrite, show_progress)
    if as_json:
        print_json({"datastore": datastore.name, "source": str(src), "target": target_path or ""})


def _upload(
    datastore: Datastore, src: Path, target_path: str | None, overwrite: bool, show_progress: bool
) -> None:
    if src.is_dir():
        datastore.upload(
            src_dir=str(src),
            target_path=target_path,
            overwrite=overwrite,
            show_progress=show_progress,
        )
    else:
        datastore.upload_files(
            [str(src)],
            relative_root=str(src.parent),
            target_path=target_path,
            overwrite=overwrite,
            show_progress=show_progress,
        )


@group.command("download")
@click.argument("target", type=click.Path(file_okay=False, path_type=Path))
@_datastore_option
@click.option(
    "--prefix",
    metavar="P",
    help="Only files whose path in the datastore starts with this (default: every file).",
)
@_overwrite_option
@json_option
@click.pass_obj
def download(
    state: CliState,
    target: Path,
    datastore_name: str | None,
    prefix: str | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Download a datastore's files to a local folder.

    \b
    Example:
      modelyard datastore download ./data --prefix mnist/
    """
    datastore = _datastore(state, datastore_name)
    with option_names(prefix="--prefix", target_path="TARGET"), spoken_as(_FLAGS):
        count = datastore.download(
            target_path=str(target), prefix=prefix, overwrite=overwrite, show_progress=not as_json
        )
    if as_json:
        print_json(
            {"datastore": datastore.name, "target": str(target), "prefix": prefix, "files": count}
        )
