"""A training script small enough to run in a second: fits a line y = w*x + b to
``points.csv`` of its data folder by gradient descent.

It logs ``loss`` once per epoch and ``holdout_loss`` (on ``holdout/points.csv``) at the end, and
writes the fitted line to ``outputs/model/line.json``. The README's tour (``examples/tour.py``)
and its shell commands submit it; run by hand, it logs to an offline run that prints the points::

    python examples/hello/train.py --epochs 5

The data folder defaults to ``data/`` beside this script, which the run's snapshot holds too.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

# [readme: import]
from modelyard import Run

# [/readme]

Points = list[tuple[float, float]]


def read_points(path: Path) -> Points:
    with path.open(newline="") as f:
        return [(float(row["x"]), float(row["y"])) for row in csv.DictReader(f)]


def mean_squared_error(points: Points, w: float, b: float) -> float:
    return sum((w * x + b - y) ** 2 for x, y in points) / len(points)


def step(points: Points, w: float, b: float, learning_rate: float) -> tuple[float, float]:
    grad_w = sum(2 * (w * x + b - y) * x for x, y in points) / len(points)
    grad_b = sum(2 * (w * x + b - y) for x, y in points) / len(points)
    return w - learning_rate * grad_w, b - learning_rate * grad_b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-folder", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=0.5)
    args = parser.parse_args()
    points = read_points(args.data_folder / "points.csv")
    w, b = 0.0, 0.0

    # [readme: script]
    run = Run.get_context()
    for epoch in range(1, args.epochs + 1):
        w, b = step(points, w, b, args.learning_rate)
        loss = mean_squared_error(points, w, b)
        run.log("loss", loss)  # a memory append; sent in batches
        print(f"epoch {epoch}: loss {loss:.4f}")
    # [/readme]

    holdout = read_points(args.data_folder / "holdout" / "points.csv")
    run.log("holdout_loss", mean_squared_error(holdout, w, b))
    print(f"after {args.epochs} epochs: y = {w:.3f} * x + {b:.3f}")
    model = Path("outputs") / "model"
    model.mkdir(parents=True, exist_ok=True)
    (model / "line.json").write_text(json.dumps({"w": w, "b": b}) + "\n")


if __name__ == "__main__":
    main()
