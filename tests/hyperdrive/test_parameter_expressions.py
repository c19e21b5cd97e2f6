"""The search space's expressions: v1's definitions, bounds and quantization over many draws,
JSON, and clear errors for bad arguments."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from modelyard.errors import ValidationError
from modelyard.train.hyperdrive import (
    choice,
    lognormal,
    loguniform,
    normal,
    qlognormal,
    qloguniform,
    qnormal,
    quniform,
    randint,
    uniform,
)
from modelyard.train.hyperdrive.parameter_expressions import ParameterExpression

DRAWS = 4000


def draws(expression: ParameterExpression, seed: int = 0) -> list[object]:
    rng = np.random.default_rng(seed)
    return [expression.sample(rng) for _ in range(DRAWS)]


def test_choice_takes_options_as_arguments_or_one_list_and_draws_each() -> None:
    assert choice(1, 2, 3) == choice([1, 2, 3]) == choice(range(1, 4))
    assert choice("adam").options == ("adam",)
    assert choice(5).options == (5,)
    values = draws(choice(16, 32, 64))
    assert set(values) == {16, 32, 64}
    # Roughly equally likely: each within 10% of a third.
    for option in (16, 32, 64):
        assert abs(values.count(option) / DRAWS - 1 / 3) < 0.1 / 3


def test_randint_is_an_integer_from_zero_below_upper() -> None:
    values = draws(randint(5))
    assert set(values) == {0, 1, 2, 3, 4}
    assert all(type(v) is int for v in values)


def test_uniform_stays_within_its_bounds() -> None:
    values = [float(v) for v in draws(uniform(0.05, 0.1))]  # type: ignore[arg-type]
    assert min(values) >= 0.05 and max(values) <= 0.1
    assert abs(np.mean(values) - 0.075) < 0.002


def test_quniform_rounds_to_multiples_of_q_within_the_rounded_bounds() -> None:
    values = draws(quniform(16, 256, 16))
    assert all(type(v) is int and v % 16 == 0 and 16 <= v <= 256 for v in values)
    assert {16, 256} <= set(values)
    # A float q gives floats on the grid of q.
    floats = draws(quniform(0.0, 1.0, 0.25))
    assert set(floats) == {0.0, 0.25, 0.5, 0.75, 1.0}
    assert all(type(v) is float for v in floats)


def test_loguniform_bounds_are_logarithms_as_in_v1() -> None:
    values = [float(v) for v in draws(loguniform(-6, -1))]  # type: ignore[arg-type]
    assert min(values) >= math.exp(-6) and max(values) <= math.exp(-1)
    logs = np.log(values)
    # Uniform in the logarithm: the mean of the logs is the middle of the bounds.
    assert abs(np.mean(logs) - (-3.5)) < 0.1


def test_qloguniform_is_exp_of_uniform_rounded_to_q() -> None:
    values = draws(qloguniform(0, math.log(1000), 10))
    assert all(type(v) is int and v % 10 == 0 and 0 <= v <= 1000 for v in values)


def test_normal_and_qnormal_have_their_mean_and_spread() -> None:
    values = [float(v) for v in draws(normal(10, 3))]  # type: ignore[arg-type]
    assert abs(np.mean(values) - 10) < 0.2 and abs(np.std(values) - 3) < 0.2
    quantized = draws(qnormal(100, 20, 5))
    assert all(type(v) is int and v % 5 == 0 for v in quantized)
    assert abs(np.mean(quantized) - 100) < 1.5  # type: ignore[arg-type]


def test_lognormal_and_qlognormal_are_positive_with_normal_logarithms() -> None:
    values = [float(v) for v in draws(lognormal(0, 1))]  # type: ignore[arg-type]
    assert min(values) > 0
    assert abs(np.mean(np.log(values))) < 0.1 and abs(np.std(np.log(values)) - 1) < 0.1
    quantized = draws(qlognormal(3, 1, 1))
    assert all(type(v) is int and v >= 0 for v in quantized)


def test_the_same_generator_state_draws_the_same_values() -> None:
    expression = loguniform(-6, -1)
    assert draws(expression, seed=11) == draws(expression, seed=11)
    assert draws(expression, seed=11) != draws(expression, seed=12)


@pytest.mark.parametrize(
    "expression",
    [
        choice(1, 2.5, "relu", True),
        randint(7),
        uniform(-1, 1),
        quniform(0, 100, 10),
        loguniform(-3, 0),
        qloguniform(0, 5, 2),
        normal(0, 1),
        qnormal(5, 2, 0.5),
        lognormal(1, 0.5),
        qlognormal(2, 1, 3),
    ],
    ids=repr,
)
def test_every_expression_goes_to_json_and_back(expression: ParameterExpression) -> None:
    data = json.loads(json.dumps(expression.to_dict()))
    assert data["type"] == expression.kind
    assert ParameterExpression.from_dict(data) == expression


@pytest.mark.parametrize(
    ("make", "field", "words"),
    [
        (lambda: choice(), "options", "at least one option"),
        (lambda: choice([]), "options", "at least one option"),
        (lambda: choice([1, 1]), "options", "twice"),
        (lambda: choice([[1, 2]]), "options", "not a string"),
        (lambda: randint(0), "upper", "at least 1"),
        (lambda: randint(2.5), "upper", "integer"),
        (lambda: uniform(1, 1), "min_value", "less than max_value"),
        (lambda: uniform(2, 1), "min_value", "swap"),
        (lambda: loguniform(0, -1), "min_value", "less than max_value"),
        (lambda: quniform(0, 10, 0), "q", "greater than 0"),
        (lambda: qloguniform(0, 1, -2), "q", "greater than 0"),
        (lambda: normal(0, 0), "sigma", "greater than 0"),
        (lambda: lognormal(0, -1), "sigma", "greater than 0"),
        (lambda: qnormal(0, 1, 0), "q", "greater than 0"),
        (lambda: qlognormal(0, 1, -1), "q", "greater than 0"),
        (lambda: uniform("a", 1), "min_value", "finite number"),
        (lambda: normal(math.nan, 1), "mu", "finite number"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(make, field: str, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as caught:
        make()
    assert caught.value.field == field
    assert words in str(caught.value)


def test_an_unknown_expression_type_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown expression type 'beta'"):
        ParameterExpression.from_dict({"type": "beta"})
    with pytest.raises(ValidationError, match="lacks max_value"):
        ParameterExpression.from_dict({"type": "uniform", "min_value": 0})
