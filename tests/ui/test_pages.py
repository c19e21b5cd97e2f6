"""The web UI in a real headless Chromium against a real ``modelyard ui`` process.

Each page is saved as a screenshot under build/ui-screenshots/ (look at them after a change
to the pages).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from modelyard import Experiment, Workspace
from modelyard.backend.records import COMPLETED
from tests.helpers import run_cli
from tests.ui.conftest import XSS_NAME, XSS_TAG, Page, UiServer, UiWorkspace

WAIT_MS = 30_000


def _column(page: Any, name: str) -> list[str]:
    headers = page.locator("#runs thead th").all_inner_texts()
    index = [h.replace("▲", "").replace("▼", "").strip() for h in headers].index(name)
    return page.locator(f"#runs tbody tr td:nth-child({index + 1})").all_inner_texts()


def test_experiments_page_counts_runs_and_their_states(page: Page) -> None:
    tab = page.open("/")
    row = tab.locator("#experiments tr", has_text="ui-table")
    assert row.locator("td").nth(1).inner_text() == "3"
    assert "Completed 2" in row.inner_text() and "Failed 1" in row.inner_text()
    page.screenshot("experiments")


def test_runs_table_sorts_and_filters(page: Page, ui_workspace: UiWorkspace) -> None:
    tab = page.open("/experiments/ui-table")
    assert tab.locator("#runs tbody tr").count() == 3
    tab.locator("#runs th[data-sort='m:validation_acc']").click()
    assert _column(tab, "validation_acc") == ["0.8", "0.92", "0.95"]
    tab.locator("#runs th[data-sort='m:validation_acc']").click()
    assert _column(tab, "validation_acc") == ["0.95", "0.92", "0.8"]
    assert _column(tab, "loss") == ["0.1", "NaN", "0.1"]
    assert "Infinity" in _column(tab, "grad_norm")
    page.screenshot("runs-table")

    tab.fill("#filter-metric", "validation_acc > 0.9")
    tab.click("#filters button[type=submit]")
    tab.wait_for_selector("body[data-ready=true]")
    assert sorted(_column(tab, "validation_acc")) == ["0.92", "0.95"]

    tab.select_option("#filter-status", "Completed")
    tab.click("#filters button[type=submit]")
    tab.wait_for_selector("body[data-ready=true]")
    assert _column(tab, "validation_acc") == ["0.95"]
    assert _column(tab, "status") == ["Completed"]

    tab = page.open("/experiments/ui-table?tag=team%3Da")
    assert sorted(_column(tab, "validation_acc")) == ["0.8", "0.95"]
    tab = page.open("/experiments/ui-table?property=modelyard.submitted_by&metric=loss%20%3C%201")
    assert sorted(_column(tab, "validation_acc")) == ["0.8", "0.95"]  # NaN < 1 is false
    tab = page.open("/experiments/ui-table?property=no.such.key")
    assert tab.locator("#runs-empty").inner_text() == "No runs match."

    # A bad expression is answered with what is wrong, not a table.
    tab = page.open("/experiments/ui-table?metric=validation_acc%20%3E")
    assert "ends too early" in tab.locator(".error").inner_text()
    assert tab.locator("#runs").count() == 0


def test_a_name_or_tag_holding_html_shows_as_text(page: Page, ui_workspace: UiWorkspace) -> None:
    tab = page.open("/experiments/ui-table")
    assert XSS_NAME in tab.locator("#runs").inner_text()
    assert XSS_TAG in tab.locator("#runs").inner_text()
    high = ui_workspace.table_runs["high"]
    tab = page.open(f"/runs/{high}")
    assert tab.locator("#run-name").inner_text() == XSS_NAME
    assert XSS_TAG in tab.locator("#tags").inner_text()
    # No element was made of the name: no <img src=x>, no script ran.
    assert tab.locator("img[src=x]").count() == 0
    assert tab.locator("#tags script").count() == 0
    assert page.dialogs == []


def test_the_logs_follow_a_running_script(page: Page, ui_workspace: UiWorkspace) -> None:
    run, go = ui_workspace.logs_run, ui_workspace.go_file
    assert run is not None and go is not None
    if go.exists():  # another test let it finish: its log is whole
        run.wait_for_completion()
    tab = page.open(f"/runs/{run.id}")
    log = tab.locator("#log-text")
    tab.wait_for_function(
        "() => document.querySelector('#log-text').innerText.includes('first line of the log')",
        timeout=60_000,
    )
    go.touch()
    tab.wait_for_function(
        "() => document.querySelector('#log-text').innerText.includes('second line of the log')",
        timeout=60_000,
    )
    assert log.inner_text().count("first line of the log") == 1
    run.wait_for_completion()
    tab.wait_for_function(
        f"() => document.querySelector('#run-status').innerText.includes('{COMPLETED}')",
        timeout=WAIT_MS,
    )
    page.screenshot("run-logs")


def test_a_live_run_chart_gains_points(page: Page, ui_workspace: UiWorkspace) -> None:
    live = ui_workspace.live_run
    assert live is not None
    tab = page.open(f"/runs/{live.id}")
    chart = "#charts [data-metric=live_loss]"
    tab.wait_for_selector(f"{chart}[data-points='5']")
    for step in range(5, 12):
        live.log("live_loss", 1.0 / (step + 1))
    live.flush()
    # The page polls while the run runs: the points appear without a reload.
    tab.wait_for_selector(f"{chart}[data-points='12']", timeout=WAIT_MS)
    page.screenshot("run-live")
    live.complete()
    tab.wait_for_function(
        "() => document.querySelector('#run-status').innerText.includes('Completed')",
        timeout=WAIT_MS,
    )


def test_run_page_shows_parameters_tables_images_files_and_snapshot(
    page: Page, ui_workspace: UiWorkspace
) -> None:
    high = ui_workspace.table_runs["high"]
    tab = page.open(f"/runs/{high}")
    assert tab.locator("#tables [data-metric=roc] tbody tr").count() == 2
    assert "60" in tab.locator("#tables [data-metric=confusion]").inner_text()
    curve = tab.locator("#charts [data-metric=curve]")
    curve.wait_for()
    # 20,000 points, fewer drawn: the server keeps each bucket's extremes.
    assert curve.get_attribute("data-points") == "20000"
    assert int(curve.get_attribute("data-shown") or 0) < 20000
    assert "Failed" not in tab.locator("#run-status").inner_text()
    page.screenshot("run-table-metrics")

    assert ui_workspace.logs_run is not None and ui_workspace.go_file is not None
    ui_workspace.go_file.touch()
    ui_workspace.logs_run.wait_for_completion()
    tab = page.open(f"/runs/{ui_workspace.logs_run.id}")
    # The states it went through, as its supervisor recorded them, each with its time.
    steps = tab.locator("#timeline .step").all_inner_texts()
    assert [step.split()[0] for step in steps] == [
        "NotStarted",
        "Queued",
        "Preparing",
        "Starting",
        "Running",
        "Finalizing",
        "Completed",
    ]
    assert "--lr" in tab.locator("#parameters").inner_text()
    assert "0.01" in tab.locator("#parameters").inner_text()
    tab.locator("#tables [data-metric=sample] img").wait_for()
    assert tab.locator("#tables [data-metric=sample] img").evaluate("i => i.naturalWidth") == 1
    assert "outputs/result.txt" in tab.locator("#files").inner_text()
    assert "follow.py" in tab.locator("#snapshot").inner_text()
    with tab.expect_download() as download:
        tab.locator("#files a", has_text="outputs/result.txt").click()
    path = download.value.path()
    assert path is not None and path.read_bytes() == b"the result"
    page.screenshot("run-submitted")


def test_children_compare_models_and_computes(page: Page, ui_workspace: UiWorkspace) -> None:
    parent = ui_workspace.parent_run
    assert parent is not None
    tab = page.open(f"/runs/{parent.id}")
    assert "child 0" in tab.locator("#children").inner_text()
    assert "child 1" in tab.locator("#children").inner_text()

    low, high = ui_workspace.table_runs["low"], ui_workspace.table_runs["high"]
    tab = page.open("/experiments/ui-table")
    tab.check(f"#runs input[data-run='{low}']")
    tab.check(f"#runs input[data-run='{high}']")
    tab.click("#compare")
    tab.wait_for_url(re.compile(r".*/compare\?run=.*"))
    tab.wait_for_selector("body[data-ready=true]")
    tab.locator("#compare-charts [data-metric=validation_acc] canvas").wait_for()
    assert tab.locator("#compare-params thead th").count() == 3  # a row header and two runs
    assert XSS_NAME in tab.locator("#compare-params").inner_text()
    page.screenshot("compare")

    tab = page.open("/models")
    row = tab.locator("#models tr", has_text="ui-model")
    assert "stage=test" in row.inner_text() and "ui-parent" in row.inner_text()
    page.screenshot("models")

    tab = page.open("/computes")
    assert "local" in tab.locator("#computes").inner_text()
    cluster = tab.locator("#computes tr", has_text="gpucluster").locator("td").all_inner_texts()
    assert cluster[1:6] == ["AmlCompute", "Succeeded", "3", "1", "4"]
    # Its node counts over time: both changes, drawn.
    tab.locator("[data-compute=gpucluster][data-changes='2'] canvas").wait_for()
    page.screenshot("computes")
    assert page.dialogs == []


def test_a_tuning_run_shows_its_children(page: Page, ui_workspace: UiWorkspace) -> None:
    tuning = ui_workspace.tuning_run
    assert tuning is not None
    tuning.wait_for_completion()
    tab = page.open(f"/runs/{tuning.id}")
    view = tab.locator("#hyperdrive")
    view.locator("#parallel").wait_for()
    assert "accuracy" in view.inner_text() and "6 child run(s)" in view.inner_text()
    # One line per child across the axes --lr, --layers and the metric.
    assert view.locator("#parallel polyline").count() == 6
    assert view.locator("#parallel").inner_html().count("--layers") == 1
    tab.locator("#best-over-time canvas").first.wait_for()
    assert tab.locator("#children tbody tr").count() == 6
    # The driver's log, followed once (not once per time the page looked for logs).
    tab.wait_for_function(
        "() => document.querySelector('#log-text').innerText.includes('completed: best child')",
        timeout=WAIT_MS,
    )
    assert tab.locator("#log-text").inner_text().count("completed: best child") == 1
    page.screenshot("run-tuning")


def test_portal_url_names_the_running_ui(ui_server: UiServer, ui_workspace: UiWorkspace) -> None:
    run = ui_workspace.parent_run
    assert run is not None
    url = f"{ui_server.base}runs/{run.id}"
    assert run.get_portal_url() == url
    shown = run_cli(ui_workspace.folder.parent, "run", "show", run.id)
    assert shown.returncode == 0, shown.stderr
    assert re.search(rf"^web UI\s+{re.escape(url)}$", shown.stdout, re.M), shown.stdout
    as_json = run_cli(ui_workspace.folder.parent, "run", "show", run.id, "--json")
    assert json.loads(as_json.stdout)["portalUrl"] == url


def test_portal_url_without_a_running_ui_is_the_default_one(tmp_path: Path) -> None:
    ws = Workspace.create("no-ui", folder=tmp_path / "ws")
    run = Experiment(ws, "e").start_logging(outputs=False)
    run.complete()
    assert run.get_portal_url() == f"http://127.0.0.1:8766/runs/{run.id}"
    # The file of a UI that was killed (its process is gone) is not believed.
    (tmp_path / "ws" / "ui.json").write_text('{"url": "http://127.0.0.1:1/", "pid": 999999999}')
    assert run.get_portal_url() == f"http://127.0.0.1:8766/runs/{run.id}"
