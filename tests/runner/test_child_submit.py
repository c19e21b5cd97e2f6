"""``exp.submit`` from inside a submitted script (a pipeline's steps): through the script's
channel, the step becomes a child of the script's run, its supervisor wakes the agent, and the
script can wait for it; what lies outside the run's reach is refused."""

from __future__ import annotations

from pathlib import Path

from modelyard import Experiment, ScriptRunConfig
from modelyard.backend.records import COMPLETED

PIPELINE = """\
from modelyard import Experiment, Run, ScriptRunConfig
from modelyard.errors import PermissionDeniedError

run = Run.get_context()
step = run.experiment.submit(ScriptRunConfig("step", "step.py", arguments=["7"]))
step.wait_for_completion(raise_on_error=True)
print("step", step.id, step.get_status(), step.get_metrics()["value"], flush=True)
try:
    Experiment(run.experiment.workspace, "elsewhere").submit(ScriptRunConfig("step", "step.py"))
except PermissionDeniedError as refused:
    print("refused:", refused, flush=True)
"""

STEP = """\
import sys
from modelyard import Run

Run.get_context().log("value", float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
"""


def test_a_script_submits_a_child_step_and_waits_for_it(
    experiment: Experiment, tmp_path: Path
) -> None:
    source = tmp_path / "pipeline"
    (source / "step").mkdir(parents=True)
    (source / "pipeline.py").write_text(PIPELINE)
    (source / "step" / "step.py").write_text(STEP)

    run = experiment.submit(ScriptRunConfig(str(source), "pipeline.py"))
    run.wait_for_completion(raise_on_error=True)

    children = list(run.get_children())
    assert len(children) == 1
    step = children[0]
    assert step.get_status() == COMPLETED
    assert step.parent is not None and step.parent.id == run.id
    assert step.get_metrics() == {"value": 7.0}
    output = run._backend.read_run_file(run.id, "user_logs/std_log.txt").decode()
    assert f"step {step.id} Completed 7.0" in output
    assert "refused:" in output and "elsewhere" in output
    # Nothing escaped the run's reach: no run of its own outside it, no other experiment.
    assert set(experiment.workspace.experiments) == {experiment.name}
