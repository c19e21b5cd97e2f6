"""One workspace with real runs, one real ``modelyard ui`` process and one headless Chromium
for the UI's tests (session fixtures: starting them is most of the tests' time).

Chromium is Debian's (``make system-deps``), driven by Playwright's Python client; Playwright's
own browser downloads are never used.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard import Experiment, Run, Workspace
from modelyard.script_run_config import ScriptRunConfig
from modelyard.train.hyperdrive import (
    GridParameterSampling,
    HyperDriveConfig,
    PrimaryMetricGoal,
    choice,
)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "ui-screenshots"
XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_TAG = "<script>alert(2)</script>"
# A 1x1 PNG, for log_image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cf00000301010018dd8db00000000049454e44ae426082"
)

LOGS_SCRIPT = """\
import pathlib, sys, time
from modelyard import Run

run = Run.get_context()
print("first line of the log", flush=True)
run.log("epoch_acc", 0.5)
pathlib.Path("outputs").mkdir(exist_ok=True)
pathlib.Path("outputs/result.txt").write_text("the result")
pathlib.Path("sample.png").write_bytes(bytes.fromhex(sys.argv[2]))
run.log_image("sample", path="sample.png")
go = pathlib.Path(sys.argv[1])
while not go.exists():  # the test creates it once it saw the first line in the page
    time.sleep(0.05)
print("second line of the log", flush=True)
run.log("epoch_acc", 0.75)
"""


OBJECTIVE_SCRIPT = """\
import argparse
from modelyard import Run

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float)
parser.add_argument("--layers", type=int)
args = parser.parse_args()
run = Run.get_context()
for epoch in range(3):
    run.log("accuracy", 1 - abs(args.lr - 0.1) - 0.01 * args.layers + 0.01 * epoch)
