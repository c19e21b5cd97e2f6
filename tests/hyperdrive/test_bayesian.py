"""Bayesian sampling with real Optuna: it learns on a known objective, and a study rebuilt from
its children continues without asking a configuration again."""

from __future__ import annotations

import json
import statistics
import sys

import pytest

from modelyard.errors import ConflictError, NotFoundError, ValidationError
from modelyard.train.hyperdrive import (
    BayesianParameterSampling,
    PrimaryMetricGoal,
    RandomParameterSampling,
    choice,
    quniform,
    uniform,
)
from modelyard.train.hyperdrive.bayesian_study import Observation
from modelyard.train.hyperdrive.parameter_expressions import Value

SPACE = {
    "--x": uniform(-5, 5),
    "--y": uniform(-5, 5),
    "activation": choice("tanh", "relu", "sigmoid"),
    "--units": quniform(0, 10, 2),
}
BUDGET = 30
SEEDS = range(6)


def loss(configuration: dict[str, Value]) -> float:
    """A quadratic bowl with its minimum 0 at x=1.3, y=-0.7, relu, 4 units."""
    x, y, units = (float(configuration[k]) for k in ("--x", "--y", "--units"))  # type: ignore[arg-type]
    penalty = 0.0 if configuration["activation"] == "relu" else 1.0
    return (x - 1.3) ** 2 + (y + 0.7) ** 2 + penalty + ((units - 4) / 4) ** 2


def bayesian_losses(seed: int) -> list[float]:
    study = BayesianParameterSampling(SPACE, properties={"rngSeed": seed}).study("MINIMIZE")
    losses = []
    for i in range(BUDGET):
        value = loss(study.ask(f"run_{i}"))
        study.tell(f"run_{i}", value)
        losses.append(value)
    return losses


def random_losses(seed: int) -> list[float]:
    sampling = RandomParameterSampling(SPACE, properties={"rngSeed": seed})
    return [loss(sampling.configuration(i)) for i in range(BUDGET)]


def test_bayesian_improves_on_random_over_a_small_budget() -> None:
    beats_best = 0
    for seed in SEEDS:
        bayesian, random = bayesian_losses(seed), random_losses(seed)
        # Its best of 30 beats random's median for every seed ...
        assert min(bayesian) < statistics.median(random), seed
        # ... and its last 10 (after TPE's 10 random start-up trials and 10 more) are on
        # average better than random's median: it learned where the bowl is.
        assert statistics.fmean(bayesian[-10:]) < statistics.median(random), seed
        beats_best += min(bayesian) < min(random)
    # Random's own best of 30 is a harder mark: beaten for (nearly) every seed.
    assert beats_best >= len(SEEDS) - 1


def test_configurations_are_in_the_space_with_v1s_quantization() -> None:
    study = BayesianParameterSampling(SPACE, properties={"rngSeed": 3}).study("MAXIMIZE")
    for i in range(15):
        configuration = study.ask(str(i))
        assert list(configuration) == list(SPACE)
        assert -5 <= float(configuration["--x"]) <= 5  # type: ignore[arg-type]
        assert configuration["activation"] in ("tanh", "relu", "sigmoid")
        assert configuration["--units"] in (0, 2, 4, 6, 8, 10)
        assert type(configuration["--units"]) is int
        study.tell(str(i), -loss(configuration))


def test_a_rebuilt_study_continues_without_asking_a_configuration_twice() -> None:
    sampling = BayesianParameterSampling(SPACE, properties={"rngSeed": 5})
    study = sampling.study(PrimaryMetricGoal.MINIMIZE)
    asked = {f"run_{i}": study.ask(f"run_{i}") for i in range(8)}
    for i in range(5):
        study.tell(f"run_{i}", loss(asked[f"run_{i}"]))
    study.tell("run_5", state="failed")
    study.tell("run_6", 7.5, state="stopped")
    # run_7 is still running when the driver dies; the store keeps what the study knew.
    saved = json.dumps([o.to_dict() for o in study.observations()])
    states = [o.state for o in study.observations()]
    assert states == ["completed"] * 5 + ["failed", "stopped", "running"]

    history = [Observation.from_dict(o) for o in json.loads(saved)]
    rebuilt = sampling.study("MINIMIZE", history)
    trials = rebuilt.optuna_study.trials
    assert len(trials) == 8
    assert rebuilt.optuna_study.best_value == min(loss(asked[f"run_{i}"]) for i in range(5))
    # The running child is told when it ends, as if the driver had never stopped.
    rebuilt.tell("run_7", loss(asked["run_7"]))
    more = {f"run_{i}": rebuilt.ask(f"run_{i}") for i in range(8, 20)}
    for key, configuration in more.items():
        rebuilt.tell(key, loss(configuration))
    every = [tuple(c.values()) for c in (*asked.values(), *more.values())]
    assert len(set(every)) == len(every) == 20
    # Rebuilding is deterministic: the same history gives the same next configuration.
    again = sampling.study("MINIMIZE", history)
    once_more = sampling.study("MINIMIZE", history)
    assert again.ask("next") == once_more.ask("next")


def test_ask_and_tell_refuse_keys_they_do_not_know_or_know_already() -> None:
    study = BayesianParameterSampling({"a": choice(1, 2)}, properties={"rngSeed": 1}).study(
        "MAXIMIZE"
    )
    study.ask("run_1")
    with pytest.raises(ConflictError, match="'run_1' was asked for already"):
        study.ask("run_1")
    with pytest.raises(NotFoundError, match="'run_2' is not running"):
        study.tell("run_2", 1.0)
    with pytest.raises(ValidationError, match="completed child 'run_1' needs its metric"):
        study.tell("run_1")
    with pytest.raises(ValidationError, match="'sleeping' is not one of"):
        Observation("run_3", {"a": 1}, "sleeping")


def test_a_missing_optuna_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    sampling = BayesianParameterSampling({"a": choice(1, 2)})
    monkeypatch.setitem(sys.modules, "optuna", None)  # what an environment without it imports
    with pytest.raises(ImportError, match=r"pip install 'modelyard\[tune\]'"):
        sampling.study("MAXIMIZE")
