"""HyperDrive against Optuna alone and Ray Tune's ASHA: children to a near-optimum, and the
scheduling gap between children.

1. **Search**: on the known objective of ``hyperdrive_objective.py`` (a maximum of 100 at
   ``(1.5, -2)`` on ``[-5, 5]**2``, 5 epochs of 0.2 s), the children each method runs until
   one ends with a score within 1% of the optimum, ``score >= 99`` (``|best - 100| <= 0.01 *
   100``; a disc of radius 1, 3.1% of the box: a random search needs 32 children on average),
   and the wall time until that child ended. The same budget for every method
   (``--max-runs`` children, 30) and the same concurrency (``--concurrency``, 2: this
   machine's cores), over ``--seeds`` seeds (3: 0, 1, 2; every method runs with a seed before
   any runs with the next, so that the machine's load falls on all alike); the table gives
   medians over the seeds and the ratios to Optuna and to Ray Tune (above 1: more children,
   or more time, than the competitor).

   - modelyard: HyperDrive with ``RandomParameterSampling``, ``BayesianParameterSampling``
     (Optuna's TPE inside) and ``BayesianParameterSampling`` with ``BanditPolicy(slack_factor
     =0.1, evaluation_interval=1, delay_evaluation=1)`` (``DELAY_EVALUATION``: why 1),
     ``rngSeed`` the seed; each child a local run of the script.
   - Optuna alone: ``TPESampler(seed=seed)``, ``study.optimize(n_jobs=concurrency)``, each
     trial the same script run as a subprocess (its printed epoch lines read back), so that
     both sides pay a Python process start per child.
   - Ray Tune: ``Tuner`` with its random search (``BasicVariantGenerator(random_state=seed,
     max_concurrent=concurrency)``) and ``ASHAScheduler(max_t=5)`` (its defaults otherwise:
     grace period 1, reduction factor 4), ``reuse_actors=True`` (``REUSE_ACTORS``); each trial
     a function trainable that runs the same script as a subprocess and reports each epoch it
     prints, so ASHA can stop it.

   Clocks: from ``submit``, ``study.optimize`` or ``tuner.fit`` being called to the end of
   the first child within 1% (the run records' end time; the trainable's last report). Its
   position among the children in the order they started is the count. Ray is started, and
   modelyard's local agent too, before the clocks run, each warmed by one unmeasured run;
   Ray stays up throughout (idle, about 5% of a core). A child counts only if it ran all its
   epochs: a stopped one never logged its final score.

   Then the samplers alone, without processes (``SAMPLER_SEEDS``, 20 seeds, the objective
   computed in-process, ``concurrency`` configurations asked ahead of each result): how many
   of a method's children are its sampler's doing, which 3 seeds cannot tell.

2. **Scheduling overhead**: ``OVERHEAD_CHILDREN`` (50) children of a script that logs the
   primary metric once and ends, one at a time (``max_concurrent_runs=1``): the gap from a
   child's end to the next child's start, from the run records' times, median and p90; Ray
   Tune's from each trial's trainable (started, ended), and Optuna alone's (its loop, the
   floor) for comparison.

The machine's load average is printed at the start and the end: figures taken while other
work shares the cores are slower on every side.

Run: .venv/bin/python benchmarks/bench_hyperdrive.py [--quick] [--only search|overhead]
     [--seeds 3] [--max-runs 30] [--concurrency 2]
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

import optuna
import ray
from hyperdrive_objective import EPOCHS, HIGH, LOW, OPTIMUM, final_score
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import BasicVariantGenerator

from modelyard import Experiment, Workspace
from modelyard.compute.local import stop_agent
from modelyard.script_run_config import ScriptRunConfig
from modelyard.train.hyperdrive import (
    BanditPolicy,
    BayesianParameterSampling,
    HyperDriveConfig,
    PrimaryMetricGoal,
    RandomParameterSampling,
    uniform,
)

TOLERANCE = 0.01 * abs(OPTIMUM)  # within 1% of the optimum: score >= 99
SPACE = {"--x": uniform(LOW, HIGH), "--y": uniform(LOW, HIGH)}
OBJECTIVE = Path(__file__).with_name("hyperdrive_objective.py")
INSTANT = "from modelyard import Run\n\nRun.get_context().log('score', 1.0)\n"
OVERHEAD_CHILDREN = 50
SAMPLER_SEEDS = 20
# From the first epoch on, as ASHA's grace period (1). A stop takes effect up to about 0.7 s
# after the epoch's metric (a poll of HyperDrive's driver, 0.2 s, then of the child's
# supervisor, 0.5 s): evaluated from epoch 3 on, the children it stopped had run to their
# end already, in 0.5 s of epochs, and saved nothing.
DELAY_EVALUATION = 1
MODELYARD_METHODS = {
    "random": "modelyard random",
    "bayesian": "modelyard TPE",
    "bandit": "modelyard TPE + Bandit",
}
OPTUNA, RAY_TUNE = "Optuna TPE", "Ray Tune ASHA"
# Ray Tune at its best for short trials: its default (False) starts a worker process per
# trial, 3 to 5.5 s each on this 2-core machine (9 gaps of the overhead figure, measured once).
REUSE_ACTORS = True


Ask = Callable[[str], tuple[float, float]]  # a sampler's next (x, y), by the child's key
Tell = Callable[[str, float], None]  # a child's final score, to the sampler


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


def _gaps(spans: list[tuple[float, float]]) -> list[float]:
    """From each (start, end) to the next one's start, in the order they started."""
    ordered = sorted(spans)
    return [ordered[i + 1][0] - ordered[i][1] for i in range(len(ordered) - 1)]


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


