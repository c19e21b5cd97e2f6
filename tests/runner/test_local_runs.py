"""Submitted runs on the local compute, with real subprocesses: every path a run can take."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard import Experiment, Run, Workspace
from modelyard.backend.snapshot import restore_snapshot
from modelyard.errors import ComputeTargetException, NotFoundError, RunFailedError, ValidationError
from modelyard.runner import local_compute
from modelyard.script_run_config import ScriptRunConfig
from modelyard.train import Estimator, TensorFlow
from tests.helpers import interrupt, wait_for

SCRIPTS = Path(__file__).parent / "scripts"


def output(run: Run) -> str:
    return run._backend.read_run_file(run.id, "user_logs/std_log.txt", 0, 1 << 30).decode()


def test_a_run_goes_from_queued_to_completed_with_everything_kept(
    experiment: Experiment, capsys: pytest.CaptureFixture[str]
) -> None:
    run = experiment.submit(
        ScriptRunConfig(SCRIPTS, "report.py", arguments=["--lr", 0.5, "--flag"]), tags={"t": "1"}
    )
    assert run.status == "Queued"  # as submit returned it, without waiting
    details = run.wait_for_completion(show_output=True)
    assert details["status"] == "Completed"
    printed = capsys.readouterr().out
    assert "started" in printed and "args: --lr 0.5 --flag" in printed
    assert "Execution summary" in printed and "Status: Completed" in printed
    assert run.get_tags() == {"t": "1", "phase": "train"}
    assert run.get_properties()["seed"] == "7"
    assert run.get_metrics() == {"loss": [1.0, 0.5, 1 / 3], "table": {"a": [1], "b": [2]}}
    (child,) = run.get_children()
    assert child.get_metrics() == {"inner_metric": 5} and child.get_status() == "Completed"
    names = run.get_file_names()
    for expected in (
        "outputs/model/weights.txt",
        "logs/events.txt",
        "uploaded/extra.txt",
        "user_logs/std_log.txt",
        "system_logs/supervisor.txt",
        "system_logs/job.json",
    ):
        assert expected in names
    log = output(run)
    assert "stderr line" in log
    # The script talks only to its supervisor: no database or workspace path in its env.
    assert "has context: True" in log and "database in env: False" in log
    system_log = run._backend.read_run_file(run.id, "system_logs/supervisor.txt").decode()
    assert "status: Running" in system_log and "status: Finalizing" in system_log
    model = run.register_model("from-script", "outputs/model")
    assert model.get_file_names() == ["model/weights.txt"]


def test_a_failing_script_fails_the_run_with_its_exit_code(experiment: Experiment) -> None:
    run = experiment.submit(ScriptRunConfig(SCRIPTS, "fail.py"))
    with pytest.raises(RunFailedError) as info:
        run.wait_for_completion()
    assert info.value.run_exit_code == 3
    assert "exited with code 3" in str(info.value)
    assert "about to fail" in str(info.value)  # the last lines of the output
    error = run.get_details()["error"]
    assert error["exit_code"] == 3 and "something broke" in error["stderr_tail"]
    assert run.wait_for_completion(raise_on_error=False)["status"] == "Failed"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _child_pid(workspace: Workspace, run: Run) -> int:
    path = local_compute.compute_dir(workspace.folder) / "runs" / run.id / "wd" / "child.pid"
    return int(wait_for(lambda: path.exists() and path.read_text()))


def test_cancel_stops_the_whole_process_group(workspace: Workspace, experiment: Experiment) -> None:
    run = experiment.submit(ScriptRunConfig(SCRIPTS, "sleep.py", arguments=["--ignore-term"]))
    grandchild = _child_pid(workspace, run)
    run.cancel()
    wait_for(lambda: run.get_status() == "Canceled", timeout=30)
    wait_for(lambda: not _pid_alive(grandchild), timeout=10)
    assert run.get_details()["error"]["message"] == "canceled by the user"
    system_log = run._backend.read_run_file(run.id, "system_logs/supervisor.txt").decode()
    assert "SIGTERM" in system_log


def test_max_run_duration_fails_the_run(experiment: Experiment) -> None:
    est = Estimator(SCRIPTS, "sleep.py", max_run_duration_seconds=1)
    run = experiment.submit(est)
    with pytest.raises(RunFailedError, match="max_run_duration_seconds"):
        run.wait_for_completion()
    assert run.get_status() == "Failed"


def test_big_fast_output_arrives_whole_and_in_order(experiment: Experiment) -> None:
    run = experiment.submit(ScriptRunConfig(SCRIPTS, "flood.py"))
    run.wait_for_completion()
    everything = output(run).splitlines()
    lines = [line for line in everything if line.startswith("line ")]
    assert len(lines) == 200_000
    assert lines == [f"line {i:06d} " + "x" * 40 for i in range(200_000)]
    # Each stream keeps its order; between the two pipes there is none to keep (the last
    # stderr line may be read after stdout's end), so each is checked on its own.
    assert [line for line in everything if not line.startswith("err ")][-1] == "flood done"
    assert [line for line in everything if line.startswith("err ")] == [
        f"err {i}" for i in range(0, 200_000, 1000)
    ]


@pytest.mark.slow
def test_a_million_metric_points_from_a_script(experiment: Experiment) -> None:
    run = experiment.submit(ScriptRunConfig(SCRIPTS, "many_metrics.py"))
    run.wait_for_completion()
    values = run.get_metrics("value")["value"]
    assert len(values) == 1_000_000 and values[-1] == 999_999 * 0.5


def test_data_references_mount_and_download(
    workspace: Workspace, experiment: Experiment, tmp_path: Path
) -> None:
    source = tmp_path / "data" / "mnist"
    source.mkdir(parents=True)
    (source / "a.txt").write_text("A")
    ds = workspace.get_default_datastore()
    ds.upload(str(tmp_path / "data"), target_path="sets", show_progress=False)
    mounted = experiment.submit(
        Estimator(SCRIPTS, "read_data.py", script_params={"--data": ds.path("sets").as_mount()})
    )
    mounted.wait_for_completion()
    log = output(mounted)
    assert "file mnist/a.txt A" in log
    assert str(workspace.folder / "datastores" / "workspaceblobstore" / "sets") in log
    assert "inside_cwd False" in log
    assert "MODELYARD_DATAREFERENCE_workspaceblobstore" in log
    downloaded = experiment.submit(
        Estimator(SCRIPTS, "read_data.py", script_params={"--data": ds.path("sets").as_download()})
    )
    downloaded.wait_for_completion()
    log = output(downloaded)
    assert "file mnist/a.txt A" in log and "inside_cwd True" in log


def test_use_gpu_without_a_gpu_fails_in_preparing(
    experiment: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This machine has no GPU: the check is real. CUDA_VISIBLE_DEVICES="" says so even on
    # a machine with one.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    run = experiment.submit(Estimator(SCRIPTS, "fail.py", use_gpu=True))
    with pytest.raises(RunFailedError, match="no GPU"):
        run.wait_for_completion()


def test_submit_refuses_bad_configurations(experiment: Experiment, tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        experiment.submit(ScriptRunConfig(SCRIPTS, "missing.py"))
    assert info.value.field == "entry_script"
    with pytest.raises(ValidationError):
        experiment.submit(ScriptRunConfig(SCRIPTS, "../outside.py"))
    with pytest.raises(ValidationError) as info:
        experiment.submit(ScriptRunConfig(tmp_path / "nope", "x.py"))
    assert info.value.field == "source_directory"
    with pytest.raises(ValidationError) as info:
        experiment.submit(ScriptRunConfig(SCRIPTS, "fail.py", arguments=[{"a": 1}]))
    assert info.value.field == "arguments"
    with pytest.raises(ComputeTargetException, match="cpucluster"):
        experiment.submit(ScriptRunConfig(SCRIPTS, "fail.py", compute_target="cpucluster"))
    with pytest.raises(ComputeTargetException, match="one machine"):
        experiment.submit(Estimator(SCRIPTS, "fail.py", node_count=2))
    with pytest.raises(ValidationError):
        experiment.submit("not a config")  # type: ignore[arg-type]
    assert list(experiment.get_runs()) == []


def test_snapshot_rules_apply_at_submit(
    experiment: Experiment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("import os; print(sorted(os.listdir('.')))")
    (source / "big.bin").write_bytes(b"\0" * 4096)
    (source / ".amlignore").write_text("ignored.txt\n")
    (source / "ignored.txt").write_text("x")
    monkeypatch.setenv("MODELYARD_SNAPSHOT_MAX_FILES", "3")
    run = experiment.submit(ScriptRunConfig(source, "train.py"))
    run.wait_for_completion()
    assert "['.amlignore', 'big.bin', 'train.py']" in output(run)
    monkeypatch.setenv("MODELYARD_SNAPSHOT_MAX_MB", "0.001")
    with pytest.raises(ValidationError, match=r"big\.bin"):
        experiment.submit(ScriptRunConfig(source, "train.py"))


def test_a_source_folder_holding_the_workspace_leaves_it_out(in_tmp_cwd: Path) -> None:
    """The README's layout: the workspace in ./.modelyard/<name>, the notebook submitting
    "." twice; the second snapshot holds neither the database nor the first run's files."""
    ws = Workspace.create("x")
    assert ws.folder.resolve() == (in_tmp_cwd / ".modelyard" / "x").resolve()
    (in_tmp_cwd / "train.py").write_text(
        "import os\n"
        "found = sorted(os.path.join(d, f) for d, _, fs in os.walk('.') for f in fs)\n"
        "print('files:', found)\n"
    )
    experiment = Experiment(ws, "exp")
    first = experiment.submit(ScriptRunConfig(".", "train.py"))
    assert first.wait_for_completion()["status"] == "Completed"

    second = experiment.submit(ScriptRunConfig(".", "train.py"))

    assert second.wait_for_completion()["status"] == "Completed"
    assert "files: ['./train.py']" in output(second)
    restored = in_tmp_cwd.parent / "restored"
    restore_snapshot(ws._backend, second.get_properties()["modelyard.snapshot_id"], restored)
    assert sorted(p.name for p in restored.rglob("*")) == ["train.py"]


