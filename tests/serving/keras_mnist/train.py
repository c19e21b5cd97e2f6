"""Train a small Keras network on 1,000 MNIST images and save it under ./outputs/model.

Also writes ./outputs/predictions.json: the network's own digits for the first 10 test
images, which the deployed service must give back.
"""

import argparse
import gzip
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

from modelyard import Run


def images(path: Path, count: int) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    return np.frombuffer(data, np.uint8, offset=16)[: count * 784].reshape(count, 784) / 255.0


def labels(path: Path, count: int) -> np.ndarray:
    return np.frombuffer(gzip.decompress(path.read_bytes()), np.uint8, offset=8)[:count]


parser = argparse.ArgumentParser()
parser.add_argument("--data-folder", type=Path, required=True)
args = parser.parse_args()
x = images(args.data_folder / "train-images-idx3-ubyte.gz", 1000)
y = labels(args.data_folder / "train-labels-idx1-ubyte.gz", 1000)
test = images(args.data_folder / "t10k-images-idx3-ubyte.gz", 10)
tf.keras.utils.set_random_seed(0)
model = tf.keras.Sequential(
    [
        tf.keras.Input((784,)),
        tf.keras.layers.Dense(64, activation="relu"),
        tf.keras.layers.Dense(10),
    ]
)
model.compile(
    optimizer="adam",
    loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
history = model.fit(x, y, epochs=5, batch_size=50, verbose=0)
Run.get_context().log("train_acc", float(history.history["accuracy"][-1]))
os.makedirs("outputs/model", exist_ok=True)
model.save("outputs/model/mnist.keras")
digits = model.predict(test, verbose=0).argmax(axis=1).tolist()
Path("outputs/predictions.json").write_text(json.dumps(digits))
