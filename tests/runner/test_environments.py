"""Environments built for runs, through real runs on the local compute.

Every build is real: uv creates a virtual environment and installs wheels that the test wrote
into a find-links folder (tests/runner/wheels.py), plus the modelyard client's requirements
from the machine's package sources. Each test has its own environment cache.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard import Environment, Experiment, Run, Workspace
from modelyard.compute import local
from modelyard.errors import NotFoundError, RunFailedError, ValidationError
from modelyard.runner import local_compute
from modelyard.runner.envbuild.interpreters import list_interpreters
from modelyard.runner.envbuild.prepare import CONDA_TOOLS
from modelyard.script_run_config import ScriptRunConfig
from modelyard.train import Estimator
from tests.helpers import wait_for
from tests.runner.wheels import StallingIndex, make_wheel, module_name, unique_name

SCRIPTS = Path(__file__).parent / "scripts"


def run_file(run: Run, name: str) -> str:
    try:
        return run._backend.read_run_file(run.id, name, 0, 1 << 30).decode()
    except NotFoundError:
        return ""


def build_log(run: Run) -> str:
    return run_file(run, "system_logs/environment_build.txt")


def published(cache: Path) -> list[str]:
    """Keys of the finished environments."""
    return sorted(p.name for p in cache.glob("*") if p.is_symlink())


def build_folders(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "builds").glob("*"))


def report(env: Environment, *modules: str) -> ScriptRunConfig:
    return ScriptRunConfig(SCRIPTS, "env_report.py", arguments=list(modules), environment=env)


@pytest.fixture
def stalling_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StallingIndex]:
    """A find-links page over HTTP that holds builds in the middle until released."""
    index = StallingIndex(tmp_path / "served")
    monkeypatch.setenv("PIP_FIND_LINKS", index.url)
    yield index
    index.close()


def test_a_second_run_reuses_the_environment_without_installing(
    experiment: Experiment,
    env_cache: Path,
    wheelhouse: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = unique_name()
    make_wheel(wheelhouse, name, "1.0")
    config = report(Environment("tiny", pip_packages=[f"{name}==1.0"]), module_name(name), "pytest")
    first = experiment.submit(config)
    first.wait_for_completion(show_output=True)
    printed = capsys.readouterr().out
    # The build log streams first, then the script's output.
    assert "Building environment" in printed and f"+ {name}==1.0" in printed
    assert printed.index("Building environment") < printed.index("python:")
    out = run_file(first, "user_logs/std_log.txt")
    assert f"import {module_name(name)}: 1.0" in out
    assert "import pytest: missing" in out  # isolated from modelyard's own packages
    assert f"prefix: {env_cache}" in out
    assert first.get_metrics() == {"modules_checked": 2}  # the client works in there

    second = experiment.submit(config)
    assert second.wait_for_completion()["status"] == "Completed"
    log = build_log(second)
    assert "is in the cache" in log and "$ " not in log  # no step ran: no install at all
    assert f"import {module_name(name)}: 1.0" in run_file(second, "user_logs/std_log.txt")
    assert len(published(env_cache)) == 1 and len(build_folders(env_cache)) == 1
    supervisor_log = run_file(second, "system_logs/supervisor.txt")
    prepared = re.search(r"prepared in ([\d.]+) s", supervisor_log)
    assert prepared is not None and float(prepared.group(1)) < 1.0, supervisor_log


def test_two_runs_submitted_together_build_their_environment_once(
    experiment: Experiment,
    env_cache: Path,
    stalling_index: StallingIndex,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELYARD_LOCAL_MAX_RUNS", "2")
    name = unique_name()
    make_wheel(tmp_path / "served", name)
    config = report(Environment("tiny", pip_packages=[name]), module_name(name))
    runs = [experiment.submit(config) for _ in range(2)]
    # One run's installer is held by the index; the other run waits for that build.
    wait_for(lambda: any("being built by another run" in build_log(run) for run in runs))
    stalling_index.release()
    for run in runs:
        assert run.wait_for_completion()["status"] == "Completed"
    logs = [build_log(run) for run in runs]
    assert sum("Building environment" in log for log in logs) == 1
    assert sum("built by another run meanwhile; no install" in log for log in logs) == 1
    assert len(build_folders(env_cache)) == 1


def test_a_failed_build_fails_the_run_in_preparing_with_the_installers_error(
    experiment: Experiment,
    env_cache: Path,
    wheelhouse: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = unique_name()
    make_wheel(wheelhouse, name, "1.0")
    run = experiment.submit(Estimator(SCRIPTS, "env_report.py", pip_packages=[f"{name}==9.9"]))
    with pytest.raises(RunFailedError) as info:
        run.wait_for_completion(show_output=True)
    message = str(info.value)
    # uv's own words, with what was asked for.
    assert "installing the packages (uv) failed" in message and "No solution found" in message
    assert f"{name}==9.9" in message
    assert "No solution found" in capsys.readouterr().out  # the build log was streamed
    error = run.get_details()["error"]
    assert error["build_log"] == "system_logs/environment_build.txt"
    assert "user_logs/std_log.txt" not in run.get_file_names()  # the script never started
    supervisor_log = run_file(run, "system_logs/supervisor.txt")
    assert "status: Preparing" in supervisor_log and "status: Starting" not in supervisor_log
    assert published(env_cache) == [] and build_folders(env_cache) == []  # nothing half-built


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_a_killed_build_leaves_nothing_finished_and_the_next_run_builds_again(
    workspace: Workspace,
    experiment: Experiment,
    env_cache: Path,
    stalling_index: StallingIndex,
    tmp_path: Path,
) -> None:
    name = unique_name()
    make_wheel(tmp_path / "served", name)
    config = report(Environment("tiny", pip_packages=[name]), module_name(name))
    first = experiment.submit(config)
    wait_for(stalling_index.requested.is_set)  # the installer is in the middle of the build
    processes_file = (
        local_compute.compute_dir(workspace.folder) / "runs" / first.id / "processes.json"
    )
    processes = json.loads(processes_file.read_text())
    assert processes["pgid"] is not None  # the build step is recorded for the agent to stop
    os.kill(processes["supervisor_pid"], signal.SIGKILL)
    wait_for(lambda: first.get_status() == "Failed", timeout=30)
    wait_for(lambda: not _alive(processes["pgid"]), timeout=10)  # the installer was stopped
    assert published(env_cache) == [] and len(build_folders(env_cache)) == 1  # a leftover

    stalling_index.release()
    second = experiment.submit(config)
    assert second.wait_for_completion()["status"] == "Completed"
    log = build_log(second)
    assert "Building environment" in log and "removed 1 unfinished earlier build" in log
    assert len(published(env_cache)) == 1 and len(build_folders(env_cache)) == 1


def test_canceling_a_run_stops_its_build(
    experiment: Experiment, env_cache: Path, stalling_index: StallingIndex, tmp_path: Path
) -> None:
    name = unique_name()
    make_wheel(tmp_path / "served", name)
    run = experiment.submit(report(Environment("tiny", pip_packages=[name])))
    wait_for(stalling_index.requested.is_set)
    run.cancel()
    wait_for(lambda: run.get_status() == "Canceled", timeout=30)
    assert published(env_cache) == [] and build_folders(env_cache) == []


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_sigterm_to_the_supervisor_while_preparing_stops_the_build_and_fails_the_run(
    workspace: Workspace,
    experiment: Experiment,
    env_cache: Path,
    stalling_index: StallingIndex,
    tmp_path: Path,
) -> None:
    name = unique_name()
    make_wheel(tmp_path / "served", name)
    run = experiment.submit(report(Environment("tiny", pip_packages=[name])))
    wait_for(stalling_index.requested.is_set)  # the installer is in the middle of the build
    run_folder = local_compute.compute_dir(workspace.folder) / "runs" / run.id
    processes = json.loads((run_folder / "processes.json").read_text())
    os.kill(processes["supervisor_pid"], signal.SIGTERM)
    wait_for(lambda: run.get_status() == "Failed", timeout=60)
    assert "supervisor was asked to stop (SIGTERM)" in run.get_details()["error"]["message"]
    assert not _alive(processes["pgid"])  # stopped before the run was recorded
    supervisor_log = run_file(run, "system_logs/supervisor.txt")
    assert "the environment build was stopped" in supervisor_log
    assert "status: Starting" not in supervisor_log
    assert published(env_cache) == [] and build_folders(env_cache) == []


def test_a_cancel_while_preparing_after_an_agent_restart_stops_the_build(
    workspace: Workspace,
    experiment: Experiment,
    env_cache: Path,
    stalling_index: StallingIndex,
    tmp_path: Path,
) -> None:
    name = unique_name()
    make_wheel(tmp_path / "served", name)
    run = experiment.submit(report(Environment("tiny", pip_packages=[name])))
    wait_for(stalling_index.requested.is_set)
    run_folder = local_compute.compute_dir(workspace.folder) / "runs" / run.id
    processes = json.loads((run_folder / "processes.json").read_text())
    agent = _parent(processes["supervisor_pid"])
    os.kill(agent, signal.SIGKILL)
    wait_for(lambda: not _alive(agent))
    # A new agent, which did not start the run's supervisor; the cancel wakes it at once.
    local.ensure_agent(workspace.folder, workspace.name)
    run.cancel()
    wait_for(lambda: run.get_status() == "Canceled", timeout=60)
    # Recorded by the supervisor once the build had stopped, not by the agent meanwhile.
    assert run.get_details()["error"]["message"] == "canceled by the user"
    assert not _alive(processes["pgid"])
    assert "the environment build was stopped: canceled by the user" in run_file(
        run, "system_logs/supervisor.txt"
    )
    assert published(env_cache) == [] and build_folders(env_cache) == []


def test_requirements_files_and_the_pip_configuration_are_honoured(
    experiment: Experiment,
    env_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wheels = tmp_path / "site-mirror"
    first, second = unique_name(), unique_name()
    make_wheel(wheels, first, "2.0")
    make_wheel(wheels, second, "1.5")
    # The site's pip setup, in a pip.conf that uv does not read by itself.
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text(f"[global]\nfind-links = {wheels}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(pip_conf))
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    (tmp_path / "more.txt").write_text(f"{second}==1.5\n")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"# the run's packages\n{first}>=2  # any 2.x\n-r more.txt\n")
    env = Environment.from_pip_requirements("from-file", requirements)
    assert env.pip_requirements == [f"{first}>=2", f"{second}==1.5"]
    run = experiment.submit(report(env, module_name(first), module_name(second)))
    assert run.wait_for_completion()["status"] == "Completed"
    out = run_file(run, "user_logs/std_log.txt")
    assert f"import {module_name(first)}: 2.0" in out
    assert f"import {module_name(second)}: 1.5" in out
    log = build_log(run)
    assert f"find-links {wheels}" in log and str(pip_conf) in log


def test_a_python_not_on_the_machine_fails_in_preparing_naming_those_present(
    experiment: Experiment, env_cache: Path, tmp_path: Path
) -> None:
    run = experiment.submit(report(Environment("future", python_version="3.99")))
    gone = experiment.submit(
        report(Environment.from_existing_python("gone", tmp_path / "no-such-python"))
    )
    with pytest.raises(RunFailedError, match=r"python_version '3\.99': no such Python"):
        run.wait_for_completion()
    error = run.get_details()["error"]
    assert error["field"] == "python_version"
    assert ".".join(map(str, sys.version_info[:3])) in error["message"]  # this one is present
    assert "user_logs/std_log.txt" not in run.get_file_names()
    with pytest.raises(RunFailedError, match="no such interpreter"):
        gone.wait_for_completion()
    assert gone.get_details()["error"]["field"] == "python_path"


@pytest.mark.slow
def test_python_version_builds_with_another_python_of_the_machine(
    experiment: Experiment, env_cache: Path, wheelhouse: Path
) -> None:
    # Needs a second Python >= 3.11 here, and the client's wheels for it (PyPI, or a mirror).
    current = ".".join(map(str, sys.version_info[:2]))
    others = [
        found.short_version
        for found in list_interpreters(env_cache)
        if found.short_version != current
        and tuple(map(int, found.version.split(".")[:2])) >= (3, 11)
    ]
    if not others:
        pytest.skip("no other Python >= 3.11 on this machine")
    name = unique_name()
    make_wheel(wheelhouse, name)
    env = Environment("other-python", pip_packages=[name], python_version=others[0])
    run = experiment.submit(report(env, module_name(name)))
    assert run.wait_for_completion()["status"] == "Completed"
    out = run_file(run, "user_logs/std_log.txt")
    assert f"import {module_name(name)}: 1.0" in out
    assert f"Python {others[0]}." in build_log(run)


def test_conda_specs_without_a_pip_spelling_are_refused_at_submit_without_conda(
    experiment: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = os.environ["PATH"].split(os.pathsep)
    monkeypatch.setenv(
        "PATH",
        os.pathsep.join(f for f in folders if not any((Path(f) / t).exists() for t in CONDA_TOOLS)),
    )
    with pytest.raises(ValidationError) as info:
        experiment.submit(Estimator(SCRIPTS, "env_report.py", conda_packages=["numpy>>1.26"]))
    assert info.value.field == "conda_packages"
    assert "'numpy>>1.26'" in str(info.value) and "not a valid requirement" in str(info.value)
    assert list(experiment.get_runs()) == []


def test_runs_use_modelyards_python_or_a_users_as_they_are_or_inherit_it(
    experiment: Experiment, env_cache: Path, wheelhouse: Path
) -> None:
    # Nothing beyond what modelyard's Python has: no build, modelyard's Python.
    plain = experiment.submit(
        Estimator(SCRIPTS, "env_report.py", arguments=["pytest"], pip_packages=["pytest>=1"])
    )
    mine = experiment.submit(
        report(Environment.from_existing_python("mine", sys.executable), "pytest")
    )
    name = unique_name()
    make_wheel(wheelhouse, name, "3.0")
    inheriting = experiment.submit(
        report(
            Environment("inheriting", pip_packages=[name], inherit_base_packages=True),
            "pytest",
            module_name(name),
        )
    )
    for run in (plain, mine, inheriting):
        assert run.wait_for_completion()["status"] == "Completed"
    assert "Using modelyard's own Python" in build_log(plain)
    assert "the user-managed Python" in build_log(mine)
    for run in (plain, mine):
        out = run_file(run, "user_logs/std_log.txt")
        assert f"python: {sys.executable}" in out and "import pytest: ok" in out
    out = run_file(inheriting, "user_logs/std_log.txt")
    assert f"prefix: {env_cache}" in out
    assert "import pytest: ok" in out and f"import {module_name(name)}: 3.0" in out
    assert "for the modelyard client" not in build_log(inheriting)  # it comes from the base
    assert len(published(env_cache)) == 1


@pytest.mark.slow
def test_pip_is_the_installer_by_a_setting(
    experiment: Experiment, env_cache: Path, wheelhouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_ENV_INSTALLER", "pip")
    name = unique_name()
    make_wheel(wheelhouse, name, "1.0")
    run = experiment.submit(report(Environment("with-pip", pip_packages=[name]), module_name(name)))
    assert run.wait_for_completion()["status"] == "Completed"
    assert "-m pip install" in build_log(run)
    assert f"import {module_name(name)}: 1.0" in run_file(run, "user_logs/std_log.txt")
