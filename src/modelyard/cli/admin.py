"""``modelyard admin create-user|list-users|create-token|create-workspace|set-member``: a
server's users and workspaces, on its machine.

These commands open the server's accounts database directly (no server needs to run), from
the same ``--data-dir`` and ``--database-url`` that ``modelyard server`` takes:
:func:`server_data_options` declares both, for every command that opens a server's data.
A token is printed once, when it is made; the server keeps only its hash.

Example::

    $ modelyard admin create-user alice --admin --data-dir /srv/modelyard
    $ modelyard admin create-token alice --name laptop --expires-in 30
    $ modelyard admin create-workspace team --owner alice
    $ modelyard admin set-member team bob contributor
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from modelyard.cli.output import iso_utc, print_json, print_message, print_table
from modelyard.cli.params import json_option
from modelyard.server.accounts import AccountStore, TokenRecord, UserRecord
from modelyard.server.settings import DEFAULT_DATA_DIR, ServerSettings

FC = TypeVar("FC", bound=Callable[..., Any])

FIRST_TOKEN_NAME = "first"
ADMIN_TOKEN_NAME = "admin-issued"
_DAY_S = 86_400.0


def server_data_options(command: FC) -> FC:
    """``--data-dir DIR`` and ``--database-url URL``, passed to ``command`` as ``data_dir``
    (a Path) and ``database_url`` (None: SQLite in the data folder); see
    :func:`server_settings`.

    Example::

        @click.command()
        @server_data_options
        def server(data_dir: Path, database_url: str | None) -> None: ...
    """
    command = click.option(
        "--database-url",
        metavar="URL",
        help="Keep users, tokens and workspaces, and the workspaces' metadata, in this "
        "PostgreSQL database (postgresql+psycopg://USER@HOST/DB) instead of SQLite files in "
        "the data folder.",
    )(command)
    return click.option(
        "--data-dir",
        metavar="DIR",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_DATA_DIR,
        show_default=True,
        help="The server's data folder (made private to its owner): server.db and the "
        "workspaces' folders.",
    )(command)


def server_settings(data_dir: Path, database_url: str | None) -> ServerSettings:
    """The settings that :func:`server_data_options`' two options describe."""
    return ServerSettings(data_dir=data_dir, database_url=database_url)


@click.group("admin")
def group() -> None:
    """A server's users, tokens and workspaces, on its machine.

    \b
    Example:
      modelyard admin create-user alice --admin
      modelyard admin create-token alice --name laptop --expires-in 30
    """


@group.command("create-user")
@click.argument("name")
@click.option("--admin", is_flag=True, help="The user may manage users and every workspace.")
@server_data_options
@json_option
def create_user(
    name: str, admin: bool, data_dir: Path, database_url: str | None, as_json: bool
) -> None:
    """Create user NAME and print their first token.

    The token is shown this once: the server keeps only its hash.

    \b
    Example:
      modelyard admin create-user alice --admin --data-dir /srv/modelyard
    """
    store = AccountStore.open(server_settings(data_dir, database_url))
    user = store.create_user(name, admin=admin)
    # A second step: should it fail, the user exists and `create-token` gives them one.
    token, secret = store.create_token(name, FIRST_TOKEN_NAME)
    if as_json:
        print_json({"user": _user_json(user), "token": _token_json(token, secret)})
        return
    print_message(f"Created user {name!r}{' (an admin)' if admin else ''}.")
    _print_secret(token, secret)


@group.command("list-users")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many users.")
@click.option("--after", metavar="NAME", help="Only the users after NAME (the page after).")
@server_data_options
@json_option
def list_users(
    limit: int | None,
    after: str | None,
    data_dir: Path,
    database_url: str | None,
    as_json: bool,
) -> None:
    """List the server's users by name.

    \b
    Example:
      modelyard admin list-users --limit 50
    """
    store = AccountStore.open(server_settings(data_dir, database_url))
    users = store.list_users(limit=limit, after=after)
    if as_json:
        print_json([_user_json(user) for user in users])
        return
    print_table(
        ["name", "admin", "created"],
        [[user.name, "yes" if user.admin else "", iso_utc(user.created_at)] for user in users],
        empty="no users yet: `modelyard admin create-user NAME --admin` makes the first",
    )


