"""Random and grid sampling: reproducible, index-addressable, exact; script arguments as v1
passed them; JSON; clear errors."""

from __future__ import annotations

import itertools
import json

import pytest

from modelyard.errors import ValidationError
from modelyard.train.hyperdrive import (
    BayesianParameterSampling,
    GridParameterSampling,
    HyperParameterSampling,
    RandomParameterSampling,
    choice,
    loguniform,
    normal,
    quniform,
    uniform,
)
from modelyard.train.hyperdrive.sampling import script_arguments

SPACE = {
    "--batch-size": choice(16, 32, 64, 128),
    "--learning-rate": loguniform(-6, -1),
    "keep_probability": uniform(0.05, 0.1),
    "hidden": quniform(50, 300, 50),
}


def test_a_seed_makes_random_sampling_reproducible() -> None:
    first = RandomParameterSampling(SPACE, properties={"rngSeed": 42})
    again = RandomParameterSampling(SPACE, properties={"rngSeed": 42})
    other = RandomParameterSampling(SPACE, properties={"rngSeed": 43})
    run = [first.configuration(i) for i in range(20)]
    assert run == [again.configuration(i) for i in range(20)]
    assert run != [other.configuration(i) for i in range(20)]
    # Different indexes give different configurations (continuous parameters never repeat).
    assert len({c["--learning-rate"] for c in run}) == 20


def test_the_ith_configuration_depends_on_the_seed_and_i_alone() -> None:
    """A resumed driver asks from where it stopped: the same configurations, none skipped."""
    sampling = RandomParameterSampling(SPACE, properties={"rngSeed": 7})
    in_order = [sampling.configuration(i) for i in range(10)]
    resumed = HyperParameterSampling.from_dict(json.loads(json.dumps(sampling.to_dict())))
    assert isinstance(resumed, RandomParameterSampling)
    assert [resumed.configuration(i) for i in reversed(range(10))] == in_order[::-1]
    assert resumed.configuration(4) == in_order[4]


def test_without_a_seed_one_is_chosen_and_kept_for_a_resumed_driver() -> None:
    sampling = RandomParameterSampling(SPACE)
    data = sampling.to_dict()
    assert isinstance(data["properties"]["rngSeed"], int)
    resumed = HyperParameterSampling.from_dict(data)
    assert resumed.configuration(3) == sampling.configuration(3)  # type: ignore[attr-defined]


def test_random_configurations_keep_the_names_as_written_and_the_space_order() -> None:
    configuration = RandomParameterSampling(SPACE, properties={"rngSeed": 1}).configuration(0)
    assert list(configuration) == list(SPACE)
    assert configuration["--batch-size"] in (16, 32, 64, 128)
    assert configuration["hidden"] in (50, 100, 150, 200, 250, 300)


def test_grid_enumerates_exactly_the_product_in_a_fixed_order() -> None:
    space = {
        "--lr": choice(0.1, 0.01, 0.001),
        "--layers": choice(1, 2),
        "act": choice("relu", "tanh"),
    }
    grid = GridParameterSampling(space)
    assert grid.count == 12
    expected = [
        {"--lr": lr, "--layers": layers, "act": act}
        for lr, layers, act in itertools.product((0.1, 0.01, 0.001), (1, 2), ("relu", "tanh"))
    ]
    assert list(grid.configurations()) == expected
    assert [grid.configuration(i) for i in range(12)] == expected
    assert HyperParameterSampling.from_dict(grid.to_dict()) == grid
    with pytest.raises(ValidationError, match=r"12 configurations \(0 to 11\)"):
        grid.configuration(12)


def test_grid_needs_choice_expressions() -> None:
    with pytest.raises(ValidationError) as caught:
        GridParameterSampling({"--lr": uniform(0.01, 0.1), "--layers": choice(1, 2)})
    assert caught.value.field == "parameter_space"
    assert "--lr: grid sampling needs choice expressions, not uniform(0.01, 0.1)" in str(
        caught.value
    )


def test_bayesian_accepts_only_v1s_three_expressions() -> None:
    BayesianParameterSampling({"a": choice(1, 2), "b": uniform(0, 1), "c": quniform(0, 8, 2)})
    with pytest.raises(ValidationError, match="supports only choice, uniform, quniform"):
        BayesianParameterSampling({"a": normal(0, 1)})


def test_script_arguments_pass_names_as_written_and_bare_names_with_dashes() -> None:
    assert script_arguments({"--batch-size": 64, "learning_rate": 0.01, "-v": True}) == [
        "--batch-size",
        "64",
        "--learning_rate",
        "0.01",
        "-v",
        "True",
    ]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: RandomParameterSampling({}), "non-empty dict"),
        (lambda: RandomParameterSampling([choice(1)]), "non-empty dict"),  # type: ignore[arg-type]
        (lambda: RandomParameterSampling({"lr": 0.1}), "lr: 0.1 is not a parameter expression"),  # type: ignore[dict-item]
        (lambda: RandomParameterSampling({"--": choice(1)}), "parameter name '--'"),
        (
            lambda: RandomParameterSampling({"a": choice(1)}, properties={"seed": 1}),
            "'seed' is not",
        ),
        (lambda: RandomParameterSampling({"a": choice(1)}, properties={"rngSeed": -1}), "rngSeed"),
        (
            lambda: RandomParameterSampling({"a": choice(1)}, propertes={}),
            "did you mean properties",
        ),
        (lambda: GridParameterSampling({"a": choice(1)}, properties={}), "not an argument of Grid"),
        (lambda: BayesianParameterSampling({"a": choice(1)}, seed=1), "not an argument of Bayes"),
    ],
)
def test_bad_sampler_arguments_are_refused(make, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=words):
        make()


def test_an_unknown_sampling_type_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown sampling 'SOBOL'"):
        HyperParameterSampling.from_dict({"type": "SOBOL", "parameter_space": {}})
