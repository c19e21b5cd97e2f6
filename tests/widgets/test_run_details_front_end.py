"""The widget's front end (``run_details.js``) drawn by headless Chromium from a real widget's
state.

The page loads the ES module as a notebook front end does and calls its ``render`` with a
model holding the state a real ``RunDetails`` read from a real workspace. The model is a small
stand-in for the widget manager (``get``, ``on``): JupyterLab itself is not run here. What the
page shows is read back from its DOM; a screenshot is saved beside the test's files.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from modelyard import Experiment, Workspace
from modelyard.run import Run
from tests.widgets.test_html import XSS
from tests.widgets.test_run_state import tuning_run

pytest.importorskip("anywidget", reason="RunDetails needs the widgets extra")
from modelyard.widgets import run_details
from modelyard.widgets.run_details import RunDetails

MODULE = Path(run_details.__file__).with_name("run_details.js")

PAGE = """<!doctype html><html><body><div id="root"></div><script type="module">
import widget from "data:text/javascript;base64,%(module)s";
const state = %(state)s;
const handlers = {};
const model = {
  get: (key) => state[key],
  on: (event, handler) => { (handlers[event] = handlers[event] || []).push(handler); },
};
window.update = (key, value) => {
  state[key] = value;
  for (const handler of handlers["change:" + key] || []) handler();
};
try {
  widget.render({ model, el: document.getElementById("root") });
  window.rendered = true;
} catch (error) {
  window.failed = true;
  throw error;
}
</script></body></html>"""


def _watched_run(workspace: Workspace) -> Run:
    run = Experiment(workspace, "drawn").start_logging(display_name=XSS)
    for epoch in range(5):
        run.log("loss", 1 / (epoch + 1))
    run.log("final_accuracy", 0.9876543)
    child = run.child_run(name=f"child {XSS}")
    child.log("accuracy", 0.5)
    child.complete()
    run.flush()
    # The output log, as a run's supervisor appends it.
    log = b"epoch 0\n<script>window.injected = 1</script>\nlast line\n"
    run._backend.append_run_file(run.id, "user_logs/std_log.txt", 0, log)
    return run


def draw(browser: Any, state: dict[str, Any]) -> Any:
    """A page that drew ``state`` with the widget's module; fails on a script error."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_content(
        PAGE
        % {
            "module": base64.b64encode(MODULE.read_bytes()).decode(),
            # "</script>" in a log line would end the page's script: JSON allows "<\/" for it.
            "state": json.dumps(state).replace("</", "<\\/"),
        }
    )
    page.wait_for_function("window.rendered === true || window.failed", timeout=10_000)
    assert not errors, errors
    return page


def test_the_front_end_draws_the_state_as_text(
    workspace: Workspace, browser: Any, tmp_path: Path
) -> None:
    state = RunDetails(_watched_run(workspace)).get_widget_data()
    assert state["metrics"]["loss"]["count"] == 5

    page = draw(browser, state)
    root = page.locator("#root")

    # Names and log lines are text: no element came from them, no script ran.
    assert root.locator("strong").first.text_content() == XSS
    assert root.locator("img").count() == 0 and root.locator("script").count() == 0
    assert page.evaluate("window.injected") is None
    assert page.text_content("pre") == state["log_tail"]
    # One chart per series (its 5 points), single values in the table.
    assert page.locator("figcaption").all_text_contents() == ["loss"]
    points = page.get_attribute("polyline", "points") or ""
    assert len(points.split()) == 5
    cells = root.locator("td").all_text_contents()
    assert "final_accuracy" in cells and "0.9877" in cells
    assert f"child {XSS}" in cells and "accuracy: 0.5" in cells
    assert "Running" in cells

    page.screenshot(path=str(tmp_path / "run-details.png"), full_page=True)
    page.evaluate("window.update('status', 'Completed')")
    assert "Completed" in root.locator("td").all_text_contents()


def test_a_tuning_run_draws_its_best_metric_so_far(
    workspace: Workspace, browser: Any, tmp_path: Path
) -> None:
    state = RunDetails(tuning_run(workspace, "MAXIMIZE")).get_widget_data()

    page = draw(browser, state)

    assert page.locator("figcaption").all_text_contents() == ["best acc so far, by child"]
    assert len((page.get_attribute("polyline", "points") or "").split()) == 2
    cells = page.locator("td").all_text_contents()
    assert "Best acc (maximize)" in page.locator("th").all_text_contents()
    assert "0.7" in cells and "0.65" in cells
    page.screenshot(path=str(tmp_path / "tuning-run-details.png"), full_page=True)


def test_the_module_never_writes_html() -> None:
    source = MODULE.read_text()
    assert "innerHTML" not in source and "outerHTML" not in source
    assert "insertAdjacentHTML" not in source and "document.write" not in source
