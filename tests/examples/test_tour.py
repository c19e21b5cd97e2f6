"""examples/tour.py, the README's tour, runs end to end and leaves what the README says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from modelyard import Experiment, Model, Run, Workspace

ROOT = Path(__file__).resolve().parents[2]
TOUR = ROOT / "examples" / "tour.py"


def test_the_tour_trains_registers_and_downloads_in_the_folder_it_is_given(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "tour"
    done = subprocess.run(
        [sys.executable, str(TOUR), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "epoch 20: loss" in done.stdout  # the script's output, streamed by the tour
    assert "Status: Completed" in done.stdout

    ws = Workspace.from_config(folder)
    assert ws.folder == (folder / ".modelyard" / "demo").resolve()
    ws.get_default_datastore().download(tmp_path / "uploaded", prefix="hello/", show_progress=False)
    uploaded = sorted(
        p.relative_to(tmp_path / "uploaded") for p in (tmp_path / "uploaded").rglob("*.csv")
    )
    assert uploaded == [Path("hello/holdout/points.csv"), Path("hello/points.csv")]

    runs = list(Run.list(Experiment(ws, "hello")))
    assert len(runs) == 2
    [trained] = [run for run in runs if "holdout_loss" in run.get_metrics()]
    [interactive] = [run for run in runs if run is not trained]
    assert trained.get_status() == "Completed"
    metrics = trained.get_metrics()
    assert len(metrics["loss"]) == 20
    assert metrics["loss"][-1] < metrics["loss"][0]
    assert metrics["holdout_loss"] < 0.05
    assert f"holdout loss: {metrics['holdout_loss']:.4f}" in done.stdout

    model = Model(ws, "hello-line")
    assert model.version == 1 and model.run_id == trained.id
    downloaded = json.loads((folder / "model" / "model" / "line.json").read_text())
    assert 1.5 < downloaded["w"] < 2.5 and 0.8 < downloaded["b"] < 1.4  # the data's y = 2x + 1
    assert f"y = {downloaded['w']:.2f} * x + {downloaded['b']:.2f}" in done.stdout

    assert interactive.get_status() == "Completed"
    assert interactive.get_metrics()["loss"] == 0.3
    assert "outputs/notes.txt" in interactive.get_file_names()
