"""HyperDrive against Optuna alone and Ray Tune's ASHA: children to a near-optimum, and the
scheduling gap between children.

1. **Search**: on the known objective of ``hyperdrive_objective.py`` (a maximum of 100 at
   ``(1.5, -2)`` on ``[-5, 5]**2``, 5 epochs of 0.1 s), the children each method runs until
   one ends with a score within 1% of the optimum, ``score >= 99`` (``|best - 100| <= 0.01 *
   100``), and the wall time until that child ended. Same budget for every method
   (``--max-runs`` children, 40), same concurrency (``--concurrency``, 2: this machine's
   cores), over ``--seeds`` seeds (3); the table gives medians over the seeds and the ratios
   to Optuna and to Ray Tune (above 1: more children, or more time, than the competitor).

   - modelyard: HyperDrive with ``RandomParameterSampling``, ``BayesianParameterSampling``
     (Optuna's TPE inside) and ``BayesianParameterSampling`` with ``BanditPolicy(slack_factor
     =0.1, evaluation_interval=1, delay_evaluation=3)``; each child a local run of the script.
   - Optuna alone: ``TPESampler(seed)``, ``study.optimize(n_jobs=concurrency)``, each trial
     the same script run as a subprocess (its printed epoch lines read back), so that both
     sides pay a Python process start per child.
   - Ray Tune: ``Tuner`` with its random search (``BasicVariantGenerator(random_state=seed,
     max_concurrent=concurrency)``) and ``ASHAScheduler(max_t=5)`` (its defaults otherwise:
     grace period 1, reduction factor 4), ``reuse_actors=True`` (``REUSE_ACTORS``); each trial
     a function trainable that runs the same script as a subprocess and reports each epoch it
     prints, so ASHA can stop it.

   Clocks: from ``submit``, ``study.optimize`` or ``tuner.fit`` being called to the end of
   the first child within 1% (the run records' end time; the trainable's last report). The
   run's position among the children in order of their start is the count. Ray is started,
   and modelyard's local agent too, before the clocks run (both warmed by one unmeasured run).
   A child counts only if it ran all its epochs: a stopped one never logged its final score.

2. **Scheduling overhead**: 50 children of a script that ends at once, one at a time
   (``max_concurrent_runs=1``): the gap from a child's end to the next child's start, from
   the run records' times, median and p90; Ray Tune's from each trial's trainable (started,
   ended), and Optuna alone's (its loop, the floor) for comparison.

Run: .venv/bin/python benchmarks/bench_hyperdrive.py [--quick] [--only search|overhead]
     [--seeds 3] [--max-runs 40] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hyperdrive_objective import EPOCHS, HIGH, LOW, OPTIMUM

TOLERANCE = 0.01 * abs(OPTIMUM)  # within 1% of the optimum: score >= 99
OBJECTIVE = Path(__file__).with_name("hyperdrive_objective.py")
INSTANT = "import sys  # ends at once, whatever its arguments\n"
OVERHEAD_CHILDREN = 50
# Ray Tune at its best for short trials: its default (False) starts a worker process per
# trial, 3 to 5.5 s each on this 2-core machine (9 gaps of the overhead figure, measured once).
REUSE_ACTORS = True
# Ray Tune's progress box and its logger warnings (tensorboardX missing) go, verbose=0 stays.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")


@dataclass(frozen=True)
class Child:
    """One child run or trial: when it started and ended (epoch seconds), its last score,
    and whether it ran all its epochs."""

    started: float
    ended: float
    score: float | None
    completed: bool


@dataclass(frozen=True)
class Search:
    """One method's search with one seed: when its clock started, and its children."""

    method: str
    seed: int
    began: float
    children: list[Child]

    def to_target(self) -> tuple[int, float] | None:
        """(children started up to the first that ended within 1%, seconds from the start
        to its end), or None when none did."""
        hits = [
            c
            for c in self.children
            if c.completed and c.score is not None and OPTIMUM - c.score <= TOLERANCE
        ]
        if not hits:
            return None
        first = min(hits, key=lambda c: c.ended)
        by_start = sorted(self.children, key=lambda c: c.started)
        return by_start.index(first) + 1, first.ended - self.began

    @property
    def wall(self) -> float:
        """Seconds from the start to the last child's end."""
        return max(c.ended for c in self.children) - self.began


