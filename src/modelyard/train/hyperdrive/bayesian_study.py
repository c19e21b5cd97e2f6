"""The ask/tell study behind Bayesian sampling: Optuna's, keyed by the driver's children.

A tuning driver asks for a child's configuration with the child's key (its run id), starts
the child, and tells its final primary metric, or that it failed or was stopped, when it
ends. Everything the study knows is in :meth:`BayesianStudy.observations`, one
:class:`Observation` per child: a driver restarted from the store passes them back to
:meth:`BayesianParameterSampling.study <.sampling.BayesianParameterSampling.study>` and the
study continues, the children still running included (told when they end).

A rebuilt study's sampler is seeded from the sampling's seed and the number of children it
starts from: seeded as the first was, it would draw the first configurations again while it
is still in its random start-up trials.

Optuna is imported here only, when a study is made (``pip install 'modelyard[tune]'``).

Example::

    study = sampling.study(PrimaryMetricGoal.MAXIMIZE)
    first = study.ask("run_1")                  # {'--lr': 0.03..., '--batch-size': 32}
    study.tell("run_1", 0.91)
    saved = [o.to_dict() for o in study.observations()]
    study = sampling.study("MAXIMIZE", [Observation.from_dict(o) for o in saved])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import ConflictError, NotFoundError, ValidationError
from modelyard.train.hyperdrive.goal import PrimaryMetricGoal
from modelyard.train.hyperdrive.parameter_expressions import CHOICE, QUNIFORM, Value, quantize

if TYPE_CHECKING:
    import optuna

    from modelyard.train.hyperdrive.sampling import BayesianParameterSampling

COMPLETED = "completed"
FAILED = "failed"
STOPPED = "stopped"
RUNNING = "running"
STATES = (COMPLETED, FAILED, STOPPED, RUNNING)


@dataclass(frozen=True)
class Observation:
    """One child as the study knows it: its key, configuration, state and result.

    ``value`` is the final primary metric of a completed child, the last logged one of a
    stopped child (or None), and None for a failed or running one.

    Example::

        Observation("run_3", {"--lr": 0.01}, "completed", 0.93)
    """

    key: str
    configuration: dict[str, Value]
    state: str = COMPLETED
    value: float | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValidationError("state", f"{self.state!r} is not one of {', '.join(STATES)}")
        if self.state == COMPLETED and self.value is None:
            raise ValidationError("value", f"completed child {self.key!r} needs its metric")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "key": self.key,
            "configuration": dict(self.configuration),
            "state": self.state,
            "value": self.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Observation:
        """The observation ``to_dict`` wrote."""
        value = data.get("value")
        return cls(
            str(data["key"]),
            dict(data["configuration"]),
            str(data.get("state", COMPLETED)),
            None if value is None else float(value),
        )


def import_optuna() -> Any:
    """Optuna, or an ImportError saying how to install it."""
    try:
        import optuna
    except ImportError as e:
        raise ImportError(
            "BayesianParameterSampling needs Optuna, which is not installed: "
            "pip install 'modelyard[tune]' (or pip install 'optuna>=4')"
        ) from e
    return optuna


@dataclass
class BayesianStudy:
    """Optuna's study for one tuning run; made by ``BayesianParameterSampling.study``.

    Example::

        study = sampling.study(PrimaryMetricGoal.MINIMIZE)
        for key in ("run_1", "run_2"):
            configuration = study.ask(key)
        study.tell("run_1", 0.25)
        study.tell("run_2", state="failed")
    """

    sampling: BayesianParameterSampling
    goal: PrimaryMetricGoal
    history: list[Observation]
    _study: Any = field(init=False, repr=False)
    _distributions: dict[str, Any] = field(init=False, default_factory=dict, repr=False)
    _trials: dict[str, Any] = field(init=False, default_factory=dict, repr=False)
    _observations: dict[str, Observation] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        optuna = import_optuna()
        # Optuna logs a line per trial at INFO; the driver reports children itself.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        seed = int(
            np.random.SeedSequence([self.sampling.seed, len(self.history)]).generate_state(1)[0]
        )
        self._study = optuna.create_study(
            direction="maximize" if self.goal is PrimaryMetricGoal.MAXIMIZE else "minimize",
            sampler=optuna.samplers.TPESampler(seed=seed),
        )
        self._distributions = self._make_distributions(optuna)
        for observation in self.history:
            self._restore(optuna, observation)

    def _make_distributions(self, optuna: Any) -> dict[str, Any]:
        distributions: dict[str, Any] = {}
        for name, expression in self.sampling.parameter_space.items():
            if expression.kind == CHOICE:
                distributions[name] = optuna.distributions.CategoricalDistribution(
                    list(expression.options)
                )
            elif expression.kind == QUNIFORM:
                low, high, q = expression.arguments
                distributions[name] = optuna.distributions.IntDistribution(
                    round(low / q), round(high / q)
                )
            else:
                low, high = expression.arguments
                distributions[name] = optuna.distributions.FloatDistribution(low, high)
        return distributions

    def _to_optuna(self, configuration: Mapping[str, Value]) -> dict[str, Any]:
        missing = set(self.sampling.parameter_space) - set(configuration)
        if missing:
            raise ValidationError(
                "configuration", f"{dict(configuration)!r} lacks {', '.join(sorted(missing))}"
            )
        params: dict[str, Any] = {}
        for name, expression in self.sampling.parameter_space.items():
            value = configuration[name]
            if expression.kind == QUNIFORM:
                params[name] = round(float(value) / expression.argument("q"))
            else:
                params[name] = value
        return params

    def _from_optuna(self, params: Mapping[str, Any]) -> dict[str, Value]:
        configuration: dict[str, Value] = {}
        for name, expression in self.sampling.parameter_space.items():
            value = params[name]
            if expression.kind == QUNIFORM:
                configuration[name] = quantize(value, expression.argument("q"))
            else:
                configuration[name] = value
        return configuration

    def _restore(self, optuna: Any, observation: Observation) -> None:
        if observation.key in self._observations:
            raise ConflictError(f"child {observation.key!r} is in the history twice")
        params = self._to_optuna(observation.configuration)
        if observation.state == RUNNING:
            # Asked again with its own configuration, so its result can be told when it ends.
            self._study.enqueue_trial(params, skip_if_exists=False)
            self._trials[observation.key] = self._study.ask(self._distributions)
        else:
            state = {
                COMPLETED: optuna.trial.TrialState.COMPLETE,
                FAILED: optuna.trial.TrialState.FAIL,
                STOPPED: optuna.trial.TrialState.PRUNED,
            }[observation.state]
            intermediate = (
                {0: observation.value}
                if observation.state == STOPPED and observation.value is not None
                else None
            )
            self._study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions=self._distributions,
                    value=observation.value if observation.state == COMPLETED else None,
                    state=state,
                    intermediate_values=intermediate,
                )
            )
        self._observations[observation.key] = observation

    def ask(self, key: str) -> dict[str, Value]:
        """The configuration of the child ``key`` (a new key: one child, one configuration)."""
        if key in self._observations:
            raise ConflictError(f"child {key!r} was asked for already")
        trial = self._study.ask(self._distributions)
        configuration = self._from_optuna(trial.params)
        self._trials[key] = trial
        self._observations[key] = Observation(key, configuration, RUNNING)
        return configuration

    def tell(self, key: str, value: float | None = None, state: str = COMPLETED) -> None:
        """The end of child ``key``: ``completed`` with its final primary metric, ``failed``,
        or ``stopped`` (by the policy or a cancel) with its last logged metric, if any."""
        trial = self._trials.get(key)
        if trial is None:
            raise NotFoundError(
                f"child {key!r} is not running in this study: ask for it first, or pass it "
                "in the history as running"
            )
        optuna = import_optuna()
        observation = Observation(key, self._observations[key].configuration, state, value)
        if state == COMPLETED:
            self._study.tell(trial, float(value))  # type: ignore[arg-type]
        elif state == STOPPED:
            if value is not None:
                trial.report(float(value), 0)
            self._study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif state == FAILED:
            self._study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            raise ValidationError(
                "state", f"a child ends completed, failed or stopped, not {state!r}"
            )
        del self._trials[key]
        self._observations[key] = observation

    def observations(self) -> list[Observation]:
        """Every child the study knows, in the order it met them: what to keep in the store."""
        return list(self._observations.values())

    @property
    def optuna_study(self) -> optuna.Study:
        """Optuna's own study, for inspection (its best trial, plots)."""
        return self._study  # type: ignore[no-any-return]


__all__ = ["COMPLETED", "FAILED", "RUNNING", "STOPPED", "BayesianStudy", "Observation"]
