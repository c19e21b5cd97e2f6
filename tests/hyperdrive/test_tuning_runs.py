"""Tuning runs end to end on the local compute, with real children (subprocesses of small
scripts) and the real driver process: sampling, concurrency, early termination, a driver
killed and resumed, cancel, bad input, the CLI."""

from __future__ import annotations

import itertools
import json
import os
import signal
from pathlib import Path

import pytest

from modelyard import Experiment, Run, Workspace
from modelyard.errors import RunFailedError, ValidationError
from modelyard.runner.local_compute import compute_dir
from modelyard.script_run_config import ScriptRunConfig
from modelyard.train.hyperdrive import (
    BanditPolicy,
    BayesianParameterSampling,
    GridParameterSampling,
    HyperDriveConfig,
    HyperDriveRun,
    PrimaryMetricGoal,
    RandomParameterSampling,
    choice,
    uniform,
)
from modelyard.train.hyperdrive.plan import LOG_FILE
from tests.helpers import run_cli, wait_for

SCRIPTS = Path(__file__).parent / "scripts"
GRID = {"--x": choice(0, 1, 2), "--y": choice(-2, 0)}


def objective(**arguments: object) -> ScriptRunConfig:
    fixed = [word for name, value in arguments.items() for word in (f"--{name}", str(value))]
    return ScriptRunConfig(str(SCRIPTS), "objective.py", arguments=fixed)


def score(x: float, y: float) -> float:
    return -((x - 1) ** 2 + (y + 2) ** 2)


def tune(
    sampling: object, config: ScriptRunConfig | None = None, **settings: object
) -> HyperDriveConfig:
    settings.setdefault("primary_metric_name", "score")
    settings.setdefault("primary_metric_goal", PrimaryMetricGoal.MAXIMIZE)
    return HyperDriveConfig(
        run_config=config or objective(), hyperparameter_sampling=sampling, **settings
    )


def driver_log(hd_run: Run) -> str:
    return hd_run._backend.read_run_file(hd_run.id, LOG_FILE, 0, 1 << 24).decode()


def at_once(children: list[Run]) -> int:
    """The most children that were running at one moment, from their records' times."""
    spans = [(child._refresh().started_at, child._record.ended_at) for child in children]
    moments = [start for start, _ in spans if start is not None]
    return max(
        sum(1 for start, end in spans if start is not None and start <= t and (end or t) > t)
        for t in moments
    )


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory: pytest.TempPathFactory) -> HyperDriveRun:
    """One grid run for the tests that only read what it did."""
    ws = Workspace.create("tune-ws", folder=tmp_path_factory.mktemp("tune") / "ws")
    hd_run = Experiment(ws, "grid").submit(
        tune(GridParameterSampling(GRID), max_concurrent_runs=2), tags={"try": "grid"}
    )
    assert isinstance(hd_run, HyperDriveRun) and hd_run.status == "Queued"
    hd_run.wait_for_completion()
    return hd_run


def test_grid_sampling_runs_each_combination_exactly_once(grid_run: HyperDriveRun) -> None:
    children = list(grid_run.get_children())
    wanted = [{"--x": x, "--y": y} for x, y in itertools.product((0, 1, 2), (-2, 0))]
    assert sorted(map(json.dumps, (c.hyperparameters for c in children))) == sorted(
        map(json.dumps, wanted)
    )
    assert {child.get_status() for child in children} == {"Completed"}
    assert grid_run.get_status() == "Completed" and grid_run.get_tags() == {"try": "grid"}
    for child in children:
        parameters = child.hyperparameters
        assert parameters is not None
        # The script was given its configuration as arguments, and computed from them.
        assert child.get_details()["runDefinition"]["arguments"][-4:] == [
            "--x",
            str(parameters["--x"]),
            "--y",
            str(parameters["--y"]),
        ]
        assert child.get_metrics()["score"][-1] == score(parameters["--x"], parameters["--y"])
    assert grid_run.get_hyperparameters() == {c.id: c.hyperparameters for c in children}
    assert set(grid_run.get_metrics()) == {c.id for c in children}