def _line(label: str, figures: str) -> None:
    print(f"{label:<34} {figures}", flush=True)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _timestamp(text: str) -> float:
    """Epoch seconds of a run record's ISO time (``...Z`` or ``+00:00``)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_objective(
    script: Path, x: float, y: float, on_epoch: Callable[[int, float], None] | None = None
) -> list[float]:
    """Run ``script`` as a subprocess, as a child of a tuning run would be; the scores of the
    epochs it printed, each passed to ``on_epoch`` as it comes."""
    process = subprocess.Popen(
        [sys.executable, str(script), "--x", repr(x), "--y", repr(y)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    scores = []
    for line in process.stdout:
        if line.startswith("epoch "):
            _, epoch, _, value = line.split()
            scores.append(float(value))
            if on_epoch is not None:
                on_epoch(int(epoch), float(value))
    if process.wait() != 0:
        raise RuntimeError(f"{script.name} --x {x!r} --y {y!r} failed ({process.returncode})")
    return scores


# -- modelyard --------------------------------------------------------------------------


def _modelyard_children(hd_run: Any) -> list[Child]:
    children = []
    for child in hd_run.get_children():
        details = child.get_details()
        score = child.get_metrics().get("score")
        scores = score if isinstance(score, list) else [] if score is None else [score]
        children.append(
            Child(
                _timestamp(details["startTimeUtc"]),
                _timestamp(details["endTimeUtc"]),
                float(scores[-1]) if scores else None,
                child.get_status() == "Completed" and len(scores) == EPOCHS,
            )
        )
    return children


def modelyard_search(
    ws: Any, source: Path, method: str, seed: int, budget: int, concurrency: int
) -> Search:
    from modelyard import Experiment
    from modelyard.script_run_config import ScriptRunConfig
    from modelyard.train.hyperdrive import (
        BanditPolicy,
        BayesianParameterSampling,
        HyperDriveConfig,
        PrimaryMetricGoal,
        RandomParameterSampling,
        uniform,
    )

    space = {"--x": uniform(LOW, HIGH), "--y": uniform(LOW, HIGH)}
    properties = {"rngSeed": seed}
    sampling = (
        RandomParameterSampling(space, properties=properties)
        if method == "random"
        else BayesianParameterSampling(space, properties=properties)
    )
    policy = (
        BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=3)
        if method == "bandit"
        else None
    )
    config = HyperDriveConfig(
        run_config=ScriptRunConfig(source_directory=str(source), script=OBJECTIVE.name),
        hyperparameter_sampling=sampling,
        policy=policy,
        primary_metric_name="score",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=budget,
        max_concurrent_runs=concurrency,
    )
    began = time.time()
    hd_run = Experiment(ws, f"search-{method}").submit(config)
    hd_run.wait_for_completion()
    return Search(f"modelyard {method}", seed, began, _modelyard_children(hd_run))


def modelyard_overhead(ws: Any, source: Path, children: int) -> list[float]:
    """Gaps (s) between a child's end and the next one's start, one child at a time."""
    from modelyard import Experiment
    from modelyard.script_run_config import ScriptRunConfig
    from modelyard.train.hyperdrive import (
        HyperDriveConfig,
        PrimaryMetricGoal,
        RandomParameterSampling,
        uniform,
    )

    config = HyperDriveConfig(
        run_config=ScriptRunConfig(source_directory=str(source), script="instant.py"),
        hyperparameter_sampling=RandomParameterSampling({"--x": uniform(0, 1)}),
        policy=None,
        primary_metric_name="score",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=children,
        max_concurrent_runs=1,
    )
    hd_run = Experiment(ws, "overhead").submit(config)
    hd_run.wait_for_completion()
    spans = sorted(
        (_timestamp(d["startTimeUtc"]), _timestamp(d["endTimeUtc"]))
        for d in (c.get_details() for c in hd_run.get_children())
    )
    if len(spans) != children:
        raise RuntimeError(f"the tuning run made {len(spans)} children of {children}")
    return [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]


# -- Optuna alone -----------------------------------------------------------------------


def optuna_search(script: Path, seed: int, budget: int, concurrency: int) -> Search:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    children: list[Child] = []
    lock = threading.Lock()

    def objective(trial: Any) -> float:
        x, y = trial.suggest_float("x", LOW, HIGH), trial.suggest_float("y", LOW, HIGH)
        started = time.time()
        scores = run_objective(script, x, y)
        with lock:
            children.append(Child(started, time.time(), scores[-1], len(scores) == EPOCHS))
        return scores[-1]

    began = time.time()
    study.optimize(objective, n_trials=budget, n_jobs=concurrency)
    return Search("Optuna TPE", seed, began, children)


def optuna_overhead(script: Path, children: int) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spans: list[tuple[float, float]] = []

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", 0, 1)
        started = time.time()
        subprocess.run([sys.executable, str(script), "--x", repr(x)], check=True)
        spans.append((started, time.time()))
        return x

    optuna.create_study().optimize(objective, n_trials=children, n_jobs=1)
    return [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]


# -- Ray Tune ---------------------------------------------------------------------------


def _start_ray(concurrency: int, folder: Path) -> None:
    import ray

    logging.getLogger("ray.tune").setLevel(logging.ERROR)

    ray.init(
        num_cpus=concurrency,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _temp_dir=str(folder / "ray"),
    )
    # One unmeasured trial: Ray's first worker processes start here, not on the clock.
    _ray_fit(lambda config: _report({"score": 0.0}), {}, 1, 1, None, folder, "warm-up", 0)


def _report(metrics: dict[str, float]) -> None:
    from ray import tune

    tune.report(metrics)


def _ray_fit(
    trainable: Any,
    space: dict[str, Any],
    samples: int,
    concurrency: int,
    scheduler: Any,
    folder: Path,
    name: str,
    seed: int,
) -> dict[str, list[dict[str, Any]]]:
    """Run a Tuner; every trial's reports, by trial id."""
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    reports: dict[str, list[dict[str, Any]]] = {}

    class Collect(tune.Callback):  # type: ignore[misc]
        def on_trial_result(self, iteration: int, trials: Any, trial: Any, result: Any) -> None:
            reports.setdefault(trial.trial_id, []).append(dict(result))

    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(
            metric="score" if scheduler is None else None,
            mode="max" if scheduler is None else None,
            search_alg=BasicVariantGenerator(random_state=seed, max_concurrent=concurrency),
            scheduler=scheduler,
            num_samples=samples,
            reuse_actors=REUSE_ACTORS,
        ),
        run_config=tune.RunConfig(
            name=name, storage_path=str(folder / "ray_results"), verbose=0, callbacks=[Collect()]
        ),
    )
    tuner.fit()
    return reports


