"""A server under load, killed, and doubled: nothing acknowledged is lost, nothing doubled.

- 50 runs logging 10,000 points each at once, through the server on PostgreSQL and S3, store
  exactly 500,000 points, each run's in its order.
- A server killed with SIGKILL in the middle of a run and started again: the run (whose
  supervisor writes to the workspace directly) goes on and completes; a client that was
  logging and following its output retries through the outage and loses no point and no line,
  and makes no duplicate.
- Two server processes on one database, and one server of several worker processes, serve
  one workspace together.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from modelyard import Experiment, Run, Workspace
from modelyard.backend.records import SCALAR, MetricBatch
from modelyard.backend.remote.backend import RemoteBackend
from modelyard.hosts import free_port
from modelyard.script_run_config import ScriptRunConfig
from tests.helpers import wait_for
from tests.postgres import PostgresServer
from tests.server_process import ServerProcess

SCRIPTS = Path(__file__).parents[1] / "runner" / "scripts"
RUNS, POINTS = 50, 10_000


def _member_workspace(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Workspace:
    user = f"u{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MODELYARD_TOKEN", server.user(user))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    return Workspace.get(server.new_workspace(owner=user), server=server.url)


def test_fifty_runs_of_ten_thousand_points_store_exactly_half_a_million(
    http_server_at_scale: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ws = _member_workspace(http_server_at_scale, monkeypatch, tmp_path)
    experiment = Experiment(ws, "load")
    runs = [experiment.start_logging() for _ in range(RUNS)]
    start = threading.Barrier(RUNS)
    failures: list[BaseException] = []

    def log(run: Run) -> None:
        try:
            start.wait()
            for i in range(POINTS):
                run.log("value", float(i))
            run.complete()
        except BaseException as error:  # the test fails naming it
            failures.append(error)

    threads = [threading.Thread(target=log, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    stored = 0
    for run in runs:
        values = Run.get(ws, run.id).get_metrics()["value"]
        assert values == [float(i) for i in range(POINTS)], run.id
        stored += len(values)
    assert stored == RUNS * POINTS == 500_000


def test_a_batch_sent_twice_is_stored_once(http_server_at_scale: ServerProcess) -> None:
    server = http_server_at_scale
    backend = RemoteBackend(server.url, server.new_workspace(), server.admin_token)
    backend.create_run("twice", "e", run_type="script", status="Running")
    batch = MetricBatch("m", SCALAR, "batch-1", [1.0, 2.0], [0, 1], [0.0, 0.0])
    backend.log_metrics("twice", [batch])
    backend.log_metrics("twice", [batch])  # a retry after a lost reply
    (info,) = backend.list_metrics("twice")
    assert info.count == 2


def test_a_server_killed_mid_run_comes_back_and_nothing_is_lost_or_doubled(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = ServerProcess.start(tmp_path / "server")
    try:
        ws = _member_workspace(server, monkeypatch, tmp_path)
        go = tmp_path / "go"
        run = Experiment(ws, "steady").submit(
            ScriptRunConfig(SCRIPTS, "steady.py", arguments=["--points", 1000, "--until", go])
        )
        wait_for(lambda: run.get_status() == "Running", timeout=60)
        interactive = Experiment(ws, "client").start_logging()
        logged = threading.Event()
        failures: list[BaseException] = []

        def log_through_the_outage() -> None:
            try:
                for i in range(5000):
                    interactive.log("value", i)
                    if i % 500 == 0:
                        interactive.flush()
                        time.sleep(0.1)
                interactive.complete()
            except BaseException as error:
                failures.append(error)
            finally:
                logged.set()

        logger = threading.Thread(target=log_through_the_outage)
        logger.start()
        time.sleep(0.5)
        server.kill()
        go.touch()  # the run finishes while the server is away
        time.sleep(2.0)
        server.restart()
        details = run.wait_for_completion(show_output=True)
        logger.join(timeout=300)
        assert not failures, failures
        assert details["status"] == "Completed", details
        assert run.get_metrics()["value"] == list(range(1000))
        assert Run.get(ws, interactive.id).get_metrics()["value"] == list(range(5000))
        printed = capsys.readouterr().out
        assert printed.count("flushed 1000") == 1 and printed.count("done") == 1
        # The client said the server was away, and that it answered again.
        said = [r.getMessage() for r in caplog.records if r.name == "modelyard"]
        assert any("is not answering" in m and "retrying" in m for m in said), said
        assert any("answers again" in m for m in said), said
    finally:
        server.stop()


def test_two_servers_on_one_database_serve_one_workspace(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    database = postgres.new_database()
    first = ServerProcess.start(tmp_path / "shared", database_url=database)
    second = ServerProcess(tmp_path / "shared", database, [], {})
    second.admin_token = first.admin_token
    second._launch()
    try:
        name = first.new_workspace()
        one = RemoteBackend(first.url, name, first.admin_token)
        other = RemoteBackend(second.url, name, second.admin_token)
        one.create_run("r", "e", run_type="script", status="Running")
        assert other.get_run("r").id == "r"

        def log(backend: RemoteBackend, prefix: str) -> None:
            for i in range(20):
                batch = MetricBatch(
                    "m", SCALAR, f"{prefix}{i}", [float(i)] * 100, [0] * 100, [0.0] * 100
                )
                backend.log_metrics("r", [batch])

        threads = [
            threading.Thread(target=log, args=(one, "a")),
            threading.Thread(target=log, args=(other, "b")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert one.list_metrics("r")[0].count == other.list_metrics("r")[0].count == 4000
    finally:
        first.stop()
        second.stop()


def test_a_server_of_several_workers_serves_one_workspace(tmp_path: Path) -> None:
    server = ServerProcess.start(
        tmp_path / "workers", options=["--workers", "2"], port=free_port("127.0.0.1")
    )
    try:
        backend = RemoteBackend(server.url, server.new_workspace(), server.admin_token)
        for i in range(20):
            backend.ensure_experiment(f"e{i}")
        assert len(backend.list_experiments()) == 20
    finally:
        server.stop()
