"""The MNIST network of ``tf_mnist.py`` trained with TensorFlow 2's ``ParameterServerStrategy``
(asynchronous: parameter servers hold the variables, workers run the steps the chief
schedules).

Submitted with ``TensorflowConfiguration(worker_count=2, parameter_server_count=1,
chief_count=1)`` (see ``submit_ps.py``), every process runs this script with its own
``TF_CONFIG``: the workers and the parameter server start a TensorFlow server and serve until
modelyard stops them, once the chief (the coordinator, which runs ``model.fit``) has finished.

The chief then evaluates the trained weights on the test set in a plain model, logs
``final_acc`` and saves that model to ``./outputs/model``. ``model.fit`` under this strategy
needs tf-keras (``pip install tf-keras``), selected below with ``TF_USE_LEGACY_KERAS=1``
before TensorFlow is imported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from tf_mnist import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    MODEL_PATH,
    build_model,
    find_idx_files,
    read_idx,
)

from modelyard import Run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-folder", required=True, help="folder with the four MNIST files")
    parser.add_argument("--batch-size", type=int, default=50, help="mini-batch size per step")
    parser.add_argument("--first-layer-neurons", type=int, default=300)
    parser.add_argument("--second-layer-neurons", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=0.001)
    parser.add_argument("--epochs", type=int, default=5)
    return parser.parse_args(argv)


def serve(task_type: str, task_index: int) -> None:
    """A worker or parameter server: serve the chief until stopped."""
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(
        resolver.cluster_spec(),
        job_name=task_type,
        task_index=task_index,
        protocol=resolver.rpc_layer or "grpc",
        start=True,
    )
    print(f"{task_type} {task_index} serving at {server.target}", flush=True)
    server.join()


def load(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 (4x smaller than floats: the dataset function carries them to the
    workers) and labels."""
    paths = find_idx_files(folder)
    images = read_idx(paths[f"{split}_images"], IMAGES_MAGIC).reshape(-1, 784)
    labels = read_idx(paths[f"{split}_labels"], LABELS_MAGIC).astype(np.int64)
    return images, labels


class LogTrainingAccuracy(tf.keras.callbacks.Callback):
    def __init__(self, run: Any) -> None:
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        accuracy = float((logs or {})["accuracy"])
        self.run.log("training_acc", accuracy)
        print(f"epoch {epoch + 1}: training_acc {accuracy:.4f}", flush=True)


def train(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    strategy = tf.distribute.ParameterServerStrategy(resolver)
    x_train, y_train = load(Path(args.data_folder), "train")
    x_test, y_test = load(Path(args.data_folder), "test")

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        # Runs on each worker: its own shuffle of the training set, repeated for ever.
        dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(x_train))
        dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y))
        batch = context.get_per_replica_batch_size(args.batch_size)
        return dataset.repeat().batch(batch).prefetch(2)

    with strategy.scope():
        model = build_model(args.first_layer_neurons, args.second_layer_neurons, args.learning_rate)
    run: Any = Run.get_context()
    model.fit(
        tf.keras.utils.experimental.DatasetCreator(dataset_fn),
        epochs=args.epochs,
        steps_per_epoch=len(x_train) // args.batch_size,
        callbacks=[LogTrainingAccuracy(run)],
        verbose=0,
    )

    # The trained weights in a model of this process alone, to evaluate and save.
    plain = build_model(args.first_layer_neurons, args.second_layer_neurons, args.learning_rate)
    plain.set_weights(model.get_weights())
    _, final_acc = plain.evaluate(x_test / np.float32(255.0), y_test, batch_size=1000, verbose=0)
    run.log("final_acc", float(final_acc))
    MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
    plain.save(MODEL_PATH)
    print(f"model saved to {MODEL_PATH}", flush=True)
    print(
        f"final_acc: {final_acc:.4f}, the accuracy on the {len(y_test):,} test images "
        f"(t10k-* files, not trained on); {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task") or {}
    if task.get("type") in ("worker", "ps"):
        serve(task["type"], int(task["index"]))
        return 0
    if task.get("type") != "chief":
        raise SystemExit(
            "tf_mnist_ps.py: error: TF_CONFIG must name a cluster with a chief, workers and "
            "parameter servers; submit it with TensorflowConfiguration(worker_count=2, "
            "parameter_server_count=1, chief_count=1)"
        )
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
