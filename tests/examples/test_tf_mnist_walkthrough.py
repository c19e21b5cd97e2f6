"""The walkthrough end to end on local compute: upload MNIST, submit the TensorFlow example,
stream it, register the model, download it and check what it predicts."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest

from modelyard import Experiment, Workspace
from modelyard.train import TensorFlow
from tests.examples.test_tf_mnist_script import EXAMPLE, load_mnist_data
from tests.s3 import S3Server, isolated_env

# The demo script trains on a Ray cluster it creates: with the cluster tests' xdist group, so
# two clusters never share the machine's two cores.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]


@pytest.fixture
def sample() -> Path:
    folder = load_mnist_data().shared_mnist_dir()
    if folder is None:
        pytest.skip("no MNIST sample beside the repository (shared/data/mnist)")
    return Path(folder)


def test_tensorflow_mnist_from_submit_to_registered_model(
    workspace: Workspace, sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed (pip install -e '.[tensorflow]')")
    ds = workspace.get_default_datastore()
    ds.upload(src_dir=str(sample), target_path="mnist", overwrite=True, show_progress=False)
    est = TensorFlow(
        source_directory=str(EXAMPLE),
        entry_script="tf_mnist.py",
        script_params={"--data-folder": ds.as_mount(), "--batch-size": 50, "--epochs": 3},
        compute_target="local",
    )
    run = Experiment(workspace, "tf-mnist").submit(est)
    run.wait_for_completion(show_output=True)
    printed = capsys.readouterr().out
    assert "epoch 3: training_acc" in printed  # streamed live from the script
    metrics = run.get_metrics()
    assert len(metrics["training_acc"]) == 3 and len(metrics["validation_acc"]) == 3
    assert metrics["final_acc"] > 0.8
    if importlib.util.find_spec("matplotlib") is not None:
        assert metrics["accuracy"] == "images/accuracy.png"  # the curves, as an image
        with run._backend.open_run_file(run.id, metrics["accuracy"]) as image:
            assert image.read(4) == b"\x89PNG"
    names = run.get_file_names()
    assert "outputs/model/model.keras" in names
    assert any(name.startswith("logs/") for name in names)  # TensorBoard events
    assert "submit.py" not in run.get_properties()["modelyard.script"]

    model = run.register_model(model_name="tf-dnn-mnist", model_path="outputs/model")
    assert model.get_file_names() == ["model/model.keras"]
    local = Path(model.download(tmp_path / "downloaded"))
    # Load and predict in a fresh interpreter, as the user's notebook would.
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, numpy as np, tensorflow as tf; sys.path.insert(0, sys.argv[3]);"
            "from tf_mnist import load_mnist;"
            "_, _, x, y = load_mnist(__import__('pathlib').Path(sys.argv[2]));"
            "m = tf.keras.models.load_model(sys.argv[1], compile=False);"
            "print('ACC', float(np.mean(np.argmax(m.predict(x, verbose=0), 1) == y)))",
            str(local / "model.keras"),
            str(sample),
            str(EXAMPLE),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=True,
    )
    accuracy = float(check.stdout.split("ACC")[1])
    assert accuracy > 0.8


def test_the_demo_script_trains_on_the_cluster_it_creates_and_deletes_it(
    sample: Path, tmp_path: Path
) -> None:
    """`make demo`'s script as it runs there: the v1 find-or-create block makes the cluster
    `cpucluster` (Ray on this machine), the run trains on one of its nodes, and the cluster
    is deleted at the end, leaving no Ray process."""
    if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("ray") is None:
        pytest.skip("TensorFlow and Ray are needed (pip install -e '.[tensorflow,cluster]')")
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE / "submit.py"),
            *("--epochs", "2", "--data", str(sample), "--workspace", str(tmp_path / "ws")),
        ],
        cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Succeeded" in done.stdout and "waiting for 1 node(s)" in done.stdout
    # One line says where MNIST came from: the folder given.
    assert [line for line in done.stdout.splitlines() if line.startswith("MNIST:")] == [
        f"MNIST: {sample} (the folder given)"
    ]
    # The model downloaded as v1 does, keeping its folder's name, and the path said.
    downloaded = tmp_path / "model" / "model"
    assert f"model downloaded to {downloaded}\n" in done.stdout
    assert (downloaded / "model.keras").is_file() and not (
        tmp_path / "model" / "model.keras"
    ).exists()
    # Both accuracies say what they measure: the check predicts final_acc's own images.
    assert "final_acc=" in done.stdout and "on the whole test split" in done.stdout
    assert re.search(
        r"the downloaded model predicts [0-9,]+ of the 2,000 test images right \([0-9.]+%\): "
        r"the same images as final_acc \([0-9.]+\)",
        done.stdout,
    ), done.stdout[-3000:]
    ws = Workspace.from_config(tmp_path)
    (run,) = Experiment(ws, "tf-mnist").get_runs()
    assert run.get_properties()["modelyard.compute"] == "cpucluster"
    admission = run._backend.read_run_file(run.id, "system_logs/admission.txt").decode()
    assert "running on" in admission and "status: Completed" in admission
    assert list(ws.compute_targets) == ["local"]
    # This workspace's cluster only: other test processes run clusters named cpucluster too.
    ours = f"{tmp_path / 'ws'}/compute/clusters/cpucluster/".encode()
    assert not any(
        ours in Path(f"/proc/{pid}/cmdline").read_bytes()
        for pid in os.listdir("/proc")
        if pid.isdigit() and Path(f"/proc/{pid}/cmdline").exists()
    )


def test_the_demo_script_on_postgresql_and_s3(
    sample: Path, tmp_path: Path, postgres_url: str, s3_server: S3Server
) -> None:
    """`make demo`'s script, unchanged but for its options, on a workspace whose metadata is
    in PostgreSQL and whose files are on an S3 endpoint."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed (pip install -e '.[tensorflow]')")
    storage_url, _options = s3_server.new_bucket("mnist-demo")
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE / "submit.py"),
            *("--epochs", "2", "--data", str(sample), "--workspace", str(tmp_path / "ws")),
            *("--database-url", postgres_url, "--storage-url", storage_url),
            *("--storage-endpoint", s3_server.endpoint_url),
        ],
        cwd=tmp_path,
        env={**isolated_env(), "TF_CPP_MIN_LOG_LEVEL": "2"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "the downloaded model predicts" in done.stdout

    ws = Workspace.from_config(tmp_path)
    assert ws.get_details()["database"].startswith("postgresql")
    (run,) = Experiment(ws, "tf-mnist").get_runs()
    assert run.get_status() == "Completed"
    assert ws.models["tf-dnn-mnist"].run_id == run.id
    # The run's files went to the bucket, not to the workspace folder.
    bucket_files = fsspec.filesystem("s3", **s3_server.storage_options).find(storage_url)
    assert any(path.endswith(f"runs/{run.id}/outputs/model/model.keras") for path in bucket_files)
    assert not (tmp_path / "ws" / "artifacts").exists() or not any(
        (tmp_path / "ws" / "artifacts").rglob("model.keras")
    )
