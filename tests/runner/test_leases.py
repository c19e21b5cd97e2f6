"""Runs claimed with leases by agents sharing one PostgreSQL database (as agents on two machines
would, each with its own workspace folder and the same database and storage).

Each agent claims a run before it starts it (``claim_run``, atomic in the database); the run's
supervisor renews the lease with its heartbeat; any agent fails a run whose lease expired
(``expire_leases``), and the agent of the machine the run was on stops what is left of it.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard import Experiment, ScriptRunConfig, Workspace
from modelyard.backend.records import COMPLETED, FAILED, RUNNING
from modelyard.compute.local import ensure_agent, stop_agent
from modelyard.runner import local_compute
from modelyard.runner.process_identity import start_time
from modelyard.store.files import local_url
from tests.helpers import wait_for

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="agents tell processes apart through /proc"
)

MARK = """\
import os, sys
from modelyard import Run
run = Run.get_context()
with open(sys.argv[1], "a") as ledger:   # one line per start of the run, appended
    ledger.write(f"{run.id} {os.getpid()}\\n")
"""

STAY = """\
import os, sys, time
from modelyard import Run
run = Run.get_context()
run.log("before_the_crash", 1.0)
run.flush()
with open("pid.tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename("pid.tmp", "pid")
time.sleep(600)
"""


@pytest.fixture
def two_machines(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Workspace, Path]]:
    """A workspace on PostgreSQL with shared storage, opened from two folders: the first
    machine's (a Workspace) and the second's (its folder, for its agent)."""
    monkeypatch.setenv("MODELYARD_LOCAL_MAX_RUNS", "2")
    first = Workspace.create(
        "team",
        folder=tmp_path / "machine-a",
        database_url=postgres_url,
        storage_url=local_url(tmp_path / "shared-storage"),
    )
    second = tmp_path / "machine-b"
    second.mkdir(mode=0o700)
    shutil.copy2(first.folder / "workspace.json", second / "workspace.json")
    yield first, second
    for location in (first.folder, second):
        stop_agent(location)


def _script(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / f"src-{name}"
    folder.mkdir()
    (folder / f"{name}.py").write_text(text)
    return folder


def test_two_agents_on_one_database_start_each_of_20_runs_once(
    two_machines: tuple[Workspace, Path], tmp_path: Path
) -> None:
    first, second = two_machines
    ledger = tmp_path / "ledger.txt"
    ledger.touch()
    experiment = Experiment(first, "claims")
    config = ScriptRunConfig(
        str(_script(tmp_path, "mark", MARK)), "mark.py", arguments=[str(ledger)]
    )
    runs = [experiment.submit(config)]  # starts the first machine's agent
    ensure_agent(second, "team")  # and the second machine's, polling the same queue
    runs += [experiment.submit(config) for _ in range(19)]

    wait_for(lambda: all(run.get_status() == COMPLETED for run in runs), timeout=300)

    starts = Counter(line.split()[0] for line in ledger.read_text().splitlines())
    assert starts == Counter({run.id: 1 for run in runs})
    holders = {first._backend.get_run(run.id).lease_holder for run in runs}
    assert len(holders) == 2, f"both agents should have run some of the runs: {holders}"


def test_a_run_whose_supervisor_and_agent_died_fails_and_its_processes_stop(
    two_machines: tuple[Workspace, Path], tmp_path: Path
) -> None:
    first, second = two_machines
    run = Experiment(first, "crash").submit(
        ScriptRunConfig(str(_script(tmp_path, "stay", STAY)), "stay.py")
    )
    workdir = local_compute.compute_dir(first.folder) / "runs" / run.id / "wd"
    script_pid = int(wait_for(lambda: (workdir / "pid").exists() and (workdir / "pid").read_text()))
    script_start = start_time(script_pid)
    assert run.get_status() == RUNNING
    supervisor = _parent_of(script_pid)
    agent = _parent_of(supervisor)

    os.kill(agent, signal.SIGKILL)  # the first machine's agent and the run's supervisor die
    os.kill(supervisor, signal.SIGKILL)
    killed_at = time.monotonic()
    ensure_agent(second, "team")  # an agent elsewhere, sharing the database

    # The promised bound, as a deadline counted from the kill (not a timing of the machine).
    wait_for(lambda: run.get_status() == FAILED, timeout=60 - (time.monotonic() - killed_at))
    error = run.get_details()["error"]["message"]
    assert "lease held by" in error and "stopped answering" in error
    assert run.get_metrics()["before_the_crash"] == 1.0  # what was flushed is kept
    # The second machine cannot reach the first one's processes; the first one's agent,
    # when it comes back (the next submit there starts it), stops what is left.
    assert start_time(script_pid) == script_start
    ensure_agent(first.folder, "team")
    wait_for(lambda: start_time(script_pid) != script_start, timeout=30)


def _parent_of(pid: int) -> int:
    """The parent process of ``pid`` (field 4 of /proc/<pid>/stat, after the command name)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])
