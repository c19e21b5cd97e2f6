"""v1's Run methods as notebooks use them: lookups, listings, details, logs, snapshots,
children, list metrics, free-text tag keys and interactive runs that upload ./outputs."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelyard import Experiment, Run, Workspace
from modelyard.backend.base import PAGE_SIZE
from modelyard.backend.records import COMPLETED, QUEUED
from modelyard.errors import NotFoundError, ValidationError
from modelyard.offline import OfflineRun
from modelyard.script_run_config import ScriptRunConfig
from tests.helpers import tree

SCRIPTS = Path(__file__).parent / "v1_scripts"
ME = pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture(scope="module")
def submitted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Run, Path]]:
    """One finished run of train_v1.py (the slow part, shared by the tests that read it),
    with the source folder it was submitted from."""
    root = tmp_path_factory.mktemp("submitted")
    source = root / "src"
    shutil.copytree(SCRIPTS, source)
    workspace = Workspace.create("v1-runs", folder=root / "ws")
    run = Experiment(workspace, "v1").submit(
        ScriptRunConfig(source, "train_v1.py", arguments=["--lr", 0.5])
    )
    run.wait_for_completion()
    yield run, source


# -- lookups and listings -----------------------------------------------------------------


def test_run_get_and_ws_get_run_find_a_run_of_any_experiment(workspace: Workspace) -> None:
    first = Experiment(workspace, "first").start_logging()
    second = Experiment(workspace, "second").start_logging()
    for run in (first, second):
        found = Run.get(workspace, run.id)
        assert (found.id, found.experiment.name) == (run.id, run.experiment.name)
        assert workspace.get_run(run.id).experiment.name == run.experiment.name
    with pytest.raises(NotFoundError, match="does not exist"):
        Run.get(workspace, "first_1700000000_00000000")
    for bad in ("", "../first", "a/b", 42):
        with pytest.raises(ValidationError, match="run_id"):
            workspace.get_run(bad)  # type: ignore[arg-type]


def test_run_list_filters_by_status_tags_properties_and_children(experiment: Experiment) -> None:
    done = experiment.start_logging()
    done.tag("Best Run", "yes")
    done.add_properties({"learning rate": "0.1"})
    done.complete()
    running = experiment.start_logging()
    child = running.child_run()
    by_status = [r.id for r in Run.list(experiment, status="Completed")]
    assert by_status == [done.id]
    assert [r.id for r in experiment.get_runs(status="Running")] == [running.id]
    assert [r.id for r in Run.list(experiment, tags="Best Run")] == [done.id]
    assert [r.id for r in Run.list(experiment, tags={"Best Run": "yes"})] == [done.id]
    assert [r.id for r in Run.list(experiment, properties={"learning rate": "0.1"})] == [done.id]
    everything = {r.id for r in Run.list(experiment, include_children=True, _rehydrate_runs=False)}
    assert everything == {done.id, running.id, child.id}
    assert [r.id for r in Run.list(experiment, type="interactive", status="Running")] == [
        running.id
    ]
    with pytest.raises(ValidationError, match="status"):
        list(Run.list(experiment, status="Done"))


def test_run_list_with_a_status_reads_past_one_page(
    workspace: Workspace, experiment: Experiment
) -> None:
    backend = workspace._backend
    count = PAGE_SIZE + 3
    for i in range(count):
        backend.create_run(f"r{i:04}", experiment.name, run_type="script", status=QUEUED)
        if i % 2 == 0:
            backend.update_run_status(f"r{i:04}", "Running")
            backend.update_run_status(f"r{i:04}", COMPLETED)
    found = [run.id for run in Run.list(experiment, status=COMPLETED)]
    assert found == [f"r{i:04}" for i in reversed(range(0, count, 2))]


# -- details and logs ---------------------------------------------------------------------


def test_details_of_a_submitted_run_have_v1_keys(submitted: tuple[Run, Path]) -> None:
    run, _ = submitted
    details = run.get_details()
    assert details["runId"] == run.id and details["status"] == "Completed"
    assert details["target"] == "local" and details["submittedBy"] == ME
    assert details["startTimeUtc"].endswith("Z") and details["endTimeUtc"].endswith("Z")
    assert details["inputDatasets"] == [] and details["outputDatasets"] == []
    assert details["warnings"] == [] and "error" not in details
    assert details["properties"]["modelyard.snapshot_id"]
    definition = details["runDefinition"]
    assert definition["script"] == "train_v1.py"
    assert definition["arguments"] == ["--lr", "0.5"]
    assert definition["target"] == "local" and definition["framework"] == "Python"
    assert definition["communicator"] == "None" and definition["nodeCount"] == 1
    assert definition["dataReferences"] == {}
    assert definition["environment"]["python"]["userManagedDependencies"] is False
    logs = details["logFiles"]
    assert "user_logs/std_log.txt" in logs and "system_logs/supervisor.txt" in logs
    assert "system_logs/job.json" not in logs  # the definition, not a log
    assert "training with --lr 0.5" in Path(logs["user_logs/std_log.txt"]).read_text()


def test_details_with_logs_hold_the_text_of_each_log(submitted: tuple[Run, Path]) -> None:
    run, _ = submitted
    logs = run.get_details_with_logs()["logFiles"]
    assert "training with --lr 0.5" in logs["user_logs/std_log.txt"]
    assert "a line on stderr" in logs["user_logs/std_log.txt"]
    assert set(logs) == set(run.get_details()["logFiles"])


def test_details_of_a_failed_run_hold_its_error(experiment: Experiment, tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text("raise SystemExit('broken input')\n")
    run = experiment.submit(ScriptRunConfig(tmp_path, "boom.py"))
    run.wait_for_completion(raise_on_error=False)
    details = run.get_details()
    assert details["status"] == "Failed"
    assert "broken input" in details["error"]["stderr_tail"]


def test_interactive_run_details(experiment: Experiment) -> None:
    run = experiment.start_logging()
    details = run.get_details()
    assert details["target"] == "local" and details["submittedBy"] == ME
    assert details["logFiles"] == {} and details["runDefinition"]["script"] is None
    assert run.properties == run.get_properties() and run.tags == {}
    run.tag("Best Run")
    assert run.tags == {"Best Run": ""}


def test_get_all_logs_downloads_every_log(
    submitted: tuple[Run, Path], tmp_path: Path, in_tmp_cwd: Path
) -> None:
    run, _ = submitted
    names = sorted(run.get_details()["logFiles"])
    paths = run.get_all_logs(tmp_path / "logs")
    assert sorted(paths) == sorted(str(tmp_path / "logs" / name) for name in names)
    assert "training with" in (tmp_path / "logs" / "user_logs" / "std_log.txt").read_text()
    # No destination: a folder named by the run id in the current folder, as v1 did.
    default = run.get_all_logs()
    assert default and all(Path(p).is_relative_to(Path(run.id)) for p in default)
    assert (in_tmp_cwd / run.id / "user_logs" / "std_log.txt").is_file()


def test_get_all_logs_writes_nothing_through_a_link(
    submitted: tuple[Run, Path], tmp_path: Path
) -> None:
    run, _ = submitted
    outside = tmp_path / "outside"
    outside.mkdir()
    destination = tmp_path / "dest"
    destination.mkdir()
    (destination / "user_logs").symlink_to(outside)
    with pytest.raises(ValidationError, match="destination"):
        run.get_all_logs(destination)
    assert tree(outside) == {} and tree(destination) == {}
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ValidationError, match="not a folder"):
        run.get_all_logs(tmp_path / "a-file")


# -- snapshots ------------------------------------------------------------------------------


def test_restore_snapshot_writes_v1s_zip(submitted: tuple[Run, Path], tmp_path: Path) -> None:
    run, source = submitted
    snapshot_id = run.get_properties()["modelyard.snapshot_id"]
    path = run.restore_snapshot(path=tmp_path / "restored")
    assert path == str(tmp_path / "restored" / f"{snapshot_id}.zip")
    with zipfile.ZipFile(path) as archive:
        assert {name: archive.read(name) for name in archive.namelist()} == tree(source)
        mode = archive.getinfo("helper.sh").external_attr >> 16
        assert mode & stat.S_IXUSR and not archive.getinfo("train_v1.py").external_attr >> 16 & 1
    # Again over the same zip: replaced whole.
    assert run.restore_snapshot(snapshot_id, tmp_path / "restored") == path
    assert sorted(p.name for p in (tmp_path / "restored").iterdir()) == [f"{snapshot_id}.zip"]


def test_restore_snapshot_as_a_folder(submitted: tuple[Run, Path], tmp_path: Path) -> None:
    run, source = submitted
    folder = Path(run.restore_snapshot(path=tmp_path, extract=True))
    assert tree(folder) == tree(source)
    assert os.access(folder / "helper.sh", os.X_OK)
    with pytest.raises(ValidationError, match="not empty"):
        run.restore_snapshot(path=tmp_path, extract=True)


def test_restore_snapshot_refuses_bad_input_and_writes_through_no_link(
    submitted: tuple[Run, Path], experiment: Experiment, tmp_path: Path
) -> None:
    run, _ = submitted
    snapshot_id = run.get_properties()["modelyard.snapshot_id"]
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "target"
    target.mkdir()
    (target / f"{snapshot_id}.zip").symlink_to(victim)
    run.restore_snapshot(path=target)
    assert victim.read_text() == "keep me"
    assert not (target / f"{snapshot_id}.zip").is_symlink()
    for bad in ("../../etc/passwd", "abc"):
        with pytest.raises(ValidationError, match="snapshot_id"):
            run.restore_snapshot(bad, tmp_path)
    with pytest.raises(ValidationError, match="not a folder"):
        run.restore_snapshot(path=victim)
    with pytest.raises(NotFoundError, match="has no snapshot"):
        experiment.start_logging().restore_snapshot(path=tmp_path)


# -- children -------------------------------------------------------------------------------


def test_create_children_inside_a_script(experiment: Experiment, tmp_path: Path) -> None:
    shutil.copy(SCRIPTS / "children_v1.py", tmp_path / "children_v1.py")
    run = experiment.submit(ScriptRunConfig(tmp_path, "children_v1.py"))
    run.wait_for_completion()
    children = list(run.get_children())
    assert len(children) == 5
    assert all(child.parent is not None and child.parent.id == run.id for child in children)
    assert all(child.get_status() == "Completed" for child in children)
    tagged = {child.get_tags().get("learning rate"): child for child in children}
    assert set(tagged) == {"0.1", "0.01", "0.001", None}
    assert tagged["0.01"].get_metrics() == {"lr": 0.01}
    # The script's children are its own: none went to the experiment's top level.
    assert [r.id for r in experiment.get_runs()] == [run.id]


def test_create_children_outside_a_script(experiment: Experiment) -> None:
    parent = experiment.start_logging()
    children = parent.create_children(count=3)
    assert len({child.id for child in children}) == 3
    assert all(child.get_status() == "Running" for child in children)
    assert {child.id for child in parent.get_children()} == {child.id for child in children}
    tagged = parent.create_children(2, "fold", range(2))
    assert [child.get_tags() for child in tagged] == [{"fold": "0"}, {"fold": "1"}]
    for bad, field in (
        ({"count": 0}, "count"),
        ({"count": True}, "count"),
        ({}, "count"),
        ({"tag_key": "k"}, "tag_values"),
        ({"tag_values": [1]}, "tag_key"),
        ({"count": 3, "tag_key": "k", "tag_values": [1, 2]}, "tag_values"),
        ({"tag_key": "bad\x00key", "tag_values": [1]}, "tag_key"),
    ):
        with pytest.raises(ValidationError, match=field):
            parent.create_children(**bad)  # type: ignore[arg-type]
    assert len(list(parent.get_children())) == 5  # nothing made by a refused call
    offline = OfflineRun().create_children(tag_key="k", tag_values=["a", "b"])
    assert [child.get_tags() for child in offline] == [{"k": "a"}, {"k": "b"}]
    with pytest.raises(ValidationError, match="count"):
        OfflineRun().create_children()


# -- metrics and tags -----------------------------------------------------------------------


def test_log_list_takes_any_iterable(experiment: Experiment) -> None:
    run = experiment.start_logging()
    run.log_list("generator", (x * 2 for x in range(3)))
    run.log_list("array", np.array([0.5, 0.25]))
    run.log_list("range", range(3))
    run.log_list("tuple", (True, "b"))
    assert run.get_metrics() == {
        "generator": [0, 2, 4],
        "array": [0.5, 0.25],
        "range": [0, 1, 2],
        "tuple": [True, "b"],
    }
    for bad in ("abc", {"a": 1}, 3, np.array(3), np.array([[1, 2], [3, 4]])):
        with pytest.raises(ValidationError):
            run.log_list("bad", bad)
    offline = OfflineRun()
    offline.log_list("g", (x for x in range(2)))
    assert offline.get_metrics() == {"g": [0, 1]}


def test_tag_and_property_keys_with_spaces(experiment: Experiment) -> None:
    run = experiment.start_logging()
    run.tag("Best Run", "True")
    run.set_tags({"model type (final)": "cnn"})
    run.add_properties({"learning rate": 0.01})
    assert run.get_tags() == {"Best Run": "True", "model type (final)": "cnn"}
    assert run.get_properties()["learning rate"] == "0.01"
    for bad in ("tab\there", "", " Best Run", "x" * 256):
        with pytest.raises(ValidationError, match="key"):
            run.tag(bad, "v")
    assert run.get_tags() == {"Best Run": "True", "model type (final)": "cnn"}


# -- interactive runs track ./outputs ------------------------------------------------------


def test_start_logging_uploads_outputs_when_the_run_completes(
    workspace: Workspace, tmp_path: Path
) -> None:
    """A notebook's cell as v1 wrote it, run as a real script in its own folder."""
    notebook = tmp_path / "notebook"
    notebook.mkdir()
    script = textwrap.dedent(
        f"""
        import os
        from modelyard import Experiment, Workspace
        ws = Workspace.get("test-ws", folder={str(workspace.folder)!r})
        run = Experiment(ws, "interactive").start_logging()
        os.makedirs("outputs/model", exist_ok=True)
        with open("outputs/model/weights.txt", "w") as f:
            f.write("w=1")
        with open("not-an-output.txt", "w") as f:
            f.write("stays here")
        run.complete()
        print(run.id)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=notebook, capture_output=True, text=True, check=True
    )
    run = workspace.get_run(done.stdout.strip())
    assert run.get_status() == "Completed"
    assert run.get_file_names() == ["outputs/model/weights.txt"]
    run.download_file("outputs/model/weights.txt", tmp_path / "w.txt")
    assert (tmp_path / "w.txt").read_text() == "w=1"


def test_outputs_follow_no_link_out_and_can_be_turned_off(
    experiment: Experiment, in_tmp_cwd: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the run")
    with experiment.start_logging() as run:
        outputs = in_tmp_cwd / "outputs"
        outputs.mkdir()
        (outputs / "result.txt").write_text("42")
        (outputs / "leak.txt").symlink_to(secret)
        (outputs / "same.txt").symlink_to(outputs / "result.txt")
    assert run.get_status() == "Completed"
    assert run.get_file_names() == ["outputs/result.txt", "outputs/same.txt"]

    off = experiment.start_logging(outputs=False)
    off.complete()
    assert off.get_file_names() == []

    other = experiment.start_logging(outputs="results/final")
    (in_tmp_cwd / "results" / "final").mkdir(parents=True)
    (in_tmp_cwd / "results" / "final" / "r.txt").write_text("r")
    other.fail("stopped")
    assert other.get_file_names() == ["results/final/r.txt"]

    # The folder became a link out after the start: nothing goes through it.
    swapped = experiment.start_logging(outputs="later")
    (in_tmp_cwd / "later").symlink_to(tmp_path)
    swapped.complete()
    assert swapped.get_file_names() == [] and swapped.get_status() == "Completed"

    for bad in ("../elsewhere", str(tmp_path), "."):
        with pytest.raises(ValidationError, match="outputs"):
            experiment.start_logging(outputs=bad)
    with pytest.raises(ValidationError, match="no_such_argument"):
        experiment.start_logging(no_such_argument=1)


def test_start_logging_with_a_snapshot_directory(
    experiment: Experiment, tmp_path: Path, in_tmp_cwd: Path
) -> None:
    source = tmp_path / "code"
    source.mkdir()
    (source / "train.py").write_text("print('hi')\n")
    run = experiment.start_logging(snapshot_directory=source, display_name="from a notebook")
    zipped = run.restore_snapshot()
    assert Path(zipped).parent == in_tmp_cwd
    with zipfile.ZipFile(zipped) as archive:
        assert archive.read("train.py") == b"print('hi')\n"
    with pytest.raises(ValidationError, match="snapshot_directory"):
        experiment.start_logging(snapshot_directory=tmp_path / "missing")
