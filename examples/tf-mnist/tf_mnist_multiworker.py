"""The MNIST network of ``tf_mnist.py`` trained by several workers at once, with TensorFlow's
``MultiWorkerMirroredStrategy`` (synchronous data parallelism: every worker holds the whole
model, takes its share of each global batch, and the gradients are all-reduced).

Submitted with ``TensorflowConfiguration(worker_count=2, parameter_server_count=0)`` (see
``submit_multiworker.py``), each worker gets its ``TF_CONFIG`` from modelyard. Started by hand,
one process per worker, with ``TF_CONFIG`` set by you::

    TF_CONFIG='{"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]},
                "task": {"type": "worker", "index": 0}}' \\
        python tf_mnist_multiworker.py --data-folder ../../shared/data/mnist --epochs 3 &
    # ... and the same with "index": 1

Keras 3 cannot run ``model.fit`` under this strategy; tf-keras (``pip install tf-keras``) with
``TF_USE_LEGACY_KERAS=1``, set below before TensorFlow is imported, can. Worker 0, the chief,
logs the metrics, writes TensorBoard events to ``./logs`` and saves the model to
``./outputs/model``; every worker must take part in saving (it is a collective operation), so
the others save to a temporary folder they then delete.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf
from tf_mnist import (
    MODEL_PATH,
    LogToRun,
    build_model,
    load_mnist,
    tensorboard_callbacks,
)

from modelyard import Run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-folder", required=True, help="folder with the four MNIST files")
    parser.add_argument("--batch-size", type=int, default=50, help="mini-batch size per worker")
    parser.add_argument("--first-layer-neurons", type=int, default=300)
    parser.add_argument("--second-layer-neurons", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=0.001)
    parser.add_argument("--epochs", type=int, default=10)
    return parser.parse_args(argv)


def task() -> tuple[str, int]:
    """This process's task in the cluster (a single worker when TF_CONFIG is not set)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    info = config.get("task") or {"type": "worker", "index": 0}
    return str(info["type"]), int(info["index"])


def sharded(dataset: tf.data.Dataset) -> tf.data.Dataset:
    # In-memory data has no files to split: each worker takes its share of every batch.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    task_type, task_index = task()
    is_chief = task_type == "chief" or (task_type == "worker" and task_index == 0)
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    workers = strategy.num_replicas_in_sync
    print(f"{task_type} {task_index}: {workers} workers in sync", flush=True)

    x_train, y_train, x_test, y_test = load_mnist(Path(args.data_folder))
    global_batch = args.batch_size * workers
    train = sharded(
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=1)
        .batch(global_batch)
    )
    test = sharded(tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(1000))
    with strategy.scope():
        model = build_model(args.first_layer_neurons, args.second_layer_neurons, args.learning_rate)

    run: Any = Run.get_context()
    callbacks = [LogToRun(run), *tensorboard_callbacks()] if is_chief else []
    model.fit(train, epochs=args.epochs, validation_data=test, callbacks=callbacks, verbose=2)
    _, final_acc = model.evaluate(test, verbose=0)

    target = MODEL_PATH if is_chief else Path(tempfile.mkdtemp()) / MODEL_PATH.name
    target.parent.mkdir(parents=True, exist_ok=True)
    model.save(target)
    if is_chief:
        run.log("final_acc", float(final_acc))
        print(f"model saved to {target}", flush=True)
    else:
        shutil.rmtree(target.parent)
    print(
        f"final_acc: {final_acc:.4f}, the accuracy on the {len(y_test):,} test images "
        f"(t10k-* files, not trained on); {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