@group.command("create-token")
@click.argument("user")
@click.option(
    "--name",
    default=ADMIN_TOKEN_NAME,
    show_default=True,
    help="A label for the token, shown in `modelyard token list`.",
)
@click.option(
    "--expires-in",
    "expires_in_days",
    metavar="DAYS",
    type=click.FloatRange(min=0, min_open=True),
    help="Refuse the token after this many days (default: valid until revoked).",
)
@server_data_options
@json_option
def create_token(
    user: str,
    name: str,
    expires_in_days: float | None,
    data_dir: Path,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Make a new token for USER and print it, shown once.

    For a user who lost theirs. The user's other tokens keep working; they can revoke a lost
    one with `modelyard token revoke ID`.

    \b
    Example:
      modelyard admin create-token alice --name laptop --expires-in 30
    """
    store = AccountStore.open(server_settings(data_dir, database_url))
    expires_in_s = None if expires_in_days is None else expires_in_days * _DAY_S
    token, secret = store.create_token(user, name, expires_in_s=expires_in_s)
    if as_json:
        print_json(_token_json(token, secret))
        return
    print_message(f"Created token {token.id} ({name!r}) for user {user!r}.")
    _print_secret(token, secret)


def _print_secret(token: TokenRecord, secret: str) -> None:
    expiry = f", valid until {iso_utc(token.expires_at)}" if token.expires_at else ""
    print_message(f"The token, shown this once (the server keeps only its hash){expiry}:")
    print_message("")
    print_message(f"  {secret}")
    print_message("")
    print_message(
        "Use it with `modelyard login SERVER` (which asks for it), or set MODELYARD_TOKEN to it."
    )


def _user_json(user: UserRecord) -> dict[str, Any]:
    return {"name": user.name, "admin": user.admin, "createdAt": iso_utc(user.created_at)}


def _token_json(token: TokenRecord, secret: str) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "user": token.user,
        "createdAt": iso_utc(token.created_at),
        "expiresAt": iso_utc(token.expires_at),
        "secret": secret,
    }


@group.command("create-workspace")
@click.argument("name")
@click.option("--owner", required=True, metavar="USER", help="The workspace's first owner.")
@server_data_options
@json_option
def create_workspace(
    name: str, owner: str, data_dir: Path, database_url: str | None, as_json: bool
) -> None:
    """Create workspace NAME on the server, USER its first owner.

    The server makes the workspace's folder (and, on PostgreSQL, its schema) when the
    workspace is first used, with its own storage settings.

    \b
    Example:
      modelyard admin create-workspace team --owner alice
    """
    store = AccountStore.open(server_settings(data_dir, database_url))
    entry = store.create_workspace(name, owner)
    if as_json:
        print_json({"id": entry.id, "name": entry.name, "owner": owner})
        return
    print_message(f"Created workspace {name!r} ({entry.id}), owned by {owner!r}.")


@group.command("set-member")
@click.argument("workspace")
@click.argument("user")
@click.argument("role", type=click.Choice(["reader", "contributor", "owner"]))
@server_data_options
def set_member(
    workspace: str, user: str, role: str, data_dir: Path, database_url: str | None
) -> None:
    """Give USER a ROLE in WORKSPACE.

    Owners of the workspace can do the same through the server's API.

    \b
    Example:
      modelyard admin set-member team bob contributor
    """
    store = AccountStore.open(server_settings(data_dir, database_url))
    store.set_member(workspace, user, role)
    print_message(f"{user!r} is now a {role} of workspace {workspace!r}.")