def test_the_queue_runs_at_most_n_at_once_first_in_first_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_LOCAL_MAX_RUNS", "1")
    ws = Workspace.create("queue", folder=tmp_path / "queue-ws")
    exp = Experiment(ws, "q")
    source = tmp_path / "src"
    source.mkdir()
    # Each run notes its start and its end in one journal outside the runs (O_APPEND writes
    # of a line are atomic), sleeping between: two runs at once would interleave there.
    journal = tmp_path / "journal.txt"
    (source / "t.py").write_text(
        "import sys, time\n"
        "def note(word):\n"
        "    with open(sys.argv[1], 'a') as f:\n"
        "        f.write(f'{word} {sys.argv[2]}\\n')\n"
        "note('start'); time.sleep(0.3); note('end')\n"
    )
    runs = [
        exp.submit(ScriptRunConfig(source, "t.py", arguments=[str(journal), str(n)]))
        for n in range(3)
    ]
    for run in runs:
        run.wait_for_completion()
    assert journal.read_text().splitlines() == [
        f"{word} {n}" for n in range(3) for word in ("start", "end")
    ]  # one at a time, first in, first out


def test_estimator_frameworks_are_checked(experiment: Experiment) -> None:
    has_tf = (
        subprocess.run(
            [sys.executable, "-c", "import importlib.metadata as m; m.version('tensorflow-cpu')"],
            capture_output=True,
        ).returncode
        == 0
    )
    # A version with no release for this Python is refused at submit, naming those there are.
    with pytest.raises(ValidationError, match=r"2\.12"):
        experiment.submit(TensorFlow(SCRIPTS, "fail.py", framework_version="0.1"))
    if has_tf:
        ok = experiment.submit(TensorFlow(SCRIPTS, "report.py"))
        assert ok.wait_for_completion()["status"] == "Completed"