def ray_search(script: Path, folder: Path, seed: int, budget: int, concurrency: int) -> Search:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    def trainable(config: dict[str, Any]) -> None:
        started = time.time()
        run_objective(
            script,
            config["x"],
            config["y"],
            lambda epoch, score: _report(
                {"score": score, "epoch": epoch, "started": started, "at": time.time()}
            ),
        )

    began = time.time()
    reports = _ray_fit(
        trainable,
        {"x": tune.uniform(LOW, HIGH), "y": tune.uniform(LOW, HIGH)},
        budget,
        concurrency,
        ASHAScheduler(metric="score", mode="max", max_t=EPOCHS),
        folder,
        f"search-{seed}",
        seed,
    )
    children = [
        Child(r[0]["started"], r[-1]["at"], r[-1]["score"], r[-1]["epoch"] == EPOCHS)
        for r in reports.values()
    ]
    return Search("Ray Tune ASHA", seed, began, children)


def ray_overhead(script: Path, folder: Path, children: int) -> list[float]:
    from ray import tune

    def trainable(config: dict[str, Any]) -> None:
        started = time.time()
        subprocess.run([sys.executable, str(script), "--x", repr(config["x"])], check=True)
        _report({"score": config["x"], "started": started, "ended": time.time()})

    reports = _ray_fit(
        trainable, {"x": tune.uniform(0, 1)}, children, 1, None, folder, "overhead", 0
    )
    spans = sorted((r[-1]["started"], r[-1]["ended"]) for r in reports.values())
    return [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]


# -- the figures ------------------------------------------------------------------------


def _median_or_none(values: list[float | None]) -> float | None:
    """The median, a seed that never reached the target counting as infinitely many;
    None when that is where the median falls."""
    median = statistics.median([math.inf if v is None else v for v in values])
    return None if math.isinf(median) else median


def _ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None:
        return "-"
    return f"{ours / theirs:.2f}"


def table(searches: list[Search], budget: int) -> None:
    methods = list(dict.fromkeys(s.method for s in searches))
    medians: dict[str, tuple[float | None, float | None, float, int]] = {}
    for method in methods:
        own = [s for s in searches if s.method == method]
        targets = [s.to_target() for s in own]
        medians[method] = (
            _median_or_none([t[0] if t else None for t in targets]),
            _median_or_none([t[1] if t else None for t in targets]),
            statistics.median(s.wall for s in own),
            sum(t is not None for t in targets),
        )
    seeds = len({s.seed for s in searches})
    print(
        f"\n{'method':<24} {'reached':>8} {'runs to 1%':>11} {'s to 1%':>8} {'all s':>7}"
        f"   {'vs Optuna: runs':>15} {'s':>5}   {'vs Ray Tune: runs':>17} {'s':>5}"
    )
    for method in methods:
        runs, wall, total, reached = medians[method]
        row = [
            f"{method:<24}",
            f"{reached}/{seeds}".rjust(8),
            (f"{runs:.0f}" if runs is not None else f">{budget}").rjust(11),
            (f"{wall:.1f}" if wall is not None else "-").rjust(8),
            f"{total:7.1f}",
        ]
        for other in ("Optuna TPE", "Ray Tune ASHA"):
            theirs = medians.get(other)
            width = 15 if other == "Optuna TPE" else 17
            row.append(
                "  "
                + (_ratio(runs, theirs[0]) if theirs else "-").rjust(width)
                + " "
                + (_ratio(wall, theirs[1]) if theirs else "-").rjust(5)
            )
        print(" ".join(row), flush=True)
    print(
        f"(medians over {seeds} seeds of {budget} children each; 'runs to 1%': children started "
        f"up to the first that ended with score >= {OPTIMUM - TOLERANCE:g}, '>{budget}' when the "
        "median seed found none; 'all s': all the budget's children)"
    )