"""


@dataclass
class UiWorkspace:
    """The workspace the UI serves, with the ids of its runs."""

    workspace: Workspace
    folder: Path  # the workspace's; its parent holds .modelyard/config.json naming it
    table_runs: dict[str, str] = field(default_factory=dict)  # label -> run id
    live_run: Run | None = None
    logs_run: Run | None = None
    go_file: Path | None = None
    parent_run: Run | None = None
    tuning_run: Run | None = None


def _table_runs(workspace: Workspace, made: UiWorkspace) -> None:
    """Runs for the table: their accuracy, status and names differ so that sorting and
    filtering show."""
    exp = Experiment(workspace, "ui-table")
    cases = [
        ("low", 0.80, "complete", {"team": "a"}),
        ("failed", 0.92, "fail", {"team": "b"}),
        ("high", 0.95, "complete", {"team": "a", "note": XSS_TAG}),
    ]
    for label, acc, end, tags in cases:
        run = exp.start_logging(display_name=XSS_NAME if label == "high" else label, outputs=False)
        run.set_tags(tags)
        for step in range(1, 11):
            run.log("validation_acc", acc * step / 10)
            run.log("loss", 1.0 / step)
        if label == "high":
            run.log_row("roc", fpr=0.1, tpr=0.8)
            run.log_row("roc", fpr=0.2, tpr=0.9)
            run.log_table("confusion", {"predicted": [0, 1], "count": [40, 60]})
            # Long enough to be downsampled for the chart.
            for step in range(20_000):
                run.log("curve", (step % 997) / 997.0)
        if end == "fail":  # a diverged run: JSON has no NaN, the page shows it as text
            run.log("loss", float("nan"))
            run.log("grad_norm", float("inf"))
        run.flush()
        if end == "fail":
            run.fail(error_details="diverged")
        else:
            run.complete()
        made.table_runs[label] = run.id


def _make_workspace(root: Path) -> UiWorkspace:
    folder = root / "ws"
    workspace = Workspace.create("ui-test", folder=folder)
    workspace.write_config(root)  # for the commands run in root (`modelyard run show`)
    made = UiWorkspace(workspace, folder)
    _table_runs(workspace, made)

    parent = Experiment(workspace, "ui-parent").start_logging(display_name="parent", outputs=False)
    for index in range(2):
        child = parent.child_run(name=f"child {index}")
        child.log("score", 0.1 * (index + 1))
        child.complete()
    (root / "model.bin").write_bytes(b"weights")
    parent.upload_file("outputs/model.bin", str(root / "model.bin"))
    parent.complete()
    parent.register_model("ui-model", "outputs/model.bin", tags={"stage": "test"})
    made.parent_run = parent

    # A cluster as its compute side records it (the store's own calls; no Ray cluster here).
    workspace._backend.create_compute("gpucluster", "AmlCompute", {"max_nodes": 4})
    workspace._backend.update_compute(
        "gpucluster", state="Succeeded", nodes={"current": 1, "idle": 1, "target": 4}
    )
    workspace._backend.update_compute("gpucluster", nodes={"current": 3, "idle": 1, "target": 4})

    live = Experiment(workspace, "ui-live").start_logging(display_name="live", outputs=False)
    for step in range(5):
        live.log("live_loss", 1.0 / (step + 1))
    live.flush()
    made.live_run = live

    source = root / "src"
    source.mkdir()
    (source / "follow.py").write_text(LOGS_SCRIPT)
    made.go_file = root / "go"
    config = ScriptRunConfig(
        str(source), "follow.py", arguments=[str(made.go_file), PNG.hex(), "--lr", "0.01"]
    )
    made.logs_run = Experiment(workspace, "ui-logs").submit(config)

    (source / "objective.py").write_text(OBJECTIVE_SCRIPT)
    tuning = HyperDriveConfig(
        run_config=ScriptRunConfig(str(source), "objective.py"),
        hyperparameter_sampling=GridParameterSampling(
            {"--lr": choice(0.01, 0.1, 0.3), "--layers": choice(1, 2)}
        ),
        primary_metric_name="accuracy",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=6,
        max_concurrent_runs=2,
    )
    # Submitted now, waited for by its test: it runs while the tests before it do.
    made.tuning_run = Experiment(workspace, "ui-tuning").submit(tuning)
    return made


@pytest.fixture(scope="session")
def ui_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiWorkspace]:
    made = _make_workspace(tmp_path_factory.mktemp("ui"))
    yield made
    assert made.go_file is not None and made.logs_run is not None
    made.go_file.touch()  # lets the script end if a test failed before
    made.logs_run.wait_for_completion()
    if made.tuning_run is not None:
        made.tuning_run.wait_for_completion()
    if made.live_run is not None and made.live_run.get_status() == "Running":
        made.live_run.complete()


@dataclass
class UiServer:
    """A running ``modelyard ui``: its base URL (ending in /) and its token."""

    base: str
    token: str
    process: subprocess.Popen[str]

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, **kwargs)


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        process.kill()
        raise AssertionError(f"modelyard ui printed no URL within {timeout} s") from None


@pytest.fixture(scope="session")
def ui_server(ui_workspace: UiWorkspace) -> Iterator[UiServer]:
    env = {k: v for k, v in os.environ.items() if k != "MODELYARD_CONFIG"}
    command = [sys.executable, "-m", "modelyard.cli.main", "ui"]
    command += ["--workspace", str(ui_workspace.folder), "--port", "0"]
    # Its stderr goes to a file: a pipe nobody reads could fill and stop the server.
    log = (ui_workspace.folder.parent / "ui.log").open("w")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    line = _first_line(process, 60)
    assert line.startswith("modelyard ui: workspace 'ui-test' at http://127.0.0.1:"), line
    url = line.split(" at ", 1)[1].strip()
    base, _, token = url.partition("?token=")
    yield UiServer(base, token, process)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    log.close()
    # The URL kept for Run.get_portal_url goes with the process.
    assert not (ui_workspace.folder / "ui.json").exists()


@dataclass
class Page:
    """A browser tab signed in to the UI, with the dialogs (alert) any page opened."""

    page: Any
    server: UiServer
    dialogs: list[str]

    def open(self, path: str) -> Any:
        self.page.goto(self.server.base + path.lstrip("/"))
        self.page.wait_for_selector("body[data-ready=true]")
        return self.page

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def page(browser: Any, ui_server: UiServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    # The token from the URL becomes a cookie, and the address loses it.
    tab.goto(f"{ui_server.base}?token={ui_server.token}")
    assert "token" not in tab.url
    yield Page(tab, ui_server, dialogs)
    context.close()