def test_the_best_child_is_the_one_with_the_best_primary_metric(grid_run: HyperDriveRun) -> None:
    best = grid_run.get_best_run_by_primary_metric()
    assert best is not None and best.hyperparameters == {"--x": 1, "--y": -2}
    assert grid_run.best_child_run_id == best.id
    assert grid_run.get_properties()["best_metric"] == "0.0"
    ranked = grid_run.get_children_sorted_by_primary_metric()
    figures = [row["best_primary_metric"] for row in ranked]
    assert figures == sorted(figures, reverse=True) and ranked[0]["run_id"] == best.id
    assert set(ranked[0]) == {"run_id", "hyperparameters", "best_primary_metric", "status"}
    assert [r["run_id"] for r in grid_run.get_children_sorted_by_primary_metric(top=2)] == [
        r["run_id"] for r in ranked[:2]
    ]
    worst_first = grid_run.get_children_sorted_by_primary_metric(reverse=True)
    assert [r["run_id"] for r in worst_first] == [r["run_id"] for r in reversed(ranked)]
    # The best child is an ordinary run: its outputs can become a model.
    model = best.register_model("best-objective", "system_logs/job.json")
    assert model.version == 1


def test_a_tuning_run_found_again_is_a_hyperdrive_run(grid_run: HyperDriveRun) -> None:
    """As v1 rehydrates it: from Run.get, the experiment's runs and its children's parent."""
    ws = grid_run.experiment.workspace
    found = Run.get(ws, grid_run.id)
    assert isinstance(found, HyperDriveRun)
    assert found.best_child_run_id == grid_run.best_child_run_id
    [listed] = [r for r in grid_run.experiment.get_runs() if r.id == grid_run.id]
    assert isinstance(listed, HyperDriveRun)
    child = next(iter(grid_run.get_children()))
    assert type(child) is Run and isinstance(child.parent, HyperDriveRun)


