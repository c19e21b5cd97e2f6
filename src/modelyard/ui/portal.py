"""Where the web UI of a workspace answers, for ``Run.get_portal_url()``.

While ``modelyard ui`` serves an embedded workspace it keeps ``ui.json`` (mode 0600: the
workspace is its owner's) in the workspace folder, with its base URL and process id, and
removes it at exit. A file whose process is gone (killed with SIGKILL) is ignored.

Example::

    write_ui_file(folder, "http://127.0.0.1:8766/")
    run_url(ui_base_url(folder), "mnist_1714557600_1a2b3c4d")
    # 'http://127.0.0.1:8766/runs/mnist_1714557600_1a2b3c4d'
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.parse
from pathlib import Path

from modelyard.runner.process_identity import is_running
from modelyard.store.private import write_private_file

UI_FILE = "ui.json"
DEFAULT_PORT = 8766
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}/"


def write_ui_file(folder: Path, url: str) -> Path:
    """Record that this process serves the UI of the workspace in ``folder`` at ``url``."""
    path = folder / UI_FILE
    data = json.dumps({"url": url, "pid": os.getpid()}).encode()
    write_private_file(path, data)
    return path


def remove_ui_file(folder: Path) -> None:
    """Remove the record, when this process wrote it (another ``modelyard ui`` may have
    taken the workspace over since)."""
    path = folder / UI_FILE
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()


def _alive(pid: object) -> bool:
    return isinstance(pid, int) and pid > 0 and is_running(pid, None)


def ui_base_url(folder: Path | None) -> str:
    """The URL of the running UI of the workspace in ``folder``, else :data:`DEFAULT_URL`
    (where ``modelyard ui`` answers once started)."""
    if folder is not None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            data = json.loads((folder / UI_FILE).read_text())
            url = data.get("url")
            if isinstance(url, str) and url.startswith("http") and _alive(data.get("pid")):
                return url if url.endswith("/") else url + "/"
    return DEFAULT_URL


def server_ui_url(server: str, workspace: str) -> str:
    """The base URL of the UI that server ``server`` serves for ``workspace``
    (``server/ui_pages.py``)."""
    return f"{server.rstrip('/')}/ui/{urllib.parse.quote(workspace, safe='')}/"


def run_url(base_url: str, run_id: str) -> str:
    """The run page's URL below ``base_url``."""
    return f"{base_url}runs/{urllib.parse.quote(run_id, safe='')}"
