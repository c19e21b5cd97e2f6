"""A known objective: score = -((x - 1)^2 + (y + 2)^2), best 0 at x=1, y=-2, logged once per
epoch as it approaches that value (each epoch halves the distance left)."""

import argparse
import time

from modelyard import Run

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
parser.add_argument("--y", type=float, required=True)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--sleep", type=float, default=0.0)
args = parser.parse_args()

run = Run.get_context()
final = -((args.x - 1) ** 2 + (args.y + 2) ** 2)
for epoch in range(1, args.epochs + 1):
    run.log("score", final - 2.0 ** (args.epochs - epoch) + 1.0)
    time.sleep(args.sleep)
print(f"x={args.x} y={args.y} score={final}", flush=True)
