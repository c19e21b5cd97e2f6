"""How the configurations of a tuning run's children are chosen (v1's
``azureml.train.hyperdrive.sampling``): random, grid and Bayesian.

A tuning driver asks a sampler for the ``index``-th configuration (random and grid) or for the
next one given the results so far (Bayesian, through :mod:`.bayesian_study`). Random and grid
configurations are a function of the sampler and the index alone, so a driver restarted from
the store that knows how many children it has made neither repeats nor skips one.

A configuration maps each parameter name, exactly as the space writes it (``"--batch-size"``,
``"batch_size"``), to its value; :func:`script_arguments` turns it into the child script's
arguments.

Example::

    sampling = RandomParameterSampling(
        {"--batch-size": choice(25, 50, 100), "--learning-rate": loguniform(-6, -1)},
        properties={"rngSeed": 7},
    )
    sampling.configuration(0)          # {'--batch-size': 100, '--learning-rate': 0.2200...}
    script_arguments(sampling.configuration(0))   # ['--batch-size', '100', '--learning-rate', ...]
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from modelyard.errors import ValidationError
from modelyard.train import v1_arguments
from modelyard.train.hyperdrive.goal import PrimaryMetricGoal
from modelyard.train.hyperdrive.parameter_expressions import (
    CHOICE,
    QUNIFORM,
    UNIFORM,
    ParameterExpression,
    Value,
)

if TYPE_CHECKING:
    from modelyard.train.hyperdrive.bayesian_study import BayesianStudy, Observation

Configuration = dict[str, Value]

# v1's property that seeds random sampling.
SEED_PROPERTY = "rngSeed"


def script_arguments(configuration: Mapping[str, Value]) -> list[str]:
    """The script arguments a child gets for ``configuration``, in the space's order.

    A name that starts with ``-`` (``"--batch-size"``, ``"-b"``) is passed as it is written; a
    bare name (``"batch_size"``) is passed as ``--batch_size``, with its underscores kept: v1's
    HyperDrive passed every parameter to the script as a command-line argument, and its
    documented scripts read bare names back with ``argparse`` as ``--batch_size``. Values are
    passed as text (``64``, ``0.001``, ``adam``, ``True``).

    Example::

        script_arguments({"--batch-size": 64, "learning_rate": 0.01})
        # ['--batch-size', '64', '--learning_rate', '0.01']
    """
    arguments: list[str] = []
    for name, value in configuration.items():
        arguments.append(name if name.startswith("-") else f"--{name}")
        arguments.append(str(value))
    return arguments


def check_parameter_space(
    parameter_space: Any, allowed: tuple[str, ...] | None = None, owner: str = "sampling"
) -> dict[str, ParameterExpression]:
    """``parameter_space`` as a dict of names to expressions, else a ValidationError saying
    what is wrong; ``allowed`` limits the expressions' kinds (grid: choice only)."""
    if not isinstance(parameter_space, Mapping) or not parameter_space:
        raise ValidationError(
            "parameter_space",
            "expected a non-empty dict of parameter names to expressions, e.g. "
            '{"--batch-size": choice(16, 32, 64)}',
        )
    space: dict[str, ParameterExpression] = {}
    for name, expression in parameter_space.items():
        if not isinstance(name, str) or not name.strip("-") or name != name.strip():
            raise ValidationError(
                "parameter_space",
                f"parameter name {name!r} must be a non-empty string without surrounding spaces "
                "(as the script reads it: '--batch-size' or 'batch_size')",
            )
        if not isinstance(expression, ParameterExpression):
            raise ValidationError(
                "parameter_space",
                f"{name}: {expression!r} is not a parameter expression; use choice(...), "
                "uniform(...) and the others of modelyard.train.hyperdrive",
            )
        if allowed is not None and expression.kind not in allowed:
            raise ValidationError(
                "parameter_space",
                f"{name}: {owner} supports only {', '.join(allowed)}, not {expression!r}",
            )
        space[name] = expression
    return space


def _check_properties(owner: str, properties: Any, known: tuple[str, ...]) -> dict[str, Any]:
    if properties is None:
        return {}
    if not isinstance(properties, Mapping):
        raise ValidationError("properties", f"expected a dict, not {properties!r}")
    for key in properties:
        if key not in known:
            what = ", ".join(repr(k) for k in known) if known else "none"
            raise ValidationError("properties", f"{key!r} is not a property of {owner}: {what}")
    return dict(properties)


