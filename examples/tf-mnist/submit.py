"""The user's walkthrough end to end, on this machine: upload MNIST, train, register, check.

This is DESIGN.md's v1 notebook with only the imports changed: it finds the compute cluster
``cpucluster``, or creates it (a Ray cluster on this machine whose autoscaler starts a worker
node for the run and takes it away when idle), trains on it, and deletes the cluster at the end
unless ``--keep-cluster``. ``--compute local`` runs on this machine's processes instead::

    python examples/tf-mnist/submit.py                 # what `make demo` runs
    python examples/tf-mnist/submit.py --epochs 3 --data ~/datasets/mnist --compute local
    python examples/tf-mnist/submit.py --database-url postgresql+psycopg://me@db/team \
        --storage-url s3://models/team --storage-endpoint http://minio:9000

The last puts the workspace's metadata in PostgreSQL and its files (run files, snapshots,
logs, models) in an S3-compatible store, with the key and secret of ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``, kept in the private ``workspace.json`` (the local compute agent does
not inherit a client's AWS variables).

MNIST comes from ``--data``, else ``$MNIST_DIR``, else a download of the full set (cached),
else the 10,000-image sample in ``shared/data/mnist``; one line says which it used, and why.
At the end the registered model is downloaded as v1 does, keeping its folder's name
(``./model/model/model.keras``), and predicts the test split: the images ``final_acc`` was
measured on.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mnist_data import find_mnist

from modelyard import Datastore, Experiment, Run, Workspace
from modelyard.compute import AmlCompute, ComputeTarget, ComputeTargetException
from modelyard.store.files import s3_storage_options
from modelyard.train import TensorFlow

HERE = Path(__file__).resolve().parent


def arguments(description: str, epochs: int) -> argparse.ArgumentParser:
    """The options every MNIST submit script takes; a script may add its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", help="a folder holding the four MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument(
        "--workspace", default=".modelyard/mnist-demo", help="the embedded workspace's folder"
    )
    parser.add_argument("--database-url", help="metadata in this PostgreSQL database")
    parser.add_argument("--storage-url", help="files in this object store (s3://bucket/prefix)")
    parser.add_argument("--storage-endpoint", help="the S3-compatible endpoint's URL")
    return parser


def cluster(ws: Workspace) -> ComputeTarget:
    """The v1 notebooks' find-or-create block, as written (imports changed); a worker node
    of 2 CPUs, of which the cluster has at most 2."""
    try:
        compute_target = ComputeTarget(workspace=ws, name="cpucluster")
    except ComputeTargetException:
        compute_config = AmlCompute.provisioning_configuration(
            vm_size="cpu=2,memory=7GB,gpu=0", max_nodes=2, idle_seconds_before_scaledown=120
        )
        compute_target = ComputeTarget.create(ws, "cpucluster", compute_config)
        compute_target.wait_for_completion(
            show_output=True, min_node_count=None, timeout_in_minutes=20
        )
    return compute_target


def workspace_with_mnist(args: argparse.Namespace) -> tuple[Workspace, Datastore, Path]:
    """The walkthrough's first steps: a workspace found from its config, MNIST uploaded to its
    default datastore under ``mnist/``. Returns the workspace, the datastore and the local
    MNIST folder."""
    # Once per project: a workspace and the config.json that notebooks find.
    Workspace.create(
        "mnist-demo",
        exist_ok=True,
        folder=args.workspace,
        database_url=args.database_url,
        storage_url=args.storage_url,
        storage_options=s3_storage_options(args.storage_endpoint) if args.storage_url else None,
    ).write_config()

    ws = Workspace.from_config()
    ds = ws.get_default_datastore()
    data_folder, _source = find_mnist(args.data)
    ds.upload(src_dir=str(data_folder), target_path="mnist", overwrite=True, show_progress=True)
    return ws, ds, data_folder


def register_and_check(
    run: Run, model_name: str, data_folder: Path, tags: dict[str, str] | None = None
) -> int:
    """The walkthrough's last steps: register the run's model, download it, and check what the
    downloaded model predicts. Returns the process's exit code."""
    metrics = run.get_metrics()
    print(
        f"metrics: final_acc={metrics['final_acc']:.4f} (the run's accuracy on the whole test "
        f"split, images it did not train on); training_acc per epoch: "
        f"{len(metrics['training_acc'])} points"
    )
    model = run.register_model(
        model_name=model_name,
        model_path="outputs/model",
        tags={"final_acc": f"{metrics['final_acc']:.4f}", **(tags or {})},
    )
    print(f"registered {model.id} from run {model.run_id}")
    # As in v1, the model keeps its folder's name: outputs/model lands in ./model/model.
    local_model = Path(model.download(target_dir="model", exist_ok=True))
    print(f"model downloaded to {local_model}")
    if "accuracy" in metrics:  # the training curves, logged by the script as an image
        plot = run.download_file(name=metrics["accuracy"], output_file_path="model/accuracy.png")
        print(f"accuracy curves: {plot.resolve()}")
    return check_prediction(local_model / "model.keras", data_folder, metrics["final_acc"])


def main() -> int:
    parser = arguments(__doc__.splitlines()[0], epochs=20)
    parser.add_argument(
        "--compute",
        choices=["cluster", "local"],
        default="cluster",
        help="train on the cluster 'cpucluster' (found or created), or on this machine",
    )
    parser.add_argument(
        "--keep-cluster", action="store_true", help="leave the cluster running at the end"
    )
    args = parser.parse_args()
    ws, ds, data_folder = workspace_with_mnist(args)

    if args.compute == "cluster":
        compute_target = cluster(ws)
    else:
        compute_target = ComputeTarget(workspace=ws, name="local")
    try:
        return train_and_register(args, ws, ds, data_folder, compute_target)
    finally:
        if isinstance(compute_target, AmlCompute) and not args.keep_cluster:
            print("deleting the cluster 'cpucluster' (--keep-cluster leaves it running)")
            compute_target.delete()


def train_and_register(
    args: argparse.Namespace,
    ws: Workspace,
    ds: Datastore,
    data_folder: Path,
    compute_target: ComputeTarget,
) -> int:
    exp = Experiment(workspace=ws, name="tf-mnist")
    est = TensorFlow(
        source_directory=str(HERE),
        entry_script="tf_mnist.py",
        script_params={
            "--data-folder": ds.path("mnist").as_mount(),
            "--batch-size": 50,
            "--epochs": args.epochs,
        },
        compute_target=compute_target,
        use_gpu=False,
    )
    run = exp.submit(est)
    run.wait_for_completion(show_output=True)
    return register_and_check(run, "tf-dnn-mnist", data_folder)


def check_prediction(model_file: Path, data_folder: Path, final_acc: float) -> int:
    """Load the downloaded model and predict the test split, as a user would: the images the
    run's ``final_acc`` was measured on, so the two agree when the download is the run's
    model."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    import numpy as np
    import tensorflow as tf

    sys.path.insert(0, str(HERE))
    from tf_mnist import load_split

    x_test, y_test = load_split(data_folder, "test")
    # compile=False: only predicting; the optimizer's state need not load.
    model = tf.keras.models.load_model(model_file, compile=False)
    predicted = np.argmax(model.predict(x_test, batch_size=1000, verbose=0), axis=1)
    right = int(np.sum(predicted == y_test))
    accuracy = right / len(y_test)
    print(
        f"the downloaded model predicts {right:,} of the {len(y_test):,} test images right "
        f"({accuracy:.2%}): the same images as final_acc ({final_acc:.4f}); "
        f"first image: predicted {predicted[0]}, label {y_test[0]}"
    )
    return 0 if accuracy > 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