def _warm_up_agent(ws: Workspace, source: Path, script: str, arguments: list[str]) -> None:
    """One plain run, not measured: it starts the workspace's local agent."""
    config = ScriptRunConfig(str(source), script, arguments=arguments)
    Experiment(ws, "warm-up").submit(config).wait_for_completion()


def _tuning_config(
    source: Path, script: str, sampling: Any, policy: Any, budget: int, concurrency: int
) -> HyperDriveConfig:
    return HyperDriveConfig(
        run_config=ScriptRunConfig(source_directory=str(source), script=script),
        hyperparameter_sampling=sampling,
        policy=policy,
        primary_metric_name="score",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_total_runs=budget,
        max_concurrent_runs=concurrency,
    )


def modelyard_search(
    ws: Workspace, source: Path, method: str, seed: int, budget: int, concurrency: int
) -> Search:
    properties = {"rngSeed": seed}
    sampling = (
        RandomParameterSampling(SPACE, properties=properties)
        if method == "random"
        else BayesianParameterSampling(SPACE, properties=properties)
    )
    policy = (
        BanditPolicy(slack_factor=0.1, evaluation_interval=1, delay_evaluation=DELAY_EVALUATION)
        if method == "bandit"
        else None
    )
    config = _tuning_config(source, OBJECTIVE.name, sampling, policy, budget, concurrency)
    began = time.time()
    hd_run = Experiment(ws, f"search-{method}").submit(config)
    hd_run.wait_for_completion()
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
    return Search(MODELYARD_METHODS[method], seed, began, children)


def modelyard_overhead(ws: Workspace, source: Path, children: int) -> list[float]:
    """Gaps (s) between a child's end and the next one's start, one child at a time."""
    sampling = RandomParameterSampling({"--x": uniform(0, 1)}, properties={"rngSeed": 0})
    config = _tuning_config(source, "instant.py", sampling, None, children, 1)
    hd_run = Experiment(ws, "overhead").submit(config)
    hd_run.wait_for_completion()
    spans = [
        (_timestamp(d["startTimeUtc"]), _timestamp(d["endTimeUtc"]))
        for d in (c.get_details() for c in hd_run.get_children())
    ]
    if len(spans) != children:
        raise RuntimeError(f"the tuning run made {len(spans)} children of {children}")
    return _gaps(spans)


# -- Optuna alone -----------------------------------------------------------------------


def optuna_search(script: Path, seed: int, budget: int, concurrency: int) -> Search:
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
    return Search(OPTUNA, seed, began, children)


def optuna_overhead(script: Path, children: int) -> list[float]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spans: list[tuple[float, float]] = []

    def objective(trial: Any) -> float:
        x = trial.suggest_float("x", 0, 1)
        started = time.time()
        subprocess.run(
            [sys.executable, str(script), "--x", repr(x)], check=True, stdout=subprocess.DEVNULL
        )
        spans.append((started, time.time()))
        return x

    optuna.create_study().optimize(objective, n_trials=children, n_jobs=1)
    return _gaps(spans)


# -- Ray Tune ---------------------------------------------------------------------------


def start_ray(concurrency: int, folder: Path) -> None:
    """Ray on this machine with ``concurrency`` CPUs, warmed by one unmeasured trial."""
    # Ray Tune's progress box and its logger's warnings (tensorboardX missing) stay out of
    # the figures; verbose=0 alone does not silence the box.
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    ray.init(
        num_cpus=concurrency,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _temp_dir=str(folder / "ray"),
    )
    _ray_fit(lambda config: _report({"score": 0.0}), {}, 1, 1, None, folder, "warm-up", 0)


def _report(metrics: dict[str, float]) -> None:
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
    return Search(RAY_TUNE, seed, began, children)


