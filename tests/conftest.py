"""Fixtures shared by the whole suite: real workspaces in temporary folders."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fsspec.implementations.memory import MemoryFileSystem

from modelyard.experiment import Experiment
from modelyard.workspace import Workspace
from tests.accounts import Account, make_account
from tests.postgres import PostgresServer
from tests.s3 import KEY as S3_KEY
from tests.s3 import SECRET as S3_SECRET
from tests.s3 import S3Server
from tests.server_process import ServerProcess

# The tests press Ctrl-C for processes they start, which inherit an ignored SIGINT: a test run
# started in the background by a non-interactive shell (`make test &`, as CI scripts may) has
# it ignored, and its children would never get one. Python's own handler is what a terminal's
# run has; a handler, unlike SIG_IGN, is not passed on through exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _signal_handling() -> tuple[Any, ...]:
    """What processes started now inherit (the mask) or get (Python's SIGINT handler, which a
    child keeps only if the parent's SIGINT is not ignored), and the test process's handlers."""
    handlers = tuple(signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM))
    return (*handlers, frozenset(signal.pthread_sigmask(signal.SIG_BLOCK, [])))


@pytest.fixture(autouse=True)
def signals_left_as_found() -> Iterator[None]:
    """Each test leaves the process's signal handlers and mask as it found them: a changed
    mask or ignored SIGINT passes to every process a later test starts, and a Ctrl-C test
    there would wait forever for a process that cannot get the signal."""
    before = _signal_handling()
    yield
    after = _signal_handling()
    assert after == before, f"signal handling changed by this test: {before} -> {after}"


@pytest.fixture
def clean_memory_fs() -> Iterator[None]:
    """memory:// is one dict per process: empty it around a test that uses it."""
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]
    yield
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A new embedded workspace (SQLite file, local folders) in a temporary folder."""
    return Workspace.create("test-ws", folder=tmp_path / "ws")


@pytest.fixture(scope="session")
def mallory() -> Iterator[Account]:
    """A second local account, made for the session (root only; skipped otherwise)."""
    yield from make_account()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL cluster for the whole test session (each xdist worker's)."""
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """The URL of a new, empty PostgreSQL database of its own for one test."""
    return postgres.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty database of each kind the store supports: a test that takes
    it runs once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One real S3 endpoint (moto's server on 127.0.0.1) for the whole test session."""
    server = S3Server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_store(s3_server: S3Server) -> tuple[str, dict[str, Any]]:
    """``("s3://<new bucket>/data", storage_options)``: an empty bucket of its own for one test."""
    return s3_server.new_bucket()


# Debian's chromium (make system-deps), headless, without the background calls this machine's
# closed network refuses.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by Playwright, one for the whole test session: Playwright's
    sync API runs its own event loop, so a second one started in the same process while the
    first is open fails ("Sync API inside the asyncio loop")."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make system-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real modelyard server (uvicorn, SQLite and folders) for the whole test session."""
    server = ServerProcess.start(tmp_path_factory.mktemp("server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http_server_at_scale(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer, s3_server: S3Server
) -> Iterator[ServerProcess]:
    """One real modelyard server on PostgreSQL and S3 (moto's server) for the session."""
    bucket, _options = s3_server.new_bucket("yard")
    server = ServerProcess.start(
        tmp_path_factory.mktemp("server-at-scale"),
        database_url=postgres.new_database(),
        options=["--storage-url", bucket, "--storage-endpoint-url", s3_server.endpoint_url],
        env={"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET},
    )
    yield server
    server.stop()


@pytest.fixture
def experiment(workspace: Workspace) -> Experiment:
    return Experiment(workspace, "exp")


@pytest.fixture
def in_tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run the test with a fresh empty current folder."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield cwd


# Agents of the test workspaces go away soon after their last run, and stopping a run does
# not wait the production grace period: the suite leaves nothing running behind it.
os.environ.setdefault("MODELYARD_AGENT_IDLE_SECONDS", "5")
os.environ.setdefault("MODELYARD_KILL_GRACE_SECONDS", "2")
# Environments that runs build go to a cache of this test process, never the user's.
if "MODELYARD_ENV_CACHE" not in os.environ:
    os.environ["MODELYARD_ENV_CACHE"] = tempfile.mkdtemp(prefix="modelyard-test-envs-")
    atexit.register(shutil.rmtree, os.environ["MODELYARD_ENV_CACHE"], ignore_errors=True)
