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

import sys
from pathlib import Path

from submit import arguments, register_and_check, workspace_with_mnist

from modelyard import Experiment
from modelyard.distributed import TensorflowConfiguration
from modelyard.train import TensorFlow

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = arguments(__doc__.splitlines()[0], epochs=5)
    args = parser.parse_args()
    ws, ds, data_folder = workspace_with_mnist(args)
    exp = Experiment(workspace=ws, name="tf-mnist-ps")

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
    return register_and_check(run, "tf-dnn-mnist-ps", data_folder)


if __name__ == "__main__":
    sys.exit(main())
