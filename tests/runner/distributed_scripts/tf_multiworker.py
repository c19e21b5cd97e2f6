"""TensorFlow MultiWorkerMirroredStrategy with Keras model.fit (tf-keras); each worker writes
the checksum of its final weights."""

import hashlib
import json
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # Keras 3 cannot fit under this strategy
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

from modelyard import Run

task = json.loads(os.environ["TF_CONFIG"])["task"]
strategy = tf.distribute.MultiWorkerMirroredStrategy()
rng = np.random.default_rng(0)
x = rng.normal(size=(128, 8)).astype("float32")
y = (x.sum(axis=1) > 0).astype("int64")
with strategy.scope():
    tf.keras.utils.set_random_seed(task["index"])  # different start: the strategy syncs it
    model = tf.keras.Sequential(
        [tf.keras.layers.Dense(8, activation="relu"), tf.keras.layers.Dense(2)]
    )
    model.compile(
        optimizer="sgd", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
history = model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(32), epochs=2, verbose=0)
digest = hashlib.sha256(b"".join(w.numpy().tobytes() for w in model.weights)).hexdigest()[:16]
os.makedirs("outputs", exist_ok=True)
with open(f"outputs/worker_{task['index']}.txt", "w") as f:
    f.write(f"{strategy.num_replicas_in_sync} {digest}")
Run.get_context().log("loss", float(history.history["loss"][-1]))
print(f"worker {task['index']}: {strategy.num_replicas_in_sync} replicas, weights {digest}")
