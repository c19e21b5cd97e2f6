"""Running the server: ``modelyard server`` hands the app to uvicorn, in one or more processes.

Each of uvicorn's worker processes builds its own app (:func:`app_from_environment`) from the
settings the command put in ``MODELYARD_SERVER_SETTINGS``; the accounts database is migrated
once before they start, and each one's migration check then finds it at the newest schema
(several servers started at once on one database take turns: ``store/migrate.py``).

Example::

    serve(ServerSettings(data_dir=Path("/srv/modelyard")), host="127.0.0.1", port=8765)
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from modelyard.server.accounts import AccountStore
from modelyard.server.app import create_app
from modelyard.server.settings import ServerSettings
from modelyard.store.private import make_private_folder

SETTINGS_ENV = "MODELYARD_SERVER_SETTINGS"


def _settings_from_environment() -> ServerSettings:
    raw = json.loads(os.environ[SETTINGS_ENV])
    raw["data_dir"] = Path(raw["data_dir"])
    raw["datastore_roots"] = tuple(raw["datastore_roots"])
    return ServerSettings(**raw)


def app_from_environment() -> FastAPI:
    """The app of one worker process (uvicorn's factory)."""
    return create_app(_settings_from_environment())


def serve(
    settings: ServerSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    workers: int = 1,
    log_level: str = "info",
) -> None:
    """Serve until interrupted (SIGINT or SIGTERM: uvicorn finishes the requests under way)."""
    settings = dataclasses.replace(settings, data_dir=settings.data_dir.absolute())
    make_private_folder(settings.data_dir)
    AccountStore(settings.accounts_database_url).close()  # migrated once, before the workers
    config = uvicorn.Config(
        "modelyard.server.main:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        # Request bodies wait in the app's own reader, which keeps to max_body_bytes.
        timeout_keep_alive=30,
    )
    # Bound before the app starts (as uvicorn.run does for several workers): with port 0 the
    # system picks the port, and the default public URL names the one it picked.
    sock = config.bind_socket()
    if settings.public_url is None:
        settings = dataclasses.replace(
            settings, public_url=default_public_url(host, sock.getsockname()[1])
        )
    data = dataclasses.asdict(settings)
    data["data_dir"] = str(settings.data_dir)
    # The environment, not the command line: storage credentials stay out of `ps`.
    os.environ[SETTINGS_ENV] = json.dumps(data)
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
        return
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(3)  # uvicorn's exit status for a server that did not start


def default_public_url(host: str, port: int) -> str:
    """``http://<host>:<port>``, an IPv6 address in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