def search(folder: Path, seeds: int, budget: int, concurrency: int) -> None:
    from modelyard import Workspace
    from modelyard.compute.local import stop_agent

    source = folder / "objective"
    source.mkdir()
    shutil.copy(OBJECTIVE, source / OBJECTIVE.name)
    script = source / OBJECTIVE.name
    searches: list[Search] = []

    def measured(result: Search) -> None:
        searches.append(result)
        target = result.to_target()
        _line(
            f"{result.method}, seed {result.seed}",
            (f"{target[0]:3d} runs, {target[1]:6.1f} s to 1%" if target else "not reached")
            + f"; {len(result.children)} children in {result.wall:.1f} s",
        )

    ws = Workspace.create("bench", folder=folder / "ws")
    try:
        _warm_up_agent(ws, source, OBJECTIVE.name, ["--x", "0", "--y", "0"])
        for seed in range(seeds):
            for method in ("random", "bayesian", "bandit"):
                measured(modelyard_search(ws, source, method, seed, budget, concurrency))
    finally:
        stop_agent(ws.folder)
    for seed in range(seeds):
        measured(optuna_search(script, seed, budget, concurrency))
    _start_ray(concurrency, folder)
    try:
        for seed in range(seeds):
            measured(ray_search(script, folder, seed, budget, concurrency))
    finally:
        import ray

        ray.shutdown()
    table(searches, budget)


def _warm_up_agent(ws: Any, source: Path, script: str, arguments: list[str]) -> None:
    """One plain run, not measured: it starts the workspace's local agent."""
    from modelyard import Experiment
    from modelyard.script_run_config import ScriptRunConfig

    config = ScriptRunConfig(str(source), script, arguments=arguments)
    Experiment(ws, "warm-up").submit(config).wait_for_completion()


def overhead(folder: Path, children: int) -> None:
    from modelyard import Workspace
    from modelyard.compute.local import stop_agent

    source = folder / "instant"
    source.mkdir()
    (source / "instant.py").write_text(INSTANT)
    ws = Workspace.create("overhead", folder=folder / "ws-overhead")
    try:
        _warm_up_agent(ws, source, "instant.py", [])
        gaps = {"modelyard HyperDrive": modelyard_overhead(ws, source, children)}
    finally:
        stop_agent(ws.folder)
    gaps["Optuna alone (its loop)"] = optuna_overhead(source / "instant.py", children)
    _start_ray(1, folder)
    try:
        gaps["Ray Tune"] = ray_overhead(source / "instant.py", folder, children)
    finally:
        import ray

        ray.shutdown()
    print(f"\nend of a child -> start of the next, {children} children one at a time:")
    ours = statistics.median(gaps["modelyard HyperDrive"])
    for name, values in gaps.items():
        median = statistics.median(values)
        _line(
            f"  {name}",
            f"median {median * 1000:8.1f} ms   p90 {_percentile(values, 0.9) * 1000:8.1f} ms"
            + ("" if name.startswith("modelyard") else f"   modelyard / this {ours / median:7.1f}"),
        )


PARTS = ("search", "overhead")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1 seed, 20 children, 20 gaps")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--max-runs", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--only", choices=PARTS, action="append", help="this figure only")
    options = parser.parse_args()
    parts = options.only or PARTS
    seeds = options.seeds or (1 if options.quick else 3)
    budget = options.max_runs or (20 if options.quick else 40)
    with tempfile.TemporaryDirectory() as tmp:
        if "search" in parts:
            search(Path(tmp), seeds, budget, options.concurrency)
        if "overhead" in parts:
            overhead(Path(tmp), 21 if options.quick else OVERHEAD_CHILDREN)


if __name__ == "__main__":
    main()
