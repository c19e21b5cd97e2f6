"""The client's side of an upload in parts (the protocol is ``server/uploads.py``'s).

A file of more than :data:`PARTED_THRESHOLD` bytes goes to the server in parts of
:data:`PART_BYTES`, :data:`PARALLEL_PARTS` at a time, each with its SHA-256. A part whose
connection broke, or that arrived altered, is sent again alone (``Transport``'s retries), so
a broken connection costs one part, never the file.

An upload that stopped (the server was away for longer than the client retries, the client
was killed) resumes when the same file is uploaded to the same place again: its id is kept
in ``$XDG_CACHE_HOME/modelyard/uploads`` (0600) until the upload ends, and the server says
which parts it holds, so only the others are sent.

Example::

    reply = upload_in_parts(transport, "/api/v1/workspaces/team/calls/upload_run_file",
                            {"run_id": "r1", "name": "outputs/big.bin"}, Path("big.bin"))
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from modelyard import errors
from modelyard.backend.remote import FILE_SHA256_HEADER, SHA256_HEADER, UPLOAD_ID_HEADER
from modelyard.store.private import make_private_folder, write_private_file

if TYPE_CHECKING:
    from modelyard.backend.remote.transport import Transport

# Files up to this size go in one request: parts cost a request each and a check at the end.
PARTED_THRESHOLD = 32 << 20
PART_BYTES = 16 << 20
PARALLEL_PARTS = 4


def upload_in_parts(
    transport: Transport, path: str, params: dict[str, Any], source: Path, size: int, digest: str
) -> Any:
    """Upload ``source`` (``size`` bytes, SHA-256 ``digest``) to the upload call at ``path``
    in parts, and return the call's JSON reply."""
    memo = _memo_file(transport.server, path, params, size, digest)
    upload_id = _remembered(memo) or secrets.token_hex(16)
    make_private_folder(memo.parent)
    write_private_file(memo, upload_id.encode())
    common = {UPLOAD_ID_HEADER: upload_id, FILE_SHA256_HEADER: digest}

    def send(start: int, end: int) -> httpx.Response:
        headers = {**common, "Content-Range": f"bytes {start}-{end - 1}/{size}"}
        with open(source, "rb") as file:
            data = os.pread(file.fileno(), end - start, start)
        if len(data) != end - start:
            raise errors.ValidationError(
                "source", f"{source} changed while it was uploaded ({size:,} bytes before)"
            )
        headers[SHA256_HEADER] = hashlib.sha256(data).hexdigest()
        headers["Content-Type"] = "application/octet-stream"
        return transport.retrying(
            lambda: transport.client.post(path, params=params, content=data, headers=headers),
            path,
        )

    def ask() -> httpx.Response:
        headers = {**common, "Content-Range": f"bytes */{size}"}
        return transport.retrying(
            lambda: transport.client.post(path, params=params, headers=headers), path
        )

    answer = ask()
    if answer.status_code == 202:
        held = answer.json()["received"]
        missing = [
            (start, min(start + PART_BYTES, size))
            for start in range(0, size, PART_BYTES)
            if not _held(held, start, min(start + PART_BYTES, size))
        ]
        # The first part that fails for good (after its retries) ends the upload: map
        # cancels the parts not begun, so a server that is away costs one wait, not one
        # per part.
        with ThreadPoolExecutor(PARALLEL_PARTS, thread_name_prefix="modelyard-upload") as pool:
            answers = list(pool.map(lambda span: send(*span), missing))
        answer = next((a for a in answers if a.status_code == 200), None) or ask()
    if answer.status_code != 200:
        raise errors.StorageError(
            f"the server holds {answer.json().get('received')} of the {size:,} bytes of "
            f"{source} after every part was sent; upload it again"
        )
    memo.unlink(missing_ok=True)
    return answer.json()


def _held(spans: list[list[int]], start: int, end: int) -> bool:
    return any(first <= start and end <= last for first, last in spans)


def _memo_file(server: str, path: str, params: dict[str, Any], size: int, digest: str) -> Path:
    """Where the id of the upload of this file to this place is kept while it lasts."""
    key = json.dumps([server, path, sorted(params.items()), size, digest], default=str)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelyard" / "uploads" / hashlib.sha256(key.encode()).hexdigest()


def _remembered(memo: Path) -> str | None:
    try:
        return memo.read_text().strip() or None
    except OSError:
        return None


__all__ = ["PARTED_THRESHOLD", "PART_BYTES", "upload_in_parts"]
