"""``RunDetails(run).show()`` in a real Jupyter kernel (nbclient), as a v1 notebook uses it.

One notebook, one kernel: it submits a real run (a script that logs a metric over ~2 s, prints
lines and makes two child runs), shows the widget, waits for the run, then prints the widget's
state as JSON, which the test reads from the cell's output. A third cell shows a run named
with HTML, a fourth a real tuning (HyperDrive) run of two children. What the widget holds in
the kernel is what its traits send to the front end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.widgets.test_html import XSS, Page

nbformat = pytest.importorskip("nbformat", reason="the notebook needs the dev extra (nbclient)")
nbclient = pytest.importorskip("nbclient", reason="the notebook needs the dev extra (nbclient)")
pytest.importorskip("anywidget", reason="RunDetails needs the widgets extra")

pytestmark = pytest.mark.slow

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
POINTS = 20
LAST_LINE = "training done: <b>last line</b>"

SCRIPT = f"""\
import time
from modelyard import Run

run = Run.get_context()
for child, lr in zip(run.create_children(tag_key="lr", tag_values=[0.1, 0.01]), [0.1, 0.01]):
    child.log("accuracy", 1 - lr)
    child.complete()
for epoch in range({POINTS}):
    run.log("loss", 1 / (epoch + 1))
    print(f"epoch {{epoch}}", flush=True)
    time.sleep(0.1)
run.log("final_accuracy", 0.9876543)
print({LAST_LINE!r}, flush=True)
"""

# A tuning run's child: its score rises to 10 * x over three points.
OBJECTIVE = """\
import argparse
from modelyard import Run

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float)
x = parser.parse_args().x
run = Run.get_context()
for fraction in (0.5, 1.0, 0.75):
    run.log("score", 10 * x * fraction)
"""

CELLS = [
    f"""\
import json
from pathlib import Path
from modelyard import Experiment, ScriptRunConfig, Workspace
from modelyard.widgets import RunDetails

Path("src").mkdir()
Path("src/train.py").write_text({SCRIPT!r})
Path("src/objective.py").write_text({OBJECTIVE!r})
ws = Workspace.create("notebook-ws", folder="ws")
exp = Experiment(ws, "watched")
run = exp.submit(ScriptRunConfig("src", "train.py"))
details = RunDetails(run)
details.show()""",
    """\
run.wait_for_completion()
assert details.wait(timeout=120), "the widget kept following an ended run"
print(json.dumps(details.get_widget_data()))""",
    f"""\
named = exp.start_logging(display_name={XSS!r})
named.log("acc", 0.5)
named.complete()
shown = RunDetails(named)
shown.show()
print(json.dumps(shown.get_widget_data()))""",
    """\
from modelyard.train.hyperdrive import (GridParameterSampling, HyperDriveConfig,
                                        PrimaryMetricGoal, choice)

hd_run = exp.submit(HyperDriveConfig(
    run_config=ScriptRunConfig("src", "objective.py"),
    hyperparameter_sampling=GridParameterSampling({"--x": choice(0.1, 0.2)}),
    primary_metric_name="score", primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
    max_total_runs=2, max_concurrent_runs=2))
tuning = RunDetails(hd_run)
tuning.show()
hd_run.wait_for_completion()
assert tuning.wait(timeout=120)
print(json.dumps(tuning.get_widget_data()))""",
]


def _printed_json(cell: Any) -> dict[str, Any]:
    text = "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")
    state: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
    return state


def _displayed(cell: Any) -> dict[str, Any]:
    (shown,) = [out for out in cell.outputs if out.output_type == "display_data"]
    data: dict[str, Any] = shown.data
    return data


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The notebook, executed in one new kernel in a folder of its own."""
    folder: Path = tmp_path_factory.mktemp("widget-notebook")
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    client = nbclient.NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    errors = [o for c in book.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    return book


def test_the_widget_follows_a_submitted_run_to_its_end(notebook: Any) -> None:
    shown = _displayed(notebook.cells[0])
    assert WIDGET_MIME in shown
    model_id = shown[WIDGET_MIME]["model_id"]

    state = _printed_json(notebook.cells[1])

    assert state["status"] == "Completed" and state["ended"] is True
    loss = state["metrics"]["loss"]
    assert loss["count"] == POINTS and len(loss["values"]) == POINTS
    assert loss["values"][0] == 1.0 and loss["values"][-1] == pytest.approx(1 / POINTS)
    assert loss["steps"] == list(range(POINTS))
    # A single value: shown rounded in the table, not drawn.
    assert state["metrics"]["final_accuracy"]["last"] == "0.9877"
    assert state["log_tail"].rstrip().splitlines()[-1] == LAST_LINE
    assert "epoch 19" in state["log_tail"]
    assert state["log_name"] == "user_logs/std_log.txt"
    # What the notebook's side was sent, by the thread as the run went on (nbclient keeps the
    # widget state it receives): the same end.
    widgets = notebook.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    sent = widgets[model_id]["state"]
    assert sent["run_id"] == state["run_id"] and sent["status"] == "Completed"
    assert sent["metrics"]["loss"]["count"] == POINTS and sent["following"] is False
    assert sent["log_tail"] == state["log_tail"]


def test_a_parent_run_lists_its_children(notebook: Any) -> None:
    state = _printed_json(notebook.cells[1])

    children = sorted(state["children"], key=lambda child: child["value"])
    assert [(c["status"], c["metric"], c["value"]) for c in children] == [
        ("Completed", "accuracy", "0.9"),
        ("Completed", "accuracy", "0.99"),
    ]


def test_a_run_named_with_html_shows_as_text(notebook: Any) -> None:
    cell = notebook.cells[2]
    state = _printed_json(cell)
    # The state holds the name as it is; the front end puts it in as text (textContent).
    assert state["name"] == XSS
    fallback = _displayed(cell)["text/html"]
    assert XSS not in fallback
    assert any(XSS in text for text in Page(fallback).text)
    assert "onerror" not in {key for _tag, attrs in Page(fallback).tags for key in attrs}


def test_a_tuning_run_lists_its_children_with_their_best_primary_metric(notebook: Any) -> None:
    state = _printed_json(notebook.cells[3])

    assert state["run_type"] == "hyperdrive" and state["status"] == "Completed"
    assert state["primary_metric"] == {"name": "score", "goal": "MAXIMIZE"}
    # Each child's best score is its highest point: 10 * x.
    assert sorted((c["status"], c["value"]) for c in state["children"]) == [
        ("Completed", "1"),
        ("Completed", "2"),
    ]
