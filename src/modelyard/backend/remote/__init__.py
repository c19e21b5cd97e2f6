"""The HTTP client of a modelyard server: :class:`~modelyard.backend.remote.backend.RemoteBackend`
(``backend.py``), its requests and retries (``transport.py``) and where its token comes from
(``credentials.py``).

This module holds only the API's paths and header names, so that naming them costs no
import of httpx or of the contract's models (~0.5 s together), which a submitted script
never needs.

Example::

    calls_path("team", "get_run")      # '/api/v1/workspaces/team/calls/get_run'
    workspace_path("team", "members", "bob")    # '/api/v1/workspaces/team/members/bob'
"""

from __future__ import annotations

import urllib.parse

API = "/api/v1"
# A file's SHA-256 (of an upload's body, or of one part of it), checked before it is kept.
SHA256_HEADER = "X-Modelyard-SHA256"
# An upload in parts (``server/uploads.py``): its id, and the whole file's SHA-256.
UPLOAD_ID_HEADER = "X-Modelyard-Upload-Id"
FILE_SHA256_HEADER = "X-Modelyard-File-SHA256"


def workspace_path(workspace_name: str, *below: str) -> str:
    """The route of workspace ``workspace_name``, or of what is ``below`` it (each part
    quoted: a name never reaches another route)."""
    parts = (workspace_name, *below)
    return f"{API}/workspaces/" + "/".join(urllib.parse.quote(part, safe="") for part in parts)


def calls_path(workspace_name: str, call: str) -> str:
    """The route of contract call ``call`` in workspace ``workspace_name``."""
    return workspace_path(workspace_name, "calls", call)


__all__ = [
    "API",
    "FILE_SHA256_HEADER",
    "SHA256_HEADER",
    "UPLOAD_ID_HEADER",
    "calls_path",
    "workspace_path",
]
