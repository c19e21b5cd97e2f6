"""Where a client finds its token for a server: ``MODELYARD_TOKEN``, else the credentials file.

``modelyard login SERVER`` writes the token to ``~/.config/modelyard/credentials.json``
(``$XDG_CONFIG_HOME/modelyard`` when that is set), mode 0600, one token per server URL. A
token never goes into a ``config.json``: those are shared with a project, tokens are not.

Example::

    save_token("https://ml.example.com", "myd_...")
    token_for("https://ml.example.com")     # 'myd_...' (MODELYARD_TOKEN first, when set)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from modelyard.errors import ConfigError
from modelyard.store.private import make_private_folder, write_private_file

TOKEN_ENV = "MODELYARD_TOKEN"
CREDENTIALS_FILE = "credentials.json"


def credentials_path() -> Path:
    """The credentials file of this account."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "modelyard" / CREDENTIALS_FILE


def normalize_server(server: str) -> str:
    """A server URL as the credentials file keys it (no trailing slash); ConfigError for a
    URL that is not http(s)."""
    url = server.strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or len(url) <= len("https://"):
        raise ConfigError(
            f"{server!r} is not a server URL; give it as http://host:port or https://host"
        )
    return url


def _read() -> dict[str, Any]:
    path = credentials_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {"servers": {}}
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"cannot read the credentials file {path} ({error}); remove it and log in again "
            "with `modelyard login SERVER`"
        ) from error
    if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
        raise ConfigError(f"{path} is not a modelyard credentials file; remove it and log in")
    return data


def token_for(server: str) -> str | None:
    """The token to call ``server`` with: ``MODELYARD_TOKEN``, else the credentials file's."""
    if token := os.environ.get(TOKEN_ENV):
        return token
    entry = _read()["servers"].get(normalize_server(server))
    token = entry.get("token") if isinstance(entry, dict) else None
    return token if isinstance(token, str) else None


def save_token(server: str, token: str) -> Path:
    """Keep ``token`` for ``server`` in the credentials file (0600, written whole)."""
    data = _read()
    data["servers"][normalize_server(server)] = {"token": token}
    path = credentials_path()
    make_private_folder(path.parent)
    write_private_file(path, (json.dumps(data, indent=2) + "\n").encode())
    return path


def forget_token(server: str) -> bool:
    """Remove the token kept for ``server``; False when none was kept."""
    data = _read()
    if data["servers"].pop(normalize_server(server), None) is None:
        return False
    write_private_file(credentials_path(), (json.dumps(data, indent=2) + "\n").encode())
    return True


__all__ = [
    "TOKEN_ENV",
    "credentials_path",
    "forget_token",
    "normalize_server",
    "save_token",
    "token_for",
]