def _seed(properties: dict[str, Any]) -> int:
    seed = properties.get(SEED_PROPERTY)
    if seed is None:
        # None chosen: pick one now, kept in to_dict, so a resumed driver draws the same ones.
        return secrets.randbits(32)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValidationError(
            "properties", f"{SEED_PROPERTY} must be a non-negative integer, not {seed!r}"
        )
    return seed


class HyperParameterSampling:
    """What the samplers share (v1's base class): the space, and JSON.

    Example::

        HyperParameterSampling.from_dict(sampling.to_dict())     # the same sampler
    """

    SAMPLING_NAME: ClassVar[str] = ""

    def __init__(self, parameter_space: dict[str, ParameterExpression]) -> None:
        self.parameter_space = parameter_space

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, read back with :meth:`from_dict`."""
        return {
            "type": self.SAMPLING_NAME,
            "parameter_space": {
                name: expression.to_dict() for name, expression in self.parameter_space.items()
            },
            "properties": self._properties(),
        }

    def _properties(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> HyperParameterSampling:
        """The sampler ``to_dict`` wrote."""
        kinds: dict[str, type[HyperParameterSampling]] = {
            RandomParameterSampling.SAMPLING_NAME: RandomParameterSampling,
            GridParameterSampling.SAMPLING_NAME: GridParameterSampling,
            BayesianParameterSampling.SAMPLING_NAME: BayesianParameterSampling,
        }
        kind = data.get("type")
        if kind not in kinds:
            raise ValidationError(
                "hyperparameter_sampling",
                f"unknown sampling {kind!r}; expected one of {', '.join(kinds)}",
            )
        space = {
            name: ParameterExpression.from_dict(expression)
            for name, expression in dict(data.get("parameter_space") or {}).items()
        }
        properties = data.get("properties") or None
        if kinds[kind] is GridParameterSampling:
            return GridParameterSampling(space)
        return kinds[kind](space, properties=properties)  # type: ignore[call-arg]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.parameter_space!r})"


class RandomParameterSampling(HyperParameterSampling):
    """Each configuration drawn at random from the space (v1 signature).

    ``properties={"rngSeed": N}`` (v1's property) fixes the seed; without it one is chosen and
    kept in :meth:`to_dict`. The ``index``-th configuration is a function of the seed and the
    index alone (each index has a generator of its own, seeded with both), so configurations
    can be asked in any order, again, or after a restart, and come out the same.

    Example::

        sampling = RandomParameterSampling({"learning_rate": normal(10, 3),
                                            "batch_size": choice(16, 32, 64, 128)},
                                           properties={"rngSeed": 42})
        sampling.configuration(3) == sampling.configuration(3)      # True
    """

    SAMPLING_NAME = "RANDOM"

    def __init__(
        self,
        parameter_space: dict[str, ParameterExpression],
        properties: dict[str, Any] | None = None,
        **unknown: Any,
    ) -> None:
        v1_arguments.check_unknown(
            "RandomParameterSampling", unknown, ["parameter_space", "properties"]
        )
        super().__init__(check_parameter_space(parameter_space, owner="random sampling"))
        self.properties = _check_properties("RandomParameterSampling", properties, (SEED_PROPERTY,))
        self.seed = _seed(self.properties)

    def _properties(self) -> dict[str, Any]:
        return {**self.properties, SEED_PROPERTY: self.seed}

    def configuration(self, index: int) -> Configuration:
        """The ``index``-th configuration (0 first)."""
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValidationError("index", f"expected a non-negative integer, not {index!r}")
        rng = np.random.default_rng([self.seed, index])
        return {name: expression.sample(rng) for name, expression in self.parameter_space.items()}


class GridParameterSampling(HyperParameterSampling):
    """Every combination of the ``choice`` values, each once (v1 signature).

    Only ``choice`` expressions: a continuous one has no finite grid. The combinations come in
    a fixed order, the last parameter changing fastest (as ``itertools.product``); there are
    :attr:`count` of them, and a tuning run has no more children than that.

    Example::

        grid = GridParameterSampling({"--lr": choice(0.1, 0.01), "--layers": choice(1, 2, 3)})
        grid.count                     # 6
        grid.configuration(1)          # {'--lr': 0.1, '--layers': 2}
    """

    SAMPLING_NAME = "GRID"

    def __init__(self, parameter_space: dict[str, ParameterExpression], **unknown: Any) -> None:
        v1_arguments.check_unknown("GridParameterSampling", unknown, ["parameter_space"])
        if isinstance(parameter_space, Mapping):
            for name, expression in parameter_space.items():
                if isinstance(expression, ParameterExpression) and expression.kind != CHOICE:
                    raise ValidationError(
                        "parameter_space",
                        f"{name}: grid sampling needs choice expressions, not {expression!r}; "
                        "list the values to try with choice(...), or use "
                        "RandomParameterSampling or BayesianParameterSampling",
                    )
        super().__init__(check_parameter_space(parameter_space, (CHOICE,), "grid sampling"))

    @property
    def count(self) -> int:
        """How many configurations the grid holds."""
        return math.prod(len(e.options) for e in self.parameter_space.values())

    def configuration(self, index: int) -> Configuration:
        """The ``index``-th combination (0 to ``count - 1``)."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self.count:
            raise ValidationError(
                "index",
                f"the grid has {self.count} configurations (0 to {self.count - 1}), not {index!r}",
            )
        values: dict[str, Value] = {}
        rest = index
        for name, expression in reversed(self.parameter_space.items()):
            rest, position = divmod(rest, len(expression.options))
            values[name] = expression.options[position]
        return {name: values[name] for name in self.parameter_space}

    def configurations(self) -> Iterator[Configuration]:
        """Every combination, in order."""
        for index in range(self.count):
            yield self.configuration(index)


class BayesianParameterSampling(HyperParameterSampling):
    """Each configuration chosen from the results so far, by Optuna (v1 signature).

    v1 supports ``choice``, ``uniform`` and ``quniform`` here, and so does this: ``choice`` is
    Optuna's categorical distribution, ``uniform`` its float distribution, ``quniform(min, max,
    q)`` an integer distribution over the steps ``round(min / q)`` to ``round(max / q)``, times
    ``q`` (v1's rounding, where Optuna's own step starts at ``min``). The sampler is Optuna's
    TPE; ``properties={"rngSeed": N}`` seeds it (modelyard's: v1 documents no property here).
    Unlike v1, an early-termination policy may go with it: a child it stops is told to the
    study as pruned (:func:`.config_checks.check_policy`).

    :meth:`study` gives the driver's ask/tell interface, made again from the finished children
    when a driver restarts. It needs Optuna: ``pip install 'modelyard[tune]'``.

    Example::

        sampling = BayesianParameterSampling({"--lr": uniform(0.001, 0.1),
                                              "--batch-size": choice(16, 32, 64)})
        study = sampling.study(PrimaryMetricGoal.MAXIMIZE)
        configuration = study.ask("child-1")
        study.tell("child-1", 0.93)
    """

    SAMPLING_NAME = "BayesianOptimization"

    def __init__(
        self,
        parameter_space: dict[str, ParameterExpression],
        properties: dict[str, Any] | None = None,
        **unknown: Any,
    ) -> None:
        v1_arguments.check_unknown(
            "BayesianParameterSampling", unknown, ["parameter_space", "properties"]
        )
        super().__init__(
            check_parameter_space(parameter_space, (CHOICE, UNIFORM, QUNIFORM), "Bayesian sampling")
        )
        self.properties = _check_properties(
            "BayesianParameterSampling", properties, (SEED_PROPERTY,)
        )
        self.seed = _seed(self.properties)

    def _properties(self) -> dict[str, Any]:
        return {**self.properties, SEED_PROPERTY: self.seed}

    def study(
        self, goal: PrimaryMetricGoal | str, history: list[Observation] | None = None
    ) -> BayesianStudy:
        """A study to ask configurations of and tell results to; ``history`` (the children
        so far, finished or running) makes it continue where a previous driver stopped."""
        from modelyard.train.hyperdrive.bayesian_study import BayesianStudy

        return BayesianStudy(self, PrimaryMetricGoal.of(goal), history or [])


__all__ = [
    "BayesianParameterSampling",
    "GridParameterSampling",
    "HyperParameterSampling",
    "RandomParameterSampling",
    "script_arguments",
]
