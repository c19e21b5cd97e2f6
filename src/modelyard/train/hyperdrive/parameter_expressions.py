"""The search space's distributions, with v1's names and arguments
(v1's ``azureml.train.hyperdrive.parameter_expressions``).

Each function returns a :class:`ParameterExpression`: it checks its arguments when made (a
ValidationError naming the argument at fault), draws a value from a ``numpy.random.Generator``
and turns to JSON and back, since a tuning driver keeps its search space in the run's
properties. The definitions are v1's:

- ``choice(*options)``: one of the options (``choice(1, 2, 3)`` or ``choice([1, 2, 3])``);
- ``randint(upper)``: an integer in ``[0, upper)``;
- ``uniform(min_value, max_value)``: a float in ``[min_value, max_value]``;
- ``quniform(min_value, max_value, q)``: ``round(uniform(min_value, max_value) / q) * q``;
- ``loguniform(min_value, max_value)``: ``exp(uniform(min_value, max_value))``, so in
  ``[exp(min_value), exp(max_value)]``: the bounds are logarithms, as in v1;
- ``qloguniform(min_value, max_value, q)``: ``round(exp(uniform(...)) / q) * q``;
- ``normal(mu, sigma)``, ``qnormal(mu, sigma, q)``: a normal value, and rounded to ``q``;
- ``lognormal(mu, sigma)``, ``qlognormal(mu, sigma, q)``: ``exp(normal(mu, sigma))``, rounded.

A quantized value is an ``int`` when ``q`` is one (``quniform(16, 256, 16)`` gives ``64``, so
a script's ``--batch-size 64`` parses as an integer), else a float.

Example::

    space = {"--batch-size": choice(16, 32, 64), "--learning-rate": loguniform(-6, -1)}
    rng = numpy.random.default_rng(7)
    space["--learning-rate"].sample(rng)            # 0.0564...
    ParameterExpression.from_dict(space["--batch-size"].to_dict()) == space["--batch-size"]
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelyard.errors import ValidationError

# A value a choice may hold: what a script argument and JSON both carry unchanged.
Value = str | int | float | bool

CHOICE = "choice"
RANDINT = "randint"
UNIFORM = "uniform"
QUNIFORM = "quniform"
LOGUNIFORM = "loguniform"
QLOGUNIFORM = "qloguniform"
NORMAL = "normal"
QNORMAL = "qnormal"
LOGNORMAL = "lognormal"
QLOGNORMAL = "qlognormal"

# Each kind's arguments, in v1's order.
ARGUMENTS: dict[str, tuple[str, ...]] = {
    CHOICE: ("options",),
    RANDINT: ("upper",),
    UNIFORM: ("min_value", "max_value"),
    QUNIFORM: ("min_value", "max_value", "q"),
    LOGUNIFORM: ("min_value", "max_value"),
    QLOGUNIFORM: ("min_value", "max_value", "q"),
    NORMAL: ("mu", "sigma"),
    QNORMAL: ("mu", "sigma", "q"),
    LOGNORMAL: ("mu", "sigma"),
    QLOGNORMAL: ("mu", "sigma", "q"),
}


@dataclass(frozen=True)
class ParameterExpression:
    """One parameter's distribution: its ``kind`` (v1's function name) and its arguments.

    Made by the functions of this module, which check the arguments; compare, hash, draw
    from and serialise it.

    Example::

        expression = quniform(0, 100, 10)
        expression.sample(numpy.random.default_rng(0))     # 60
        expression.to_dict()   # {'type': 'quniform', 'min_value': 0, 'max_value': 100, 'q': 10}
    """

    kind: str
    arguments: tuple[Any, ...]

    @property
    def options(self) -> tuple[Value, ...]:
        """The options of a ``choice`` (ValidationError for any other kind)."""
        if self.kind != CHOICE:
            raise ValidationError("parameter_space", f"{self.kind} has no options, only choice")
        options: tuple[Value, ...] = self.arguments[0]
        return options

    def argument(self, name: str) -> Any:
        """The argument called ``name`` (v1's name: ``min_value``, ``q``, ``sigma``...)."""
        return self.arguments[ARGUMENTS[self.kind].index(name)]

    def sample(self, rng: np.random.Generator) -> Value:
        """One value drawn with ``rng``; the same generator state gives the same value."""
        kind, args = self.kind, self.arguments
        if kind == CHOICE:
            return args[0][int(rng.integers(len(args[0])))]  # type: ignore[no-any-return]
        if kind == RANDINT:
            return int(rng.integers(args[0]))
        if kind in (UNIFORM, QUNIFORM, LOGUNIFORM, QLOGUNIFORM):
            value = float(rng.uniform(args[0], args[1]))
        else:
            value = float(rng.normal(args[0], args[1]))
        if kind in (LOGUNIFORM, QLOGUNIFORM, LOGNORMAL, QLOGNORMAL):
            value = math.exp(value)
        if kind in (QUNIFORM, QLOGUNIFORM, QNORMAL, QLOGNORMAL):
            return quantize(value, args[2])
        return value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"type": kind, <argument>: value, ...}``."""
        result: dict[str, Any] = {"type": self.kind}
        for name, value in zip(ARGUMENTS[self.kind], self.arguments, strict=True):
            result[name] = list(value) if name == "options" else value
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParameterExpression:
        """The expression ``to_dict`` wrote, checked again as when it was made."""
        kind = data.get("type")
        if kind not in ARGUMENTS:
            raise ValidationError(
                "parameter_space",
                f"unknown expression type {kind!r}; expected one of {', '.join(ARGUMENTS)}",
            )
        names = ARGUMENTS[kind]
        missing = [name for name in names if name not in data]
        if missing:
            raise ValidationError("parameter_space", f"{kind} lacks {', '.join(missing)}")
        values = [data[name] for name in names]
        if kind == CHOICE:
            return choice(list(values[0]))
        expression: ParameterExpression = _MAKERS[kind](*values)
        return expression

    def __repr__(self) -> str:
        if self.kind == CHOICE:
            return f"choice({', '.join(repr(o) for o in self.arguments[0])})"
        return f"{self.kind}({', '.join(repr(a) for a in self.arguments)})"


def quantize(value: float, q: int | float) -> int | float:
    """``round(value / q) * q``, an int when ``q`` is one (v1's quantization)."""
    steps = round(value / q)
    if isinstance(q, int):
        return int(steps * q)
    # Multiplying back in floats leaves 0.30000000000000004 for 3 * 0.1: keep q's precision.
    return float(round(steps * q, 12))


def _number(field: str, value: Any) -> int | float:
    # bool is an int to Python, but a True bound is surely a mistake.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(field, f"expected a finite number, not {value!r}")
    return value


def _positive(field: str, value: Any) -> int | float:
    number = _number(field, value)
    if number <= 0:
        raise ValidationError(field, f"must be greater than 0, not {number!r}")
    return number


def _range(min_value: Any, max_value: Any) -> tuple[int | float, int | float]:
    low, high = _number("min_value", min_value), _number("max_value", max_value)
    if low >= high:
        raise ValidationError(
            "min_value", f"must be less than max_value ({low!r} >= {high!r}): swap them"
        )
    return low, high


def choice(*options: Any) -> ParameterExpression:
    """One of ``options``: ``choice(16, 32, 64)``, or ``choice([16, 32, 64])`` (v1 takes both).

    Options are strings, numbers or booleans (what a script argument can carry), each once.

    Example::

        choice("adam", "sgd")
        choice(range(1, 5))                       # 1, 2, 3 or 4
    """
    if len(options) == 1 and not isinstance(options[0], str | bytes | int | float | bool):
        with contextlib.suppress(TypeError):  # a single scalar option: choice(5)
            options = tuple(options[0])
    if not options:
        raise ValidationError("options", "choice needs at least one option: choice(1, 2, 3)")
    seen: list[Value] = []
    for option in options:
        if not isinstance(option, str | int | float | bool) or (
            isinstance(option, float) and not math.isfinite(option)
        ):
            raise ValidationError(
                "options", f"{option!r} is not a string, a finite number or a boolean"
            )
        # 1 == 1.0 == True to Python: compare with the type too, so choice(1, True) is two.
        if any(type(option) is type(other) and option == other for other in seen):
            raise ValidationError("options", f"{option!r} is given twice")
        seen.append(option)
    return ParameterExpression(CHOICE, (tuple(seen),))


def randint(upper: int) -> ParameterExpression:
    """An integer in ``[0, upper)``, each equally likely (for seeds and the like).

    Example::

        randint(10)                               # 0 to 9
    """
    if isinstance(upper, bool) or not isinstance(upper, int) or upper < 1:
        raise ValidationError("upper", f"expected an integer of at least 1, not {upper!r}")
    return ParameterExpression(RANDINT, (upper,))


def uniform(min_value: float, max_value: float) -> ParameterExpression:
    """A float uniformly distributed in ``[min_value, max_value]``.

    Example::

        uniform(0.05, 0.1)
    """
    return ParameterExpression(UNIFORM, _range(min_value, max_value))


def quniform(min_value: float, max_value: float, q: float) -> ParameterExpression:
    """``round(uniform(min_value, max_value) / q) * q``: a bounded, evenly spaced value.

    Example::

        quniform(16, 256, 16)                     # 16, 32, ... 256 (ints: q is one)
    """
    return ParameterExpression(QUNIFORM, (*_range(min_value, max_value), _positive("q", q)))


def loguniform(min_value: float, max_value: float) -> ParameterExpression:
    """``exp(uniform(min_value, max_value))``: its logarithm is uniform; the value lies in
    ``[exp(min_value), exp(max_value)]`` (v1's bounds are logarithms, not the values).

    Example::

        loguniform(math.log(1e-5), math.log(1e-1))    # 1e-5 to 0.1
    """
    return ParameterExpression(LOGUNIFORM, _range(min_value, max_value))


def qloguniform(min_value: float, max_value: float, q: float) -> ParameterExpression:
    """``round(exp(uniform(min_value, max_value)) / q) * q``.

    Example::

        qloguniform(0, math.log(1000), 10)            # 0, 10, ... 1000
    """
    return ParameterExpression(QLOGUNIFORM, (*_range(min_value, max_value), _positive("q", q)))


def normal(mu: float, sigma: float) -> ParameterExpression:
    """A float normally distributed with mean ``mu`` and standard deviation ``sigma``.

    Example::

        normal(10, 3)
    """
    return ParameterExpression(NORMAL, (_number("mu", mu), _positive("sigma", sigma)))


def qnormal(mu: float, sigma: float, q: float) -> ParameterExpression:
    """``round(normal(mu, sigma) / q) * q``.

    Example::

        qnormal(100, 20, 5)
    """
    return ParameterExpression(
        QNORMAL, (_number("mu", mu), _positive("sigma", sigma), _positive("q", q))
    )


def lognormal(mu: float, sigma: float) -> ParameterExpression:
    """``exp(normal(mu, sigma))``: a positive value whose logarithm is normal.

    Example::

        lognormal(0, 1)
    """
    return ParameterExpression(LOGNORMAL, (_number("mu", mu), _positive("sigma", sigma)))


def qlognormal(mu: float, sigma: float, q: float) -> ParameterExpression:
    """``round(exp(normal(mu, sigma)) / q) * q``.

    Example::

        qlognormal(3, 1, 1)
    """
    return ParameterExpression(
        QLOGNORMAL, (_number("mu", mu), _positive("sigma", sigma), _positive("q", q))
    )


_MAKERS: dict[str, Any] = {
    RANDINT: randint,
    UNIFORM: uniform,
    QUNIFORM: quniform,
    LOGUNIFORM: loguniform,
    QLOGUNIFORM: qloguniform,
    NORMAL: normal,
    QNORMAL: qnormal,
    LOGNORMAL: lognormal,
    QLOGNORMAL: qlognormal,
}

__all__ = [
    "ParameterExpression",
    "choice",
    "lognormal",
    "loguniform",
    "normal",
    "qlognormal",
    "qloguniform",
    "qnormal",
    "quniform",
    "randint",
    "uniform",
]
