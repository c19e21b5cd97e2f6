"""A real modelyard server process for the tests: ``modelyard server`` under uvicorn.

:meth:`ServerProcess.start` runs the ``modelyard server`` command in a subprocess on a port
the system picks (read back from uvicorn's start-up line), with an admin account made first
on the same accounts database (as `modelyard admin create-user --admin` would make it).
:meth:`kill` ends it with SIGKILL and :meth:`restart` starts it again on the same port and
data, for the tests of a server that dies mid-run.

Example::

    server = ServerProcess.start(tmp_path / "server")
    token = server.user("ada")                       # a user and their token
    name = server.new_workspace(owner="ada")
    RemoteBackend(server.url, name, token).ensure_experiment("e")
    server.stop()
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from modelyard.server.accounts import AccountStore
from modelyard.server.settings import ServerSettings

# Only a failure waits this long (a loaded 2-core test machine once took over 60 s).
START_TIMEOUT_S = 180.0
_RUNNING = re.compile(r"Uvicorn running on http://([\d.]+):(\d+)")


@dataclass
class ServerProcess:
    data_dir: Path
    database_url: str | None
    options: list[str]
    env: dict[str, str]
    url: str = ""
    port: int = 0
    admin_token: str = ""
    process: subprocess.Popen[bytes] | None = None
    # The server's last lines of output, for a test's failure message.
    output: deque[str] = field(default_factory=lambda: deque(maxlen=200))

    @classmethod
    def start(
        cls,
        data_dir: Path,
        *,
        database_url: str | None = None,
        options: list[str] | None = None,
        env: dict[str, str] | None = None,
        port: int = 0,
    ) -> ServerProcess:
        """Start a server; with ``port`` 0 the system picks one (uvicorn says which), except
        with ``--workers``, where uvicorn names the port it was given: pass a free one."""
        server = cls(data_dir, database_url, list(options or []), dict(env or {}), port=port)
        accounts = server.accounts()
        accounts.create_user("admin", admin=True)
        _record, server.admin_token = accounts.create_token("admin", "tests")
        accounts.close()
        server._launch()
        return server

    @property
    def settings(self) -> ServerSettings:
        return ServerSettings(data_dir=self.data_dir, database_url=self.database_url)

    def accounts(self) -> AccountStore:
        """The server's accounts database, opened in the test's process."""
        return AccountStore.open(self.settings)

    def _launch(self) -> None:
        command = [
            sys.executable, "-m", "modelyard.cli.main", "server",
            "--data-dir", str(self.data_dir), "--port", str(self.port), "--log-level", "info",
            *(["--database-url", self.database_url] if self.database_url else []),
            *self.options,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
        )
        found = threading.Event()

        def read(stream: Any) -> None:
            for raw in stream:
                line = raw.decode(errors="replace").rstrip()
                self.output.append(line)
                match = _RUNNING.search(line)
                if match and not found.is_set():
                    self.port = int(match.group(2))
                    found.set()

        threading.Thread(target=read, args=(self.process.stdout,), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not found.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + "\n".join(self.output))
        self.url = f"http://127.0.0.1:{self.port}"
        # Several workers bind the port each as they start (SO_REUSEPORT), after the line.
        while True:
            try:
                httpx.get(f"{self.url}/api/v1/health", timeout=10).raise_for_status()
                return
            except httpx.TransportError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "the server did not answer:\n" + "\n".join(self.output)
                    ) from None
                time.sleep(0.05)

    def user(self, name: str | None = None, *, admin: bool = False) -> str:
        """A new user (named ``name``, else made up) and a token of theirs."""
        name = name or f"u{uuid.uuid4().hex[:10]}"
        accounts = self.accounts()
        try:
            accounts.create_user(name, admin=admin)
            _record, token = accounts.create_token(name, "tests")
        finally:
            accounts.close()
        return token

    def member(self, workspace: str, role: str) -> str:
        """A token of a new user who is a ``role`` of ``workspace``."""
        name = f"u{uuid.uuid4().hex[:10]}"
        token = self.user(name)
        accounts = self.accounts()
        try:
            accounts.set_member(workspace, name, role)
        finally:
            accounts.close()
        return token

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request to the server, as the admin unless ``token`` is given."""
        sent = {"Authorization": f"Bearer {token or self.admin_token}", **(headers or {})}
        return httpx.request(method, f"{self.url}{path}", headers=sent, timeout=60, **kwargs)

    def new_workspace(self, owner: str = "admin", **members: str) -> str:
        """A new workspace of ``owner`` (the admin by default), with ``members`` by role."""
        name = f"ws-{uuid.uuid4().hex[:10]}"
        response = self.call("POST", "/api/v1/workspaces", json={"name": name})
        assert response.status_code == 201, response.text
        accounts = self.accounts()
        try:
            if owner != "admin":
                accounts.set_member(name, owner, "owner")
            for user, role in members.items():
                accounts.set_member(name, user, role)
        finally:
            accounts.close()
        return name

    def kill(self) -> None:
        """End the server with SIGKILL: no request under way is finished."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def restart(self) -> None:
        """Start it again on the same port and data."""
        self._launch()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
