"""``modelyard server``, ``login``/``logout`` and ``token create|list|revoke``: a team's server.

Example::

    $ modelyard server --port 8765 --database-url postgresql+psycopg://ml@db/modelyard
    $ modelyard login http://127.0.0.1:8765          # asks for the token, keeps it (0600)
    $ modelyard token create laptop --expires-in 30
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modelyard.backend.remote import API
from modelyard.backend.remote.credentials import (
    TOKEN_ENV,
    forget_token,
    normalize_server,
    save_token,
    token_for,
)

if TYPE_CHECKING:
    from modelyard.backend.remote.transport import Transport
from modelyard.cli.admin import server_data_options, server_settings
from modelyard.cli.output import format_time, print_json, print_message, print_table
from modelyard.cli.params import json_option
from modelyard.cli.state import CliState
from modelyard.errors import ConfigError


@click.command("server")
@server_data_options
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--storage-url",
    metavar="URL",
    help="Where the workspaces' files go (s3://bucket/prefix); default: the data folder. "
    "S3 credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
)
@click.option(
    "--storage-endpoint-url",
    metavar="URL",
    help="The S3-compatible endpoint of --storage-url (MinIO, Ceph, ...).",
)
@click.option(
    "--datastore-root",
    "datastore_roots",
    multiple=True,
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder of this machine that workspaces may register as datastores (shared "
    "data); repeat for several. Without it, only the workspaces' own folders.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes sharing the port.",
)
@click.option(
    "--public-url",
    metavar="URL",
    help="The URL this server's cluster nodes reach it at (their runs report there); "
    "default: http://HOST:PORT it listens on. Give it when the nodes are on other machines "
    "or the server is behind a proxy.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def server_command(
    data_dir: Path,
    database_url: str | None,
    host: str,
    port: int,
    storage_url: str | None,
    storage_endpoint_url: str | None,
    datastore_roots: tuple[Path, ...],
    workers: int,
    public_url: str | None,
    log_level: str,
) -> None:
    """Serve workspaces to a team over HTTP.

    The OpenAPI description is at /docs.

    SQLite and folders in --data-dir by default, so `modelyard server` alone works. Users and
    workspaces are made with `modelyard admin` on this machine; there is no default user or
    token.

    \b
    Example:
      modelyard admin create-user ada --admin
      modelyard server --host 0.0.0.0 --port 8765 \\
          --database-url postgresql+psycopg://ml@db/modelyard --storage-url s3://ml/yard
    """
    # Imported here: uvicorn and FastAPI take ~0.5 s to import, which every other command
    # would pay for nothing.
    from modelyard.server.main import serve

    options: dict[str, Any] = {}
    if storage_url is not None and storage_url.startswith("s3://"):
        key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        if key and secret:
            options.update(key=key, secret=secret)
        if storage_endpoint_url:
            options["client_kwargs"] = {"endpoint_url": storage_endpoint_url}
    elif storage_endpoint_url:
        raise click.UsageError("--storage-endpoint-url goes with an s3:// --storage-url")
    settings = dataclasses.replace(
        server_settings(data_dir, database_url),
        storage_url=storage_url,
        storage_options=options,
        datastore_roots=tuple(str(root.resolve()) for root in datastore_roots),
        public_url=None if public_url is None else _public_url(public_url),
    )
    serve(settings, host=host, port=port, workers=workers, log_level=log_level)


def _public_url(url: str) -> str:
    try:
        return normalize_server(url)
    except ConfigError as error:
        raise click.BadParameter(str(error), param_hint="--public-url") from None


def _transport(state: CliState, server: str | None) -> Transport:
    # Imported here: httpx takes ~0.2 s to import, which every other command would pay.
    from modelyard.backend.remote.transport import Transport

    """A transport to ``server``, or to the server of the workspace config found."""
    if server is None:
        found = state.workspace.server
        if found is None:
            raise ConfigError("the workspace config names no server; give one with --server URL")
        server = found
    url = normalize_server(server)
    return Transport(url, token_for(url))


server_option = click.option(
    "--server", metavar="URL", help="The server; default: the workspace config's."
)


@click.command("login")
@click.argument("server")
def login_command(server: str) -> None:
    """Log in to SERVER: keep a token for it.

    The token is read from MODELYARD_TOKEN, else asked for (not echoed), checked with the
    server, and kept in this account's credentials file (0600); never in a config.json.

    \b
    Example:
      modelyard login https://ml.example.com
    """
    from modelyard.backend.remote.transport import Transport  # see _transport

    url = normalize_server(server)
    token = os.environ.get(TOKEN_ENV) or click.prompt("Token", hide_input=True).strip()
    who = Transport(url, token).request("GET", f"{API}/whoami")
    path = save_token(url, token)
    print_message(f"Logged in to {url} as {who.get('user')}; the token is kept in {path}")


@click.command("logout")
@click.argument("server")
def logout_command(server: str) -> None:
    """Forget the token kept for SERVER.

    The token stays valid: `modelyard token revoke` ends it.

    \b
    Example:
      modelyard logout https://ml.example.com
    """
    if forget_token(server):
        print_message(f"Forgot the token for {normalize_server(server)}")
    else:
        print_message(f"No token was kept for {normalize_server(server)}")


@click.group("token")
def token_group() -> None:
    """Your tokens on a server: create, list, revoke.

    \b
    Example:
      modelyard token create ci --expires-in 90 --server https://ml.example.com
    """


@token_group.command("create")
@click.argument("name")
@click.option(
    "--expires-in",
    "days",
    type=click.FloatRange(min=0, min_open=True, max=3650),
    metavar="DAYS",
    help="Days until it stops working; default: never.",
)
@server_option
@json_option
@click.pass_obj
def create_token(
    state: CliState, name: str, days: float | None, server: str | None, as_json: bool
) -> None:
    """Make a token of yours, shown once.

    Only its hash is kept: keep it somewhere safe.

    \b
    Example:
      modelyard token create laptop --expires-in 30
    """
    reply = _transport(state, server).request(
        "POST", f"{API}/tokens", json={"name": name, "expires_in_days": days}
    )
    if as_json:
        print_json(reply)
        return
    print_message(f"Token {reply['id']} ({name}), shown once; keep it somewhere safe:")
    click.echo(reply["token"])


@token_group.command("list")
@server_option
@json_option
@click.pass_obj
def list_tokens(state: CliState, server: str | None, as_json: bool) -> None:
    """Your tokens (never their secrets).

    \b
    Example:
      modelyard token list --server https://ml.example.com
    """
    tokens = _transport(state, server).request("GET", f"{API}/tokens")
    if as_json:
        print_json(tokens)
        return
    print_table(
        ["ID", "NAME", "CREATED", "EXPIRES", "LAST USED", "REVOKED"],
        [
            [
                t["id"],
                t["name"],
                format_time(t.get("created_at")),
                format_time(t.get("expires_at")) or "never",
                format_time(t.get("last_used_at")),
                format_time(t.get("revoked_at")),
            ]
            for t in tokens
        ],
        empty="No tokens (modelyard token create NAME makes one).",
    )


@token_group.command("revoke")
@click.argument("token_id")
@server_option
@click.pass_obj
def revoke_token(state: CliState, token_id: str, server: str | None) -> None:
    """End a token of yours at once.

    Revoking it again does nothing.

    \b
    Example:
      modelyard token revoke tok1a2b3c4d5e6f7a8b
    """
    _transport(state, server).request("DELETE", f"{API}/tokens/{token_id}")
    print_message(f"Token {token_id} is revoked")


COMMANDS = (server_command, login_command, logout_command, token_group)
__all__ = ["COMMANDS"]