def test_ctrl_c_stops_waiting_not_the_run(workspace: Workspace, experiment: Experiment) -> None:
    script = f"""
import sys
from modelyard import Experiment, Workspace
from modelyard.script_run_config import ScriptRunConfig
ws = Workspace.get("test-ws", folder={str(workspace.folder)!r})
run = Experiment(ws, "exp").submit(ScriptRunConfig({str(SCRIPTS)!r}, "sleep.py"))
print(run.id, flush=True)
run.wait_for_completion(show_output=True)
"""
    waiter = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    assert waiter.stdout is not None
    run_id = waiter.stdout.readline().strip()
    run = Run(experiment, run_id)

    def started() -> bool:
        try:
            return "sleeping" in output(run)
        except NotFoundError:  # no output yet
            return False

    wait_for(started)
    interrupt(waiter, 30)
    out, err = waiter.communicate()
    assert waiter.returncode != 0 and "KeyboardInterrupt" in err
    assert f"Stopped waiting; run {run_id} goes on" in out and "run.cancel()" in out
    assert run.get_status() == "Running"  # the run did not stop with its waiter
    run.cancel()
    wait_for(lambda: run.get_status() == "Canceled", timeout=30)


def test_a_job_spec_over_one_mebibyte_reaches_the_script_whole(experiment: Experiment) -> None:
    # Twelve arguments of 100,000 characters: 1.2 MB of job spec (the kernel takes 128 KiB
    # an argument, 2 MiB in all).
    arguments = [f"{n:02d}" + "a" * 99_998 for n in range(12)]
    run = experiment.submit(ScriptRunConfig(SCRIPTS, "report.py", arguments=arguments))
    run.wait_for_completion()
    log = output(run)
    assert f"args: {' '.join(arguments)}" in log
