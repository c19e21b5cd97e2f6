"""The known objective of bench_hyperdrive.py: a training script in miniature.

``score(x, y) = 100 - (x - 1.5)**2 - (y + 2)**2`` on ``[-5, 5]**2``: one maximum, 100 at
``(1.5, -2)``, away from the centre of the box and from any round grid point, so that no
method finds it by starting in the middle. Its level sets are circles, so "within 1% of the
optimum" (a score of at least 99) is a disc of radius 1, about 3.1% of the box: a random
search needs 32 children on average (1 / 0.031), a model of the results fewer.

Like a training script, it logs ``score`` once per epoch (``EPOCHS``, ``EPOCH_SECONDS`` of
sleep each), rising to the final value: epoch ``e`` logs ``score - 2 * (EPOCHS - e)``, the same
curve shifted for every configuration, so an early-termination policy that compares children
at the same epoch ranks them as their final values do. Each value is logged to the run
(``run.log``; outside a run, modelyard's offline run prints it) and printed as
``epoch <e> score <value>``, the line the Optuna and Ray Tune sides of the benchmark read. The
run is flushed after each epoch, as a script whose epochs are shorter than the metric buffer's
hand-over should, for an early-termination policy to see them as they come.

Run: python benchmarks/hyperdrive_objective.py --x 1.5 --y -2
"""

from __future__ import annotations

import argparse
import time

from modelyard import Run

OPTIMUM = 100.0
ARGMAX = (1.5, -2.0)
LOW, HIGH = -5.0, 5.0
EPOCHS = 5
# Long enough for a policy's stop after the first epochs to cut a child short (it takes effect
# up to about 0.7 s after the metric: bench_hyperdrive.DELAY_EVALUATION), short enough for
# the benchmark's 450 children to run in minutes.
EPOCH_SECONDS = 0.2
EPOCH_STEP = 2.0


def final_score(x: float, y: float) -> float:
    """The score the script ends with for ``(x, y)``."""
    return OPTIMUM - (x - ARGMAX[0]) ** 2 - (y - ARGMAX[1]) ** 2


def epoch_score(x: float, y: float, epoch: int) -> float:
    """The score logged at ``epoch`` (1 to ``EPOCHS``)."""
    return final_score(x, y) - EPOCH_STEP * (EPOCHS - epoch)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--x", type=float, required=True)
    parser.add_argument("--y", type=float, required=True)
    options = parser.parse_args()
    run = Run.get_context()
    for epoch in range(1, EPOCHS + 1):
        time.sleep(EPOCH_SECONDS)
        value = epoch_score(options.x, options.y, epoch)
        run.log("score", value)
        # Stored now, not at the buffer's next hand-over (up to 2 s later: metrics.py's
        # FLUSH_SECONDS, longer than this whole script), so a policy sees each epoch.
        run.flush()
        print(f"epoch {epoch} score {value!r}", flush=True)


if __name__ == "__main__":
    main()
