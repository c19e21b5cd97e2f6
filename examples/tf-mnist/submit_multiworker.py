"""The MNIST example trained by two workers at once (``MultiWorkerMirroredStrategy``), on this
machine: upload MNIST, submit, stream worker 0's output, register the model, check it.

The walkthrough of ``submit.py`` with one change: the estimator asks for a TensorFlow cluster of
two workers, and modelyard starts both, each with its ``TF_CONFIG``::

    python examples/tf-mnist/submit_multiworker.py
    python examples/tf-mnist/submit_multiworker.py --epochs 3 --data ~/datasets/mnist

Each worker's output goes to its own log, ``user_logs/std_log_process_NN.txt``; worker 0 (the
chief) logs the metrics and saves the model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnist_data import find_mnist
from submit import check_prediction

from modelyard import Experiment, Workspace
from modelyard.distributed import TensorflowConfiguration
from modelyard.train import TensorFlow

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a folder holding the four MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--workspace", default=".modelyard/mnist-demo", help="the embedded workspace's folder"
    )
    args = parser.parse_args()

    Workspace.create("mnist-demo", location=args.workspace).write_config()
    ws = Workspace.from_config()
    exp = Experiment(workspace=ws, name="tf-mnist-multiworker")
    ds = ws.get_default_datastore()
    data_folder, _source = find_mnist(args.data)
    ds.upload(src_dir=str(data_folder), target_path="mnist", overwrite=True, show_progress=True)

    est = TensorFlow(
        source_directory=str(HERE),
        entry_script="tf_mnist_multiworker.py",
        script_params={
            "--data-folder": ds.path("mnist").as_mount(),
            "--batch-size": 50,
            "--epochs": args.epochs,
        },
        compute_target="local",
        # Keras 3 cannot fit under MultiWorkerMirroredStrategy; tf-keras can.
        pip_packages=["tf-keras"],
        distributed_training=TensorflowConfiguration(
            worker_count=args.workers, parameter_server_count=0
        ),
    )
    run = exp.submit(est)
    run.wait_for_completion(show_output=True)
    metrics = run.get_metrics()
    print(
        f"metrics: final_acc={metrics['final_acc']:.4f}, "
        f"validation_acc per epoch: {len(metrics['validation_acc'])} points"
    )
    model = run.register_model(
        model_name="tf-dnn-mnist-multiworker",
        model_path="outputs/model",
        tags={"final_acc": f"{metrics['final_acc']:.4f}", "workers": str(args.workers)},
    )
    print(f"registered {model.id} from run {model.run_id}")
    local_model = Path("model")
    for f in run.get_file_names():
        if f.startswith("outputs/model"):
            run.download_file(name=f, output_file_path=str(local_model / f.split("/")[-1]))
    return check_prediction(local_model / "model.keras", data_folder)


if __name__ == "__main__":
    sys.exit(main())
