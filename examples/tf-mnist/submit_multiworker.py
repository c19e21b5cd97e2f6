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

import sys
from pathlib import Path

from submit import arguments, register_and_check, workspace_with_mnist

from modelyard import Experiment
from modelyard.distributed import TensorflowConfiguration
from modelyard.train import TensorFlow

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = arguments(__doc__.splitlines()[0], epochs=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    ws, ds, data_folder = workspace_with_mnist(args)
    exp = Experiment(workspace=ws, name="tf-mnist-multiworker")

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
    return register_and_check(
        run, "tf-dnn-mnist-multiworker", data_folder, tags={"workers": str(args.workers)}
    )


if __name__ == "__main__":
    sys.exit(main())
