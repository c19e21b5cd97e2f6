"""A throwaway PostgreSQL cluster for the test session (Debian's postgresql package).

``initdb`` makes a cluster in a temporary folder and ``pg_ctl`` starts it listening on a Unix
socket only (no TCP port, so parallel test sessions cannot collide); each test then gets a
database of its own. PostgreSQL refuses to run as root, so under root the cluster belongs to
the ``postgres`` account that the Debian package makes.

Example::

    server = PostgresServer.start()
    url = server.new_database()     # postgresql+psycopg://postgres@/t_...?host=/tmp/...
    server.stop()
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

PORT = 5432  # only names the socket file (.s.PGSQL.5432): nothing listens on TCP


def find_bin_dir() -> Path | None:
    """The folder of initdb and pg_ctl, or None when PostgreSQL is not installed."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _as_owner(owner: str | None, command: list[str]) -> list[str]:
    return ["runuser", "-u", owner, "--", *command] if owner else command


@dataclass
class PostgresServer:
    """One running cluster; ``stop()`` removes it."""

    root: Path
    bin_dir: Path
    owner: str | None

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @classmethod
    def start(cls) -> PostgresServer:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError(
                "PostgreSQL is not installed: `make system-deps` installs Debian's postgresql"
            )
        owner = None
        root = Path(tempfile.mkdtemp(prefix="modelyard-pg-"))
        if os.geteuid() == 0:
            owner = "postgres"
            account = pwd.getpwnam(owner)
            os.chown(root, account.pw_uid, account.pw_gid)
        server = cls(root, bin_dir, owner)
        data = root / "data"
        subprocess.run(
            _as_owner(
                owner,
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
            ),
            check=True,
            capture_output=True,
        )
        socket_dir = server.socket_dir
        subprocess.run(_as_owner(owner, ["mkdir", "-p", str(socket_dir)]), check=True)
        options = (
            f"-k {socket_dir} -p {PORT} -c listen_addresses='' -c max_connections=400 "
            "-c shared_buffers=32MB -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off"
        )
        subprocess.run(
            _as_owner(
                owner,
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(root / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "start",
                ],
            ),
            check=True,
            capture_output=True,
        )
        return server

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={PORT}"

    def new_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(
            host=str(self.socket_dir),
            port=PORT,
            user="postgres",
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            _as_owner(
                self.owner,
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.root / "data"),
                    "-m",
                    "immediate",
                    "stop",
                ],
            ),
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)
