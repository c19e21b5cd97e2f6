"""A round trip of every tracking call of a run, as a user makes them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from modelyard import Experiment, Run, Workspace
from modelyard.errors import ConflictError, NotFoundError, ValidationError
from modelyard.offline import OfflineRun
from tests.helpers import tree


def test_start_logging_gives_a_running_interactive_run(experiment: Experiment) -> None:
    run = experiment.start_logging()
    assert run.get_status() == "Running"
    assert run.number == 1
    assert run.experiment is experiment
    assert run.parent is None
    assert experiment.start_logging().number == 2
    details = run.get_details()
    assert details["runId"] == run.id and details["startTimeUtc"].endswith("Z")
    assert details["endTimeUtc"] is None


def test_metrics_follow_v1_shapes(experiment: Experiment) -> None:
    run = experiment.start_logging()
    run.log("once", 0.5)
    for i in range(3):
        run.log("loss", 1.0 / (i + 1))
    run.log("name", "adam")
    run.log("flag", True)
    run.log("count", 7)
    run.log_list("per_class", [0.1, 0.2])
    run.log_row("roc", x=0.0, y=0.1)
    run.log_row("roc", x=1.0, y=0.9)
    run.log_table("confusion", {"pred": [0, 1], "true": [0, 0]})
    metrics = run.get_metrics()
    assert metrics == {
        "once": 0.5,
        "loss": [1.0, 0.5, 1 / 3],
        "name": "adam",
        "flag": True,
        "count": 7,
        "per_class": [0.1, 0.2],
        "roc": {"x": [0.0, 1.0], "y": [0.1, 0.9]},
        "confusion": {"pred": [0, 1], "true": [0, 0]},
    }
    assert type(metrics["flag"]) is bool and type(metrics["count"]) is int
    assert run.get_metrics("loss") == {"loss": [1.0, 0.5, 1 / 3]}


def test_numpy_scalars_are_logged_as_numbers(experiment: Experiment) -> None:
    np = pytest.importorskip("numpy")
    run = experiment.start_logging()
    run.log("acc", np.float32(0.25))
    run.log("n", np.int64(3))
    assert run.get_metrics() == {"acc": 0.25, "n": 3}


def test_history_is_step_aware(experiment: Experiment) -> None:
    run = experiment.start_logging()
    run.log("acc", 0.1)
    run.log("acc", 0.2)
    run.log("acc", 0.9, step=100)
    history = run.get_metric_history("acc")
    assert [(p.step, p.value) for p in history] == [(0, 0.1), (1, 0.2), (100, 0.9)]
    assert history[0].time <= history[-1].time
    with pytest.raises(NotFoundError):
        run.get_metric_history("missing")


def test_steps_continue_when_a_run_is_reopened(workspace: Workspace) -> None:
    exp = Experiment(workspace, "e")
    run = exp.start_logging()
    run.log("x", 1.0)
    run.flush()
    again = Run(exp, run.id)
    again.log("x", 2.0)
    assert [p.step for p in again.get_metric_history("x")] == [0, 1]


def test_bad_metric_values_and_kinds(experiment: Experiment) -> None:
    run = experiment.start_logging()
    with pytest.raises(ValidationError, match="log_list"):
        run.log("x", [1, 2])
    with pytest.raises(ValidationError):
        run.log("bad name!", 1)
    run.log("x", 1.0)
    with pytest.raises(ValidationError, match="logged as scalar"):
        run.log_list("x", [1.0])
    with pytest.raises(ValidationError):
        run.log_table("t", {"a": [1], "b": [1, 2]})
    with pytest.raises(ValidationError):
        run.log("x", 1.0, step="3")  # type: ignore[arg-type]


def test_tags_and_properties(experiment: Experiment) -> None:
    run = experiment.start_logging()
    run.tag("quality", "good")
    run.tag("flagged")
    run.set_tags({"a": 1, "quality": "better"})
    assert run.get_tags() == {"quality": "better", "flagged": "", "a": "1"}
    run.add_properties({"dataset": "mnist"})
    run.add_properties({"dataset": "mnist"})  # the same value again is fine
    with pytest.raises(ConflictError, match="cannot change"):
        run.add_properties({"dataset": "cifar"})
    # modelyard's own properties (who started the run) sit beside the user's, as v1's did.
    user_properties = {
        k: v for k, v in run.get_properties().items() if not k.startswith("modelyard.")
    }
    assert user_properties == {"dataset": "mnist"}
    details = run.get_details()
    assert details["tags"]["quality"] == "better" and details["properties"]["dataset"] == "mnist"


def test_get_runs_filters_and_orders_newest_first(experiment: Experiment) -> None:
    first = experiment.start_logging()
    first.tag("team", "a")
    first.add_properties({"kind": "baseline"})
    second = experiment.start_logging()
    second.tag("team", "b")
    child = second.child_run("inner")
    assert [r.id for r in experiment.get_runs()] == [second.id, first.id]
    assert [r.id for r in experiment.get_runs(tags={"team": "a"})] == [first.id]
    assert [r.id for r in experiment.get_runs(tags="team")] == [second.id, first.id]
    assert [r.id for r in experiment.get_runs(tags=["team", "b"])] == [second.id]
    assert [r.id for r in experiment.get_runs(properties={"kind": "baseline"})] == [first.id]
    with_children = [r.id for r in experiment.get_runs(include_children=True)]
    assert set(with_children) == {first.id, second.id, child.id}


def test_children(experiment: Experiment) -> None:
    parent = experiment.start_logging()
    child = parent.child_run("step-1")
    grandchild = child.child_run()
    child.log("loss", 0.3)
    grandchild.log("loss", 0.1)
    assert child.display_name == "step-1"
    assert child.parent is not None and child.parent.id == parent.id
    assert [c.id for c in parent.get_children()] == [child.id]
    assert [c.id for c in parent.get_children(recursive=True)] == [child.id, grandchild.id]
    parent.log("loss", 0.5)
    assert parent.get_metrics(recursive=True) == {
        parent.id: {"loss": 0.5},
        child.id: {"loss": 0.3},
        grandchild.id: {"loss": 0.1},
    }


def test_complete_fail_cancel(experiment: Experiment) -> None:
    done = experiment.start_logging()
    done.log("x", 1)
    done.complete()
    assert done.get_status() == "Completed"
    assert done.get_metrics() == {"x": 1}
    assert done.get_details()["endTimeUtc"] is not None
    with pytest.raises(ConflictError, match="has ended"):
        done.fail()
    failed = experiment.start_logging()
    failed.fail(ValueError("bad data"), error_code="DataError")
    details = failed.get_details()
    assert details["status"] == "Failed"
    assert details["error"] == {"message": "bad data", "code": "DataError", "type": "ValueError"}
    canceled = experiment.start_logging()
    canceled.cancel()
    assert canceled.get_status() == "Canceled"


def test_context_manager_completes_or_fails(experiment: Experiment) -> None:
    with experiment.start_logging() as run:
        run.log("x", 1)
    assert run.get_status() == "Completed"
    with pytest.raises(RuntimeError), experiment.start_logging() as broken:
        raise RuntimeError("oops")
    assert broken.get_status() == "Failed"
    assert broken.get_details()["error"]["message"] == "oops"


def test_files_round_trip(experiment: Experiment, tmp_path: Path, in_tmp_cwd: Path) -> None:
    run = experiment.start_logging()
    source = tmp_path / "notes.txt"
    source.write_text("hello")
    run.upload_file("outputs/notes.txt", source)
    run.upload_file("outputs/stream.bin", io.BytesIO(b"\x00\x01"))
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    run.upload_folder("logs/folder", folder)
    assert run.get_file_names() == [
        "logs/folder/a.txt",
        "logs/folder/sub/b.txt",
        "outputs/notes.txt",
        "outputs/stream.bin",
    ]
    assert run.download_file("outputs/notes.txt").read_text() == "hello"
    assert (in_tmp_cwd / "notes.txt").read_text() == "hello"
    target = run.download_file("outputs/stream.bin", tmp_path / "out" / "s.bin")
    assert target.read_bytes() == b"\x00\x01"
    got = run.download_files(prefix="logs/", output_directory=tmp_path / "all")
    assert sorted(p.relative_to(tmp_path / "all").as_posix() for p in got) == [
        "logs/folder/a.txt",
        "logs/folder/sub/b.txt",
    ]
    flat = run.download_files(
        prefix="logs/folder", output_directory=tmp_path / "flat", append_prefix=False
    )
    assert sorted(p.relative_to(tmp_path / "flat").as_posix() for p in flat) == [
        "a.txt",
        "sub/b.txt",
    ]
    with pytest.raises(NotFoundError, match="no file"):
        run.download_file("outputs/missing.txt")


@pytest.mark.parametrize(
    "bad", ["../escape.txt", "/abs.txt", "a\\b.txt", "a\x00b", "", "a/../../b"]
)
def test_bad_file_names_write_nothing(
    workspace: Workspace, experiment: Experiment, tmp_path: Path, bad: str
) -> None:
    run = experiment.start_logging()
    source = tmp_path / "f.txt"
    source.write_text("x")
    before = tree(tmp_path)
    with pytest.raises(ValidationError) as info:
        run.upload_file(bad, source)
    assert info.value.field == "name"
    with pytest.raises(ValidationError):
        run.upload_files(["ok.txt", bad], [source, source])
    with pytest.raises(ValidationError):
        run.download_file(bad, tmp_path / "out.txt")
    assert tree(tmp_path) == before
    assert run.get_file_names() == []


def test_log_image_from_a_file_and_a_figure(experiment: Experiment, tmp_path: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = experiment.start_logging()
    figure, axes = plt.subplots()
    axes.plot([1, 2, 3])
    run.log_image("curve", plot=figure)
    png = tmp_path / "pic.png"
    figure.savefig(png)
    run.log_image("curve", path=png)
    plt.close(figure)
    names = run.get_metrics()["curve"]
    assert names == ["images/curve.png", "images/curve_1.png"]
    for name in names:
        with run._backend.open_run_file(run.id, name) as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValidationError):
        run.log_image("x")


def test_run_lookup(experiment: Experiment, workspace: Workspace) -> None:
    run = experiment.start_logging()
    assert Run(experiment, run.id).id == run.id
    with pytest.raises(NotFoundError, match="does not exist"):
        Run(experiment, "missing_run")
    other = Experiment(workspace, "other")
    with pytest.raises(NotFoundError, match="belongs to experiment"):
        Run(other, run.id)


def test_repr_html_shows_status_duration_and_metrics(experiment: Experiment) -> None:
    run = experiment.start_logging()
    run.log("acc", 0.75)
    run.flush()
    page = run._repr_html_()
    assert "Running" in page and "<td>acc</td><td>0.75</td>" in page and run.id in page


def test_offline_context_prints_what_it_would_log(capsys: pytest.CaptureFixture[str]) -> None:
    run = Run.get_context()
    assert isinstance(run, OfflineRun)
    run.log("accuracy", 0.5)
    run.log("accuracy", 0.75)
    run.tag("k", "v")
    assert "Attempted to log scalar metric accuracy:\n0.5" in capsys.readouterr().out
    assert run.get_metrics() == {"accuracy": [0.5, 0.75]}
    run.complete()


def test_offline_context_can_be_refused() -> None:
    from modelyard.errors import UserError

    with pytest.raises(UserError, match="not running inside a modelyard run"):
        Run.get_context(allow_offline=False)


def test_points_logged_without_complete_survive_exit(workspace: Workspace, tmp_path: Path) -> None:
    import subprocess
    import sys

    script = f"""
from modelyard import Workspace, Experiment
ws = Workspace.get("test-ws", folder={str(workspace.folder)!r})
run = Experiment(ws, "exit").start_logging()
for i in range(1000):
    run.log("x", i)
print(run.id)
"""
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout.strip()
    run = Run(Experiment(workspace, "exit"), out)
    assert run.get_metrics()["x"] == list(range(1000))
