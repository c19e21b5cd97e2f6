"""A learner whose --rate says how fast it learns: accuracy = 1 - exp(-rate * epoch), logged
each epoch. A rate of 1 is near 0.9 by epoch 2; a rate of 0.01 is still near 0.02."""

import argparse
import math
import time

from modelyard import Run

parser = argparse.ArgumentParser()
parser.add_argument("--rate", type=float, required=True)
parser.add_argument("--epochs", type=int, default=12)
parser.add_argument("--sleep", type=float, default=0.5)
args = parser.parse_args()

run = Run.get_context()
for epoch in range(1, args.epochs + 1):
    run.log("accuracy", 1 - math.exp(-args.rate * epoch))
    time.sleep(args.sleep)
