"""``modelyard workspace create|show``, and ``workspace members list|set|remove`` on a server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from modelyard.cli.output import print_fields, print_json, print_message, print_table
from modelyard.cli.params import json_option
from modelyard.cli.state import CliState
from modelyard.errors import ConflictError, NotFoundError
from modelyard.server.account_records import ROLES
from modelyard.store.files import s3_storage_options
from modelyard.workspace import Workspace


@click.group("workspace")
def group() -> None:
    """Create and inspect workspaces, and a server's members.

    \b
    Example:
      modelyard workspace create demo
      modelyard workspace members set bob contributor
    """


@group.command("create")
@click.argument("name")
@click.option(
    "--folder",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="The workspace's folder (default: ./.modelyard/NAME).",
)
@click.option(
    "--config/--no-config",
    "write_config",
    default=True,
    help="Write ./.modelyard/config.json so that later commands find the workspace "
    "(default: write it).",
)
@click.option(
    "--exist-ok/--no-exist-ok",
    default=True,
    help="Use an existing workspace of that name, or fail with exit code 4 (default: use it).",
)
@click.option(
    "--database-url",
    metavar="URL",
    help="Keep the metadata in this database instead of a SQLite file in the folder: "
    "postgresql+psycopg://USER@HOST/DB (needs the postgres extra).",
)
@click.option(
    "--storage-url",
    metavar="URL",
    help="Keep the files (run files, snapshots, logs, models) in this object store instead of "
    "the folder: s3://BUCKET/PREFIX (needs the s3 extra); the key and secret come from "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY and are kept in the private workspace.json.",
)
@click.option(
    "--storage-endpoint",
    metavar="URL",
    help="The S3-compatible endpoint of --storage-url (MinIO, Ceph...; default: AWS).",
)
@json_option
def create(
    name: str,
    folder: Path | None,
    write_config: bool,
    exist_ok: bool,
    database_url: str | None,
    storage_url: str | None,
    storage_endpoint: str | None,
    as_json: bool,
) -> None:
    """Create a workspace and write its config.

    The config (./.modelyard/config.json) makes later commands, and Workspace.from_config()
    in notebooks, find the workspace from this folder and the folders below it.

    \b
    Example:
      modelyard workspace create demo --folder /data/workspaces/demo
      modelyard workspace create team --database-url postgresql+psycopg://me@db/modelyard
      modelyard workspace create team --storage-url s3://models/team \\
        --storage-endpoint http://minio:9000
    """
    try:
        ws = Workspace.get(name, folder=folder)
    except NotFoundError:
        ws = Workspace.create(
            name,
            folder=folder,
            exist_ok=False,
            database_url=database_url,
            storage_url=storage_url,
            storage_options=s3_storage_options(storage_endpoint) if storage_url else None,
        )
        created = True
    else:
        if not exist_ok:
            raise ConflictError(
                f"workspace {name!r} exists already in {ws.folder}; drop --no-exist-ok to "
                "use it, or choose another name or --folder"
            )
        created = False
    config = ws.write_config() if write_config else None
    if as_json:
        print_json({**ws.get_details(), "created": created, "config": config})
        return
    if created:
        print_message(f"Created workspace {ws.name!r} in {ws.folder}")
    else:
        print_message(f"Workspace {ws.name!r} exists already in {ws.folder}; using it")
    if config is not None:
        print_message(
            f"Wrote {config}: commands run in {config.parent.parent} (and below) use this workspace"
        )


@group.command("show")
@json_option
@click.pass_obj
def show(state: CliState, as_json: bool) -> None:
    """Show the workspace and what it holds.

    \b
    Example:
      modelyard --workspace-config ./team/config.json workspace show
    """
    ws = state.workspace
    backend = ws._backend
    details: dict[str, Any] = {
        **ws.get_details(),
        "defaultDatastore": backend.get_datastore().name,
        "experiments": len(backend.list_experiments()),
        "models": len(backend.list_models(latest=True)),
        "datastores": len(backend.list_datastores()),
    }
    if as_json:
        print_json(details)
        return
    print_fields(
        [
            ("name", details["name"]),
            ("id", details["id"]),
            ("folder", details["folder"]),
            ("database", details["database"]),
            ("default datastore", details["defaultDatastore"]),
            ("experiments", details["experiments"]),
            ("models", details["models"]),
            ("datastores", details["datastores"]),
        ]
    )


@group.group("members")
def members() -> None:
    """A server workspace's members and their roles.

    The workspace is the config's. Any member may list them; owners may set and remove them.

    \b
    Example:
      modelyard workspace members list
      modelyard workspace members set bob contributor
      modelyard workspace members remove bob
    """


@members.command("list")
@json_option
@click.pass_obj
def list_members(state: CliState, as_json: bool) -> None:
    """List the workspace's members and their roles.

    \b
    Example:
      modelyard workspace members list --json
    """
    found = state.workspace.list_members()
    if as_json:
        print_json(found)
        return
    print_table(
        ["USER", "ROLE"],
        [[member["user"], member["role"]] for member in found],
        empty="No members.",
    )


@members.command("set")
@click.argument("user")
@click.argument("role", type=click.Choice(ROLES))
@click.pass_obj
def set_member(state: CliState, user: str, role: str) -> None:
    """Give USER a ROLE in the workspace (owners only).

    It makes USER (a user of the server) a member, or changes their role. The last owner
    stays an owner until another member is made one.

    \b
    Example:
      modelyard workspace members set bob contributor
    """
    ws = state.workspace
    ws.set_member(user, role)
    print_message(f"{user!r} is now a {role} of workspace {ws.name!r}")


@members.command("remove")
@click.argument("user")
@click.pass_obj
def remove_member(state: CliState, user: str) -> None:
    """Take USER out of the workspace (owners only).

    A workspace keeps an owner: make another member owner before removing the last.

    \b
    Example:
      modelyard workspace members remove bob
    """
    ws = state.workspace
    ws.remove_member(user)
    print_message(f"{user!r} is not a member of workspace {ws.name!r}")
