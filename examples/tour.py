"""The README's short tour, end to end, on an embedded workspace of its own.

    python examples/tour.py           # in a new temporary folder, removed at the end
    python examples/tour.py ./tour    # in ./tour (made if missing, kept), to look around after

It works in that folder: ``./hello`` is a copy of ``examples/hello/`` (a training script and
its data), the workspace goes to ``./.modelyard/demo``, and the run trains on this machine's
processes in a few seconds. The README's Python snippets are the regions marked
``# [readme: NAME]`` below, word for word (``tests/test_docs.py`` compares them).
"""

from __future__ import annotations

# [readme: imports]
import json
from pathlib import Path

from modelyard import Experiment, Workspace
from modelyard.train import Estimator

# [/readme]
# isort: split
import os
import shutil
import sys
import tempfile

from modelyard.compute.local import stop_agent

HELLO = Path(__file__).resolve().parent / "hello"


def tour() -> None:
    """The tour's steps, in the current folder, which holds ``./hello``."""
    # [readme: workspace]
    ws = Workspace.create("demo", exist_ok=True)  # ./.modelyard/demo: modelyard.db, artifacts, ...
    ws.write_config()  # ./.modelyard/config.json
    ws = Workspace.from_config()  # what a notebook does: finds config.json upwards
    # [/readme]

    # [readme: upload]
    ds = ws.get_default_datastore()
    ds.upload(src_dir="./hello/data", target_path="hello", overwrite=True, show_progress=True)
    # [/readme]

    # [readme: submit]
    exp = Experiment(workspace=ws, name="hello")
    est = Estimator(
        source_directory="./hello",
        entry_script="train.py",
        script_params={"--data-folder": ds.path("hello").as_mount(), "--epochs": 20},
        compute_target="local",
    )
    run = exp.submit(est)  # snapshots the folder, returns at once (Queued)
    run.wait_for_completion(show_output=True)  # streams the script's output live
    metrics = run.get_metrics()  # {'loss': [0.274, 0.120, ...], 'holdout_loss': 0.0081}
    print(f"holdout loss: {metrics['holdout_loss']:.4f}")
    # [/readme]

    # [readme: model]
    model = run.register_model(model_name="hello-line", model_path="outputs/model")
    path = model.download(target_dir="./model", exist_ok=True)  # as in v1: ./model/model
    line = json.loads(Path(path, "line.json").read_text())
    print(f"y = {line['w']:.2f} * x + {line['b']:.2f}")
    # [/readme]

    # [readme: interactive]
    Path("notes.txt").write_text("a learning rate of 0.5 converges in 20 epochs\n")
    with exp.start_logging() as run:
        run.log("loss", 0.3)
        run.log_row("roc", fpr=0.1, tpr=0.8)
        run.upload_file("outputs/notes.txt", "notes.txt")
    # [/readme]

    # The local compute agent would wait 10 minutes for more runs; the tour has no more.
    stop_agent(ws.folder)


def run_in(folder: Path) -> None:
    """Copy ``examples/hello/`` into ``folder`` and run the tour there."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(HELLO, folder / "hello", dirs_exist_ok=True)
    previous = Path.cwd()
    os.chdir(folder)
    try:
        tour()
    finally:
        os.chdir(previous)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print("usage:\n" + __doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    if argv:
        run_in(Path(argv[0]))
    else:
        with tempfile.TemporaryDirectory(prefix="modelyard-tour-") as folder:
            run_in(Path(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
