"""Small real packages for environment tests: wheels written into a find-links folder, and a
find-links page over HTTP that can hold its answers back (to catch a build in the act).

A wheel is a zip file with the package, its METADATA, WHEEL and RECORD (PEP 427); writing one
takes a millisecond and needs no build backend or network, and pip and uv install it as they
would any other. Names carry a random part, so no index or installer cache knows them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import threading
import uuid
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def unique_name(prefix: str = "mytiny") -> str:
    """A distribution name no index has."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def module_name(distribution: str) -> str:
    return distribution.replace("-", "_")


def make_wheel(
    folder: Path, name: str, version: str = "1.0", requires: list[str] | None = None
) -> Path:
    """Write ``name-version`` as a pure-Python wheel into ``folder``; its module ``name`` (with
    ``_`` for ``-``) has ``VERSION``."""
    folder.mkdir(parents=True, exist_ok=True)
    module = module_name(name)
    info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {requirement}\n" for requirement in requires or []
    )
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": metadata,
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: modelyard-tests\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = hashlib.sha256(text.encode()).digest()
        encoded = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        record.append(f"{path},sha256={encoded},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


class _Handler(SimpleHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.index.requested.set()
        self.server.index.released.wait(120)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    index: StallingIndex


class StallingIndex:
    """``folder`` as a find-links page on 127.0.0.1. While not released, every request waits:
    an installer reading it is stuck in the middle of a build until the test says so."""

    def __init__(self, folder: Path) -> None:
        self.requested = threading.Event()
        self.released = threading.Event()
        handler = functools.partial(_Handler, directory=str(folder))
        self.server = _Server(("127.0.0.1", 0), handler)
        self.server.index = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
