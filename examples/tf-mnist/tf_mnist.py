"""Train a 784-300-100-10 dense network on MNIST with TensorFlow 2, as in Azure ML v1's tf-mnist.

Submitted with modelyard (``exp.submit(TensorFlow(..., entry_script="tf_mnist.py"))``) it logs
to its run; started by hand it logs to an offline run that prints each metric::

    python tf_mnist.py --data-folder ../../shared/data/mnist --epochs 3

It reads the four MNIST IDX files (gzipped or not) from anywhere below ``--data-folder``, logs
``training_acc`` and ``validation_acc`` each epoch and ``final_acc`` at the end, saves the model
in ``./outputs/model`` and TensorBoard event files in ``./logs``, the two folders a modelyard run
collects. Only numpy, TensorFlow and modelyard are needed.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any

# TensorFlow's C++ start-up notices (CPU instructions) are INFO lines: hidden unless the user
# asks for them (TF_CPP_MIN_LOG_LEVEL=0). It must be set before TensorFlow loads. (TensorFlow
# 2.21 prints its oneDNN notice whatever this says: it logs it before reading it.)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from modelyard import Run

# The four standard names; each may also end in .gz.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IMAGES_MAGIC = 2051  # IDX: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # IDX: unsigned bytes, 1 dimension
MODEL_PATH = Path("outputs") / "model" / "model.keras"
LOG_DIR = "./logs"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-folder", required=True, help="folder with the four MNIST files anywhere below it"
    )
    parser.add_argument("--batch-size", type=int, default=50, help="mini-batch size")
    parser.add_argument("--first-layer-neurons", type=int, default=300, help="first hidden layer")
    parser.add_argument("--second-layer-neurons", type=int, default=100, help="second hidden layer")
    parser.add_argument("--learning-rate", type=float, default=0.001, help="Adam's learning rate")
    parser.add_argument("--epochs", type=int, default=20, help="passes over the training set")
    return parser.parse_args(argv)


def find_idx_files(data_folder: Path) -> dict[str, Path]:
    """The path of each of the four files, searched for anywhere below ``data_folder``.

    A plain file wins over its ``.gz`` twin, and a shallower one over a deeper one, so the
    choice does not depend on the order the filesystem lists folders in.
    """
    if not data_folder.is_dir():
        raise SystemExit(f"tf_mnist.py: error: --data-folder {str(data_folder)!r} is not a folder")
    wanted = {name: key for key, name in IDX_FILES.items()}
    found: dict[str, tuple[tuple[int, int, str], Path]] = {}
    searched = 0
    # followlinks: a mounted datastore may reach its files through links.
    for folder, subfolders, names in os.walk(data_folder, followlinks=True):
        subfolders.sort()
        searched += 1
        depth = Path(folder).relative_to(data_folder).parts
        for name in names:
            plain = name.removesuffix(".gz")
            if plain in wanted:
                rank = (len(depth), int(name.endswith(".gz")), folder)
                key = wanted[plain]
                if key not in found or rank < found[key][0]:
                    found[key] = (rank, Path(folder) / name)
    missing = [name for key, name in IDX_FILES.items() if key not in found]
    if missing:
        raise SystemExit(
            f"tf_mnist.py: error: {', '.join(n + '[.gz]' for n in missing)} not found anywhere "
            f"below {str(data_folder)!r} (searched {searched} folders). --data-folder must hold "
            "the four MNIST IDX files: train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, gzipped or not."
        )
    return {key: path for key, (_, path) in found.items()}


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file as a uint8 array: (n, rows, cols) for images, (n,) for labels."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # gzip's magic, whatever the file's name says
        data = gzip.decompress(data)
    dims = 3 if magic == IMAGES_MAGIC else 1
    header_size = 4 + 4 * dims
    if len(data) < header_size:
        raise SystemExit(f"tf_mnist.py: error: {path} is too short to be an IDX file")
    header = np.frombuffer(data[:header_size], dtype=">u4")
    if int(header[0]) != magic:
        kind = "images" if magic == IMAGES_MAGIC else "labels"
        raise SystemExit(
            f"tf_mnist.py: error: {path} starts with magic number {int(header[0])}, not {magic}: "
            f"it is not an MNIST {kind} file"
        )
    shape = tuple(int(n) for n in header[1:])
    if len(data) - header_size != int(np.prod(shape)):
        raise SystemExit(
            f"tf_mnist.py: error: {path} announces {shape[0]:,} items of shape {shape[1:]} but "
            f"holds {len(data) - header_size:,} bytes of data: the file is truncated or corrupt"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def load_mnist(data_folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test images (flattened, scaled to 0..1) and labels, checked to agree."""
    return (*load_split(data_folder, "train"), *load_split(data_folder, "test"))


