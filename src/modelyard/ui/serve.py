"""Serving the UI of one workspace until interrupted (``modelyard ui``).

Example::

    serve(Workspace.from_config(), host="127.0.0.1", port=8766)
"""

from __future__ import annotations

import secrets
import signal
import socket
import sys
from pathlib import Path

import uvicorn

from modelyard.backend.base import Backend
from modelyard.ui.app import create_app
from modelyard.ui.portal import remove_ui_file, write_ui_file


class _Stopped(Exception):
    """SIGTERM arrived (after uvicorn's shutdown)."""


def _stop(signum: int, frame: object) -> None:
    raise _Stopped


class _AnnouncingServer(uvicorn.Server):
    """Prints the URL once the server accepts connections, not before."""

    def __init__(self, config: uvicorn.Config, announce: str) -> None:
        super().__init__(config)
        self.announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(self.announce, flush=True)
            print("Open that URL in a browser; press Ctrl-C to stop.", file=sys.stderr, flush=True)


def base_url(host: str, port: int) -> str:
    """``http://<host>:<port>/``, an IPv6 address in brackets; ``127.0.0.1`` for a UI bound to
    every address (it answers there too)."""
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(
    backend: Backend,
    folder: Path | None,
    *,
    host: str = "127.0.0.1",
    port: int = 8766,
    log_level: str = "warning",
) -> None:
    """Serve ``backend``'s UI on ``host``:``port`` (0: a free port) until SIGINT or SIGTERM,
    printing its URL with a new token first. ``folder`` is the embedded workspace's folder,
    where the URL is kept for ``Run.get_portal_url()`` while the UI runs."""
    token = secrets.token_urlsafe(32)
    config = uvicorn.Config(
        "modelyard.ui.app:create_app", host=host, port=port, log_level=log_level
    )
    # Bound before the app is made: with port 0 the system picks the port, and the app's
    # Host check must name the one it picked.
    sock = config.bind_socket()
    bound = sock.getsockname()[1]
    config.app = create_app(backend, token=token, host=host, port=bound)
    url = base_url(host, bound)
    # uvicorn stops on SIGTERM, then sends it again to this process for the handler that was
    # there before; Python's default would end the process before the URL file is removed.
    signal.signal(signal.SIGTERM, _stop)
    if folder is not None:
        write_ui_file(folder, url)
    name = backend.get_workspace().name
    announce = f"modelyard ui: workspace {name!r} at {url}?token={token}"
    try:
        _AnnouncingServer(config, announce).run(sockets=[sock])
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        if folder is not None:
            remove_ui_file(folder)