def test_the_cli_shows_the_children_best_first(grid_run: HyperDriveRun, tmp_path: Path) -> None:
    grid_run.workspace.write_config(str(tmp_path))
    shown = run_cli(tmp_path, "hyperdrive", "show", grid_run.id, "--json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["status"] == "Completed"
    assert data["primaryMetric"] == {"name": "score", "goal": "MAXIMIZE"}
    ranked = [row["run_id"] for row in grid_run.get_children_sorted_by_primary_metric()]
    assert [child["run_id"] for child in data["children"]] == ranked
    table = run_cli(tmp_path, "hyperdrive", "show", grid_run.id).stdout
    assert "best score" in table and table.index(ranked[0]) < table.index(ranked[-1])
    child = run_cli(tmp_path, "hyperdrive", "show", ranked[0])
    assert child.returncode != 0 and "not a tuning" in child.stderr


def test_random_sampling_runs_eight_children_four_at_a_time(
    experiment: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_LOCAL_MAX_RUNS", "4")
    # Not in alphabetical order: the driver draws in the space's order, as the user's sampler.
    sampling = RandomParameterSampling(
        {"--y": uniform(-3, 3), "--x": uniform(-3, 3)}, properties={"rngSeed": 11}
    )
    hd_run = experiment.submit(
        tune(sampling, objective(epochs=3, sleep=0.3), max_total_runs=8, max_concurrent_runs=4)
    )
    hd_run.wait_for_completion()
    children = sorted(hd_run.get_children(), key=lambda c: int(c.id.rpartition("_")[2]))
    # The index-th child got the sampler's index-th configuration: none repeated or skipped.
    assert [c.hyperparameters for c in children] == [sampling.configuration(i) for i in range(8)]
    assert 2 <= at_once(children) <= 4


def test_bayesian_sampling_tunes_with_optuna(
    experiment: Experiment, capsys: pytest.CaptureFixture[str]
) -> None:
    sampling = BayesianParameterSampling(
        {"--x": uniform(-3, 3), "--y": uniform(-3, 3)}, properties={"rngSeed": 5}
    )
    hd_run = experiment.submit(tune(sampling, max_total_runs=6, max_concurrent_runs=2))
    details = hd_run.wait_for_completion(show_output=True)
    assert details["status"] == "Completed"
    # Not at a terminal: what the driver does, line by line, then the table of the children.
    printed = capsys.readouterr().out
    assert f"RunId: {hd_run.id}" in printed and "BayesianOptimization sampling" in printed
    assert printed.count(": queued with --x ") == 6 and "completed: best child" in printed
    table = printed[printed.index(f"{hd_run.id}: Completed; 6 children made, 6 ended") :]
    assert "best score" in table
    rows = [line for line in table.splitlines()[1:] if "Completed" in line]
    assert len(rows) == 6  # one per child, under the head line
    children = list(hd_run.get_children())
    assert len(children) == 6
    for child in children:
        parameters = child.hyperparameters or {}
        assert -3 <= parameters["--x"] <= 3 and -3 <= parameters["--y"] <= 3
    figures = [child.get_metrics()["score"][-1] for child in children]
    best = hd_run.get_best_run_by_primary_metric()
    assert best is not None and best.get_metrics()["score"][-1] == max(figures)


def test_a_bandit_policy_stops_the_child_that_learns_slowly(experiment: Experiment) -> None:
    config = ScriptRunConfig(str(SCRIPTS), "learner.py")
    policy = BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=2)
    hd_run = experiment.submit(
        tune(
            GridParameterSampling({"--rate": choice(1.0, 0.01)}),
            config,
            policy=policy,
            primary_metric_name="accuracy",
            max_concurrent_runs=2,
        )
    )
    hd_run.wait_for_completion()
    children = {child.hyperparameters["--rate"]: child for child in hd_run.get_children()}  # type: ignore[index]
    fast, slow = children[1.0], children[0.01]
    assert fast.get_status() == "Completed" and len(fast.get_metrics()["accuracy"]) == 12
    assert slow.get_status() == "Canceled"
    reason = slow.get_details()["error"]["message"]
    assert reason.startswith("BanditPolicy: accuracy ") and "slack_factor 0.1" in reason
    assert len(slow.get_metric_history("accuracy")) < 12  # stopped before it finished
    assert f"{slow.id}: stopping it: BanditPolicy" in driver_log(hd_run)
    assert hd_run.get_best_run_by_primary_metric().id == fast.id  # type: ignore[union-attr]


def test_a_driver_killed_with_sigkill_resumes_without_repeating_or_losing_a_child(
    workspace: Workspace,
) -> None:
    hd_run = Experiment(workspace, "kill").submit(
        tune(GridParameterSampling(GRID), objective(sleep=0.2), max_concurrent_runs=2)
    )
    run_dir = compute_dir(workspace.folder) / "runs" / hd_run.id
    first = wait_for(
        lambda: (
            json.loads((run_dir / "processes.json").read_text())["supervisor_pid"]
            if (run_dir / "processes.json").exists() and list(hd_run.get_children())
            else None
        )
    )
    os.kill(first, signal.SIGKILL)
    hd_run.wait_for_completion()
    children = list(hd_run.get_children())
    assert sorted(json.dumps(c.hyperparameters) for c in children) == sorted(
        json.dumps({"--x": x, "--y": y}) for x, y in itertools.product((0, 1, 2), (-2, 0))
    )
    assert json.loads((run_dir / "processes.json").read_text())["supervisor_pid"] != first
    assert "resuming" in driver_log(hd_run)
    agent_log = (compute_dir(workspace.folder) / "agent.log").read_text()
    assert f"its driver (pid {first}) killed by signal 9; starting a new one" in agent_log


def test_cancel_cancels_the_children_then_the_tuning_run(experiment: Experiment) -> None:
    hd_run = experiment.submit(
        tune(GridParameterSampling(GRID), objective(epochs=200, sleep=0.1), max_concurrent_runs=2)
    )
    wait_for(lambda: [c for c in hd_run.get_children() if c.get_status() == "Running"][1:])
    hd_run.cancel()
    with pytest.raises(RunFailedError, match="ended Canceled"):
        hd_run.wait_for_completion()
    children = list(hd_run.get_children())
    assert len(children) == 2  # none made after the cancel
    for child in children:
        assert child.get_status() == "Canceled"
        assert child.get_details()["error"]["message"] == f"the tuning run {hd_run.id} was canceled"


def test_max_duration_cancels_the_children_still_running(experiment: Experiment) -> None:
    hd_run = experiment.submit(
        tune(
            GridParameterSampling(
                {"--x": choice(1), "--y": choice(-2), "--epochs": choice(1, 500)}
            ),
            objective(sleep=0.1),
            max_concurrent_runs=2,
            max_duration_minutes=0.1,
        )
    )
    hd_run.wait_for_completion()
    children = {c.hyperparameters["--epochs"]: c for c in hd_run.get_children()}  # type: ignore[index]
    assert children[1].get_status() == "Completed"
    assert children[500].get_status() == "Canceled"
    assert "max_duration_minutes (0.1)" in children[500].get_details()["error"]["message"]


def test_a_primary_metric_no_child_logs_fails_the_run_saying_so(experiment: Experiment) -> None:
    # The grid's last parameter changes fastest: children _0 and _1 end at once, and the four
    # later ones sleep a minute per epoch, so they can only end by being canceled.
    grid = {"--sleep": choice(0, 60, 61), "--x": choice(0, 1)}
    hd_run = experiment.submit(
        tune(
            GridParameterSampling(grid),
            objective(y=-2),
            primary_metric_name="accuracy",
            max_concurrent_runs=2,
        )
    )
    with pytest.raises(RunFailedError) as info:
        hd_run.wait_for_completion()
    message = str(info.value)
    assert "ended Failed" in message
    assert "none of its first 2 children logged the primary metric 'accuracy'" in message
    assert "they logged score" in message
    # Each child that ended while the first two ran made room for one more (two at most,
    # with two at a time); those were canceled, and no others made.
    later = [c for c in hd_run.get_children() if not c.id.endswith(("_0", "_1"))]
    assert len(later) <= 2
    for child in later:
        assert child.get_status() == "Canceled"
        assert child.get_details()["error"]["message"].startswith("the tuning run failed")


def test_parameters_the_script_refuses_fail_the_run_with_the_first_childs_error(
    experiment: Experiment,
) -> None:
    hd_run = experiment.submit(
        tune(
            GridParameterSampling({"--batch-size": choice(16, 32)}),
            objective(x=1, y=-2),
            max_concurrent_runs=2,
        )
    )
    with pytest.raises(RunFailedError) as info:
        hd_run.wait_for_completion()
    message = str(info.value)
    assert "its first 2 children failed" in message
    assert "unrecognized arguments: --batch-size" in message  # the script's own words


def test_resume_from_skips_what_an_earlier_run_tried_and_resume_child_runs_runs_again(
    experiment: Experiment,
) -> None:
    first = experiment.submit(
        tune(GridParameterSampling(GRID), max_total_runs=2, max_concurrent_runs=2)
    )
    first.wait_for_completion()
    tried = {json.dumps(c.hyperparameters) for c in first.get_children()}
    again = next(iter(first.get_children()))
    second = experiment.submit(
        tune(
            GridParameterSampling(GRID),
            max_concurrent_runs=2,
            resume_from=[first],
            resume_child_runs=[again.id],
        )
    )
    second.wait_for_completion()
    children = list(second.get_children())
    made = [json.dumps(c.hyperparameters) for c in children]
    resumed = [c for c in children if c.get_properties().get("modelyard.hyperdrive.resumed_from")]
    assert [c.hyperparameters for c in resumed] == [again.hyperparameters]
    # The rest of the grid, each once: what the first run tried is not tried again.
    rest = sorted(m for m in made if m != json.dumps(again.hyperparameters))
    assert len(made) == 5 and not tried & set(rest) and len(set(rest)) == 4
    best = second.get_best_run_by_primary_metric(include_resume_from_runs=False)
    assert best is not None and best.id not in {c.id for c in resumed}


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"max_total_runs": 2, "max_concurrent_runs": 4}, "max_concurrent_runs", "more than"),
        ({"max_totl_runs": 2}, "max_totl_runs", "max_total_runs"),
        ({"max_total_runs": None}, "max_total_runs", "no end of their own"),
        ({"max_total_runs": 2, "max_duration_minutes": 0}, "max_duration_minutes", "positive"),
        ({"max_total_runs": 2, "pipeline": object()}, "pipeline", "not supported"),
        ({"max_total_runs": 2, "estimator": "x"}, "run_config", "not both"),
        ({"max_total_runs": 2, "policy": "bandit"}, "policy", "BanditPolicy"),
        ({"max_total_runs": 2, "primary_metric_goal": "UP"}, "primary_metric_goal", "MAXIMIZE"),
        ({"max_total_runs": 2, "custom_run_id": "bad id"}, "custom_run_id", "not a valid name"),
        ({"max_total_runs": 2, "resume_from": [3]}, "resume_from", "runs or run ids"),
    ],
)
def test_a_bad_configuration_is_refused_before_anything_runs(
    settings: dict[str, object], field: str, words: str
) -> None:
    sampling = RandomParameterSampling({"--x": uniform(0, 1), "--y": uniform(0, 1)})
    with pytest.raises(ValidationError) as info:
        tune(sampling, **settings)
    assert info.value.field == field and words in str(info.value)


def test_submit_refuses_runs_resumed_from_that_are_not_tuning_runs(experiment: Experiment) -> None:
    sampling = RandomParameterSampling({"--x": uniform(0, 1), "--y": uniform(0, 1)})
    plain = experiment.start_logging()
    plain.complete()
    with pytest.raises(ValidationError, match="not a tuning run"):
        experiment.submit(tune(sampling, max_total_runs=2, resume_from=[plain.id]))
    with pytest.raises(ValidationError, match="does not exist"):
        experiment.submit(tune(sampling, max_total_runs=2, resume_child_runs=["nosuch_run"]))
    assert [run.id for run in experiment.get_runs()] == [plain.id]  # nothing else stored
    with pytest.raises(ValidationError, match="not a tuning"):
        HyperDriveRun(experiment, plain.id)
