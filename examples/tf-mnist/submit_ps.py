"""The MNIST example trained with TensorFlow 2's ``ParameterServerStrategy`` on this machine: a
chief, two workers and one parameter server. Upload MNIST, submit, stream the chief's output,
register the model, check it::

    python examples/tf-mnist/submit_ps.py
    python examples/tf-mnist/submit_ps.py --epochs 3 --data ~/datasets/mnist

modelyard starts the four processes, each with its ``TF_CONFIG``; the run follows the chief,
and once the chief has finished it stops the workers and the parameter server, which only
serve. Each process's output goes to ``user_logs/std_log_process_NN.txt`` (00 is the chief).
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
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--workspace", default=".modelyard/mnist-demo", help="the embedded workspace's folder"
    )
    args = parser.parse_args()

    Workspace.create("mnist-demo", location=args.workspace).write_config()
    ws = Workspace.from_config()
    exp = Experiment(workspace=ws, name="tf-mnist-ps")
    ds = ws.get_default_datastore()
    data_folder, _source = find_mnist(args.data)
    ds.upload(src_dir=str(data_folder), target_path="mnist", overwrite=True, show_progress=True)

    est = TensorFlow(
        source_directory=str(HERE),
        entry_script="tf_mnist_ps.py",
        script_params={
            "--data-folder": ds.path("mnist").as_mount(),
            "--batch-size": 50,
            "--epochs": args.epochs,
        },
        compute_target="local",
        # Keras 3 has no ParameterServerStrategy support in model.fit; tf-keras has.
        pip_packages=["tf-keras"],
        distributed_training=TensorflowConfiguration(
            worker_count=2, parameter_server_count=1, chief_count=1
        ),
    )
    run = exp.submit(est)
    run.wait_for_completion(show_output=True)
    metrics = run.get_metrics()
    print(
        f"metrics: final_acc={metrics['final_acc']:.4f}, "
        f"training_acc per epoch: {len(metrics['training_acc'])} points"
    )
    model = run.register_model(
        model_name="tf-dnn-mnist-ps",
        model_path="outputs/model",
        tags={"final_acc": f"{metrics['final_acc']:.4f}"},
    )
    print(f"registered {model.id} from run {model.run_id}")
    local_model = Path("model")
    for f in run.get_file_names():
        if f.startswith("outputs/model"):
            run.download_file(name=f, output_file_path=str(local_model / f.split("/")[-1]))
    return check_prediction(local_model / "model.keras", data_folder)


if __name__ == "__main__":
    sys.exit(main())