def ray_overhead(script: Path, folder: Path, children: int) -> list[float]:
    def trainable(config: dict[str, Any]) -> None:
        started = time.time()
        subprocess.run(
            [sys.executable, str(script), "--x", repr(config["x"])],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        _report({"score": config["x"], "started": started, "ended": time.time()})

    reports = _ray_fit(
        trainable, {"x": tune.uniform(0, 1)}, children, 1, None, folder, "overhead", 0
    )
    return _gaps([(r[-1]["started"], r[-1]["ended"]) for r in reports.values()])


# -- the samplers alone -----------------------------------------------------------------


def _asked_ahead(ask: Ask, tell: Tell, budget: int, concurrency: int) -> int | None:
    """Children until one scores within 1%, ``concurrency`` asked ahead of each tell (as
    children running at once are), the objective computed in-process; None when none did."""
    pending = [(str(i), ask(str(i))) for i in range(min(concurrency, budget))]
    asked = len(pending)
    for count in range(1, budget + 1):
        key, (x, y) = pending.pop(0)
        score = final_score(x, y)
        if OPTIMUM - score <= TOLERANCE:
            return count
        tell(key, score)
        if asked < budget:
            pending.append((str(asked), ask(str(asked))))
            asked += 1
    return None


def _modelyard_random(seed: int) -> tuple[Ask, Tell]:
    sampling = RandomParameterSampling(SPACE, properties={"rngSeed": seed})

    def ask(key: str) -> tuple[float, float]:
        configuration = sampling.configuration(int(key))
        return float(configuration["--x"]), float(configuration["--y"])

    return ask, lambda key, score: None


def _modelyard_tpe(seed: int) -> tuple[Ask, Tell]:
    sampling = BayesianParameterSampling(SPACE, properties={"rngSeed": seed})
    study = sampling.study(PrimaryMetricGoal.MAXIMIZE)

    def ask(key: str) -> tuple[float, float]:
        configuration = study.ask(key)
        return float(configuration["--x"]), float(configuration["--y"])

    return ask, study.tell


def _optuna_tpe(seed: int) -> tuple[Ask, Tell]:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    trials: dict[str, Any] = {}

    def ask(key: str) -> tuple[float, float]:
        trial = trials[key] = study.ask()
        return trial.suggest_float("x", LOW, HIGH), trial.suggest_float("y", LOW, HIGH)

    return ask, lambda key, score: study.tell(trials.pop(key), score)


SAMPLERS = {
    "modelyard random": _modelyard_random,
    "modelyard TPE": _modelyard_tpe,
    OPTUNA: _optuna_tpe,
}


def sampler_runs(seeds: int, budget: int, concurrency: int) -> dict[str, list[int | None]]:
    """For each sampler, the children to 1% with each seed, without processes: how much of a
    method's count is its sampler's, whatever runs the children."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return {
        name: [_asked_ahead(*make(seed), budget, concurrency) for seed in range(seeds)]
        for name, make in SAMPLERS.items()
    }


def samplers(seeds: int, budget: int, concurrency: int) -> None:
    print(
        f"\nthe samplers alone (in-process, {concurrency} asked ahead, {seeds} seeds of "
        f"{budget}): children to 1%"
    )
    for name, counts in sampler_runs(seeds, budget, concurrency).items():
        median = _median_or_none([None if c is None else float(c) for c in counts])
        reached = sum(c is not None for c in counts)
        figure = f"{median:.0f}" if median is not None else f">{budget}"
        _line(f"  {name}", f"median {figure:>4}, reached {reached}/{seeds}")


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
        for other, width in ((OPTUNA, 15), (RAY_TUNE, 17)):
            theirs = medians.get(other)
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
        "median seed found none; 'all s': all the budget's children; ratios: this method's "
        "figure over the competitor's)",
        flush=True,
    )


def search(folder: Path, seeds: int, budget: int, concurrency: int) -> None:
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
            (f"{target[0]:3d} runs, {target[1]:6.1f} s to 1%" if target else "not reached   ")
            + f"; {len(result.children)} children in {result.wall:.1f} s",
        )

    ws = Workspace.create("bench", folder=folder / "ws")
    try:
        _warm_up_agent(ws, source, OBJECTIVE.name, ["--x", "0", "--y", "0"])
        for seed in range(seeds):
            for method in MODELYARD_METHODS:
                measured(modelyard_search(ws, source, method, seed, budget, concurrency))
            measured(optuna_search(script, seed, budget, concurrency))
            measured(ray_search(script, folder, seed, budget, concurrency))
    finally:
        stop_agent(ws.folder)
    table(searches, budget)
    samplers(SAMPLER_SEEDS, budget, concurrency)


def overhead(folder: Path, children: int) -> None:
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
    gaps["Ray Tune"] = ray_overhead(source / "instant.py", folder, children)
    print(f"\nend of a child -> start of the next, {children} children one at a time:")
    ours = statistics.median(gaps["modelyard HyperDrive"])
    for name, values in gaps.items():
        median = statistics.median(values)
        _line(
            f"  {name}",
            f"median {median * 1000:8.1f} ms   p90 {_percentile(values, 0.9) * 1000:8.1f} ms"
            + ("" if name.startswith("modelyard") else f"   modelyard / this {ours / median:7.1f}"),
        )


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


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
    budget = options.max_runs or (20 if options.quick else 30)
    print(f"start: {_load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        start_ray(options.concurrency, Path(tmp))
        try:
            if "search" in parts:
                search(Path(tmp), seeds, budget, options.concurrency)
            if "overhead" in parts:
                overhead(Path(tmp), 21 if options.quick else OVERHEAD_CHILDREN)
        finally:
            ray.shutdown()
    print(f"end: {_load()}", flush=True)


if __name__ == "__main__":
    main()
