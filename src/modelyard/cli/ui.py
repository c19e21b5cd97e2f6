"""``modelyard ui``: the web UI of an embedded workspace, on 127.0.0.1.

Example::

    $ modelyard ui --workspace .modelyard/demo --port 8766
    modelyard ui: workspace 'demo' at http://127.0.0.1:8766/?token=...
"""

from __future__ import annotations

from pathlib import Path

import click

from modelyard.backend.workspace_folder import WORKSPACE_FILE
from modelyard.cli.state import CliState
from modelyard.errors import ConfigError
from modelyard.ui.portal import DEFAULT_PORT
from modelyard.workspace import Workspace


def _open(state: CliState, where: str | None) -> Workspace:
    """The workspace in folder ``where`` (holding workspace.json), or the one its config
    names; the global options' workspace when None."""
    if where is None:
        return state.workspace
    path = Path(where)
    if (path / WORKSPACE_FILE).is_file():
        return Workspace._at(path.absolute())
    return CliState(config_path=where).workspace


@click.command("ui")
@click.option(
    "--workspace",
    "where",
    metavar="PATH_OR_CONFIG",
    help="A workspace folder, or its config.json (or a folder holding one). Default: the "
    "workspace the global options name, found as Workspace.from_config() does.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on. Anything but a loopback address lets other machines "
    "reach the UI (they still need its token).",
)
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="The port (0: any free one).",
)
@click.pass_obj
def command(state: CliState, where: str | None, host: str, port: int) -> None:
    """Serve the web UI of a workspace, for a browser.

    Pages show experiments, runs, live metric charts, logs, files, models and compute
    targets. It prints its URL with a new secret token; open it in a browser. Requests without the
    token are refused (401). While it runs, run.get_portal_url() and `modelyard run show`
    give its run pages' URLs.

    \b
    Example:
      modelyard ui --port 8766
    """
    workspace = _open(state, where)
    try:
        folder: Path | None = workspace.folder
    except ConfigError:
        folder = None
    # Imported here: uvicorn and FastAPI take ~0.5 s to import, which every other command
    # would pay.
    from modelyard.ui.serve import serve

    serve(workspace._backend, folder, host=host, port=port)
