"""Writes TensorBoard scalars to ./logs with tf.summary, as training scripts do.

``loss`` is ``1 / (step + 1)`` and ``accuracy`` is ``step / 8``, for steps 0 to ``--steps`` - 1.
With ``--go-file PATH`` it writes the first ``--first`` steps, flushes, and waits for PATH to
exist before it writes the rest: a run whose points appear while TensorBoard watches it.
"""

import argparse
import os
import sys
import time

import tensorflow as tf

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=5)
parser.add_argument("--first", type=int, default=3)
parser.add_argument("--go-file")
args = parser.parse_args()

writer = tf.summary.create_file_writer("logs")
with writer.as_default():
    for step in range(args.steps):
        if args.go_file and step == args.first:
            writer.flush()
            print(f"wrote steps 0 to {step - 1}; waiting for {args.go_file}", flush=True)
            deadline = time.monotonic() + 300
            while not os.path.exists(args.go_file):
                if time.monotonic() > deadline:
                    sys.exit(f"{args.go_file} did not appear within 300 s")
                time.sleep(0.1)
        tf.summary.scalar("loss", 1 / (step + 1), step=step)
        tf.summary.scalar("accuracy", step / 8, step=step)
writer.close()
print(f"wrote {args.steps} steps", flush=True)
