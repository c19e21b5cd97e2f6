"""The MNIST example through `exp.submit` + `wait_for_completion`, against the same script
run directly with `python`.

Target: ratio of wall times at most 1.05 (medians of 3, in one
run). Both train the example's 784-300-100-10 network for 20 epochs on the MNIST sample.

Run: .venv/bin/python benchmarks/bench_mnist_overhead.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modelyard import Experiment, Workspace
from modelyard.compute.local import stop_agent
from modelyard.train import TensorFlow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "tf-mnist"
REPEATS = 3
EPOCHS = "20"


def main() -> None:
    sys.path.insert(0, str(EXAMPLE))
    from mnist_data import shared_mnist_dir

    data = shared_mnist_dir()
    if data is None:
        sys.exit("no MNIST sample found (shared/data/mnist beside the repository)")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        ws = Workspace.create("bench", folder=Path(tmp) / "ws")
        ds = ws.get_default_datastore()
        ds.upload(str(data), target_path="mnist", overwrite=True, show_progress=False)
        exp = Experiment(ws, "mnist")
        est = TensorFlow(
            source_directory=str(EXAMPLE),
            entry_script="tf_mnist.py",
            script_params={"--data-folder": ds.path("mnist").as_mount(), "--epochs": EPOCHS},
        )
        direct, submitted = [], []
        for i in range(REPEATS):  # interleaved, so drift in the machine's load hits both
            cwd = Path(tmp) / f"direct-{i}"
            cwd.mkdir()
            start = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    str(EXAMPLE / "tf_mnist.py"),
                    "--data-folder",
                    str(data),
                    "--epochs",
                    EPOCHS,
                ],
                cwd=cwd,
                env=env,
                check=True,
                capture_output=True,
            )
            direct.append(time.perf_counter() - start)
            start = time.perf_counter()
            exp.submit(est).wait_for_completion()
            submitted.append(time.perf_counter() - start)
        stop_agent(ws.folder)
    d, s = statistics.median(direct), statistics.median(submitted)
    ratio = s / d
    verdict = "ok" if ratio <= 1.05 else "ABOVE TARGET"
    print(
        f"MNIST example, {EPOCHS} epochs, medians of {REPEATS}: python directly {d:.2f} s, "
        f"exp.submit + wait_for_completion {s:.2f} s -> ratio {ratio:.3f} "
        f"(target <= 1.05: {verdict})"
    )
    print(
        f"  direct: {', '.join(f'{x:.2f}' for x in direct)}; "
        f"submitted: {', '.join(f'{x:.2f}' for x in submitted)}"
    )


if __name__ == "__main__":
    main()
