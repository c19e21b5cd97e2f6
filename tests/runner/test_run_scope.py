"""A run's script reaches its own run only: the supervisor's channel refuses the rest
(runner/run_scope.py), with a real submitted script and a real socket."""

from __future__ import annotations

from pathlib import Path

from modelyard import Experiment, Model, Run, Workspace
from modelyard.script_run_config import ScriptRunConfig

SCRIPTS = Path(__file__).parent / "scripts"


def _log(run: Run) -> str:
    return run._backend.read_run_file(run.id, "user_logs/std_log.txt", 0, 1 << 30).decode()


def test_a_script_cannot_act_on_other_runs_or_the_workspace(
    workspace: Workspace, tmp_path: Path
) -> None:
    victim_exp = Experiment(workspace, "victims")
    victim = victim_exp.start_logging()
    victim.log("loss", 1.0)
    victim.flush()
    same_exp = Experiment(workspace, "scoped")
    neighbour = same_exp.start_logging()  # another run of the script's own experiment
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"w")
    Model.register(workspace, str(weights), "precious")

    run = same_exp.submit(
        ScriptRunConfig(
            SCRIPTS,
            "reach_out.py",
            arguments=["--other", neighbour.id, "--other-experiment", "victims"],
        )
    )
    details = run.wait_for_completion(raise_on_error=False)
    log = _log(run)
    assert details["status"] == "Completed", log
    assert "ALLOWED" not in log, log
    for what in (
        "complete another run",
        "tag another run",
        "read another run",
        "log to another run",
        "delete a model",
        "list experiments",
        "another experiment",
        "list the queue",
        "read /etc/passwd through the supervisor",
        "read a link out of the folder through the supervisor",
        "child run of another run",
        "claim another run as a child",
    ):
        assert f"refused: {what}: PermissionDeniedError" in log, what
    # Nothing of it happened.
    assert neighbour.get_status() == "Running" and neighbour.get_tags() == {}
    assert Model(workspace, "precious").version == 1
    assert "stolen.txt" not in run.get_file_names()
    assert "stolen2.txt" not in run.get_file_names()
    assert [r.id for r in same_exp.get_runs()] == [run.id, neighbour.id]  # no "sneaky"

    # What it may do worked: its children, its tags, its files, reading models.
    assert "children: [True]" in log and "models seen: ['precious']" in log
    (child,) = run.get_children()
    assert child.get_metrics() == {"inner_metric": 5} and child.get_tags() == {"kind": "child"}
    assert run.get_tags()["phase"] == "train"
    assert "uploaded/outside.txt" in run.get_file_names()


def test_a_script_that_completes_its_run_keeps_its_outputs(experiment: Experiment) -> None:
    neighbour = experiment.start_logging()
    run = experiment.submit(
        ScriptRunConfig(
            SCRIPTS, "reach_out.py", arguments=["--other", neighbour.id, "--other-experiment", "x"]
        )
    )
    run.wait_for_completion()
    assert "done" in _log(run)
    # run.complete() came before ./outputs was written; the run still ended with them.
    assert "outputs/model/weights.txt" in run.get_file_names()
    model = run.register_model("from-outputs", "outputs/model")
    assert model.version == 1


def test_the_supervisor_uploads_no_file_through_a_link_the_script_planted(
    experiment: Experiment, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not the run's")
    run = experiment.submit(ScriptRunConfig(SCRIPTS, "plant_links.py", arguments=[str(outside)]))
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Completed", _log(run)
    names = run.get_file_names()
    assert "outputs/kept.txt" in names and "outputs/alias.txt" in names
    assert not [n for n in names if "leak" in n or "secret" in n or n.startswith("logs/")]
    assert not [n for n in names if ".modelyard-tmp-" in n]
    system_log = run._backend.read_run_file(run.id, "system_logs/supervisor.txt").decode()
    assert "./logs is a symbolic link" in system_log