def load_split(data_folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split's images (flattened, scaled to 0..1) and labels: ``train`` or ``test``."""
    paths = find_idx_files(data_folder)
    images = read_idx(paths[f"{split}_images"], IMAGES_MAGIC)
    labels = read_idx(paths[f"{split}_labels"], LABELS_MAGIC)
    if images.shape[0] != labels.shape[0]:
        raise SystemExit(
            f"tf_mnist.py: error: {paths[f'{split}_images']} holds {images.shape[0]:,} images "
            f"but {paths[f'{split}_labels']} holds {labels.shape[0]:,} labels"
        )
    if images.shape[1:] != (28, 28) or labels.max(initial=0) > 9:
        raise SystemExit(
            f"tf_mnist.py: error: the {split} files are not MNIST (28x28 images, labels 0-9)"
        )
    print(f"{split}: {images.shape[0]:,} images from {paths[f'{split}_images']}", flush=True)
    return images.reshape(-1, 784).astype(np.float32) / 255.0, labels.astype(np.int64)


def build_model(first: int, second: int, learning_rate: float) -> tf.keras.Model:
    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(784,)),
            tf.keras.layers.Dense(first, activation="relu", name="h1"),
            tf.keras.layers.Dense(second, activation="relu", name="h2"),
            # Logits: the loss applies the softmax, which is more stable than a softmax layer.
            tf.keras.layers.Dense(10, name="logits"),
        ]
    )
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


class LogToRun(tf.keras.callbacks.Callback):
    """Logs each epoch's training and validation accuracy to the modelyard run."""

    def __init__(self, run: Any) -> None:
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        training_acc = float(logs["accuracy"])
        validation_acc = float(logs["val_accuracy"])
        self.run.log("training_acc", training_acc)
        self.run.log("validation_acc", validation_acc)
        print(
            f"epoch {epoch + 1}: training_acc {training_acc:.4f}, "
            f"validation_acc {validation_acc:.4f}",
            flush=True,
        )


def tensorboard_callbacks() -> list[tf.keras.callbacks.Callback]:
    """The TensorBoard callback writing to ./logs, when TensorBoard is installed.

    tensorflow-cpu 2.21 no longer depends on the tensorboard package, and without it the
    callback fails in the first epoch; training goes on without event files then, and says so.
    """
    if importlib.util.find_spec("tensorboard") is None:
        print(
            "warning: the tensorboard package is not installed, so no TensorBoard events are "
            f"written to {LOG_DIR}; pip install tensorboard to get them",
            file=sys.stderr,
            flush=True,
        )
        return []
    return [tf.keras.callbacks.TensorBoard(log_dir=LOG_DIR)]


def log_accuracy_plot(run: Any, history: dict[str, list[float]]) -> None:
    """Log the accuracy curves as an image of the run, when matplotlib is installed."""
    if importlib.util.find_spec("matplotlib") is None:
        print("matplotlib is not installed: no accuracy plot", flush=True)
        return
    # Imported here: matplotlib is optional, and accuracy_plot needs it.
    from accuracy_plot import accuracy_figure

    run.log_image("accuracy", plot=accuracy_figure(history))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    run = Run.get_context()
    print(f"TensorFlow {tf.__version__}; arguments: {vars(args)}", flush=True)

    x_train, y_train, x_test, y_test = load_mnist(Path(args.data_folder))
    model = build_model(args.first_layer_neurons, args.second_layer_neurons, args.learning_rate)
    history = model.fit(
        x_train,
        y_train,
        batch_size=args.batch_size,
        epochs=args.epochs,
        # The test set is the validation set, as in the v1 example: validation_acc is the
        # accuracy a user compares across runs.
        validation_data=(x_test, y_test),
        callbacks=[LogToRun(run), *tensorboard_callbacks()],
        verbose=2,  # one line per epoch: progress bars would flood the run's log file
    )
    # final_acc: the accuracy on the whole test split (t10k-* files), images never trained on.
    _, final_acc = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    run.log("final_acc", float(final_acc))
    log_accuracy_plot(run, history.history)

    # The native .keras format (one zip file) loads back with tf.keras.models.load_model both
    # in Keras 3 (TensorFlow's default since 2.16) and in tf-keras (TF_USE_LEGACY_KERAS=1);
    # Keras 3 refuses to save a SavedModel folder and loads one only as an inference layer.
    MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
    model.save(MODEL_PATH)
    print(f"model saved to {MODEL_PATH}", flush=True)
    print(
        f"final_acc: {final_acc:.4f}, the accuracy on the {len(y_test):,} test images "
        f"(t10k-* files, not trained on); {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
