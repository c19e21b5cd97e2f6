"""Distributed configurations: the public names, and what submit refuses (before any run)."""

from __future__ import annotations

from pathlib import Path

import pytest

import modelyard.distributed
from modelyard import Experiment
from modelyard.distributed import (
    MpiConfiguration,
    PyTorchConfiguration,
    TensorflowConfiguration,
    resolve,
)
from modelyard.errors import ValidationError
from modelyard.script_run_config import ScriptRunConfig
from modelyard.train import Estimator, TensorFlow

SCRIPTS = Path(__file__).parent / "runner" / "distributed_scripts"


def test_public_names() -> None:
    assert modelyard.distributed.__all__ == [
        "MpiConfiguration",
        "PyTorchConfiguration",
        "TensorflowConfiguration",
    ]


def test_to_config_shapes() -> None:
    assert MpiConfiguration(4).to_config() == {
        "type": "mpi",
        "process_count_per_node": 4,
        "node_count": 1,
    }
    assert TensorflowConfiguration(worker_count=2).to_config() == {
        "type": "tensorflow",
        "worker_count": 2,
        "parameter_server_count": 1,
        "chief_count": 0,
    }
    assert PyTorchConfiguration("Gloo", process_count=2).to_config() == {
        "type": "pytorch",
        "communication_backend": "gloo",
        "process_count": 2,
        "node_count": 1,
    }


def _refused(experiment: Experiment, config: object) -> str:
    with pytest.raises(ValidationError) as info:
        experiment.submit(config)
    assert experiment.workspace._backend.list_runs(experiment.name) == []  # nothing queued
    return str(info.value)


@pytest.mark.parametrize(
    ("estimator_kwargs", "field", "words"),
    [
        (
            {"distributed_training": TensorflowConfiguration(worker_count=0)},
            "worker_count",
            "at least 1, not 0",
        ),
        (
            {"distributed_training": TensorflowConfiguration(parameter_server_count=-1)},
            "parameter_server_count",
            "at least 0, not -1",
        ),
        (
            {"distributed_training": TensorflowConfiguration(chief_count=2)},
            "chief_count",
            "at most one chief, not 2",
        ),
        (
            {
                "process_count_per_node": 2,
                "distributed_training": TensorflowConfiguration(
                    worker_count=2, parameter_server_count=1
                ),
            },
            "process_count_per_node",
            "= 2 processes, but the TensorflowConfiguration makes 3 (2 workers + 1 parameter "
            "server)",
        ),
        (
            {"distributed_training": MpiConfiguration(process_count_per_node=0)},
            "process_count_per_node",
            "at least 1, not 0",
        ),
        (
            {
                "process_count_per_node": 2,
                "distributed_training": MpiConfiguration(process_count_per_node=4),
            },
            "process_count_per_node",
            "the estimator asks for process_count_per_node=2 but the MpiConfiguration for "
            "process_count_per_node=4",
        ),
        (
            {"distributed_training": PyTorchConfiguration(communication_backend="mpii")},
            "communication_backend",
            "'mpii' is not a PyTorch communication backend; use 'gloo' or 'nccl'",
        ),
        (
            {"distributed_training": PyTorchConfiguration(process_count=0)},
            "process_count",
            "at least 1, not 0",
        ),
        (
            {
                "process_count_per_node": 3,
                "distributed_training": PyTorchConfiguration(process_count=2),
            },
            "process_count",
            "process_count=2, but node_count=1 × process_count_per_node=3 = 3",
        ),
        (
            {"distributed_training": PyTorchConfiguration(process_count=3, node_count=2)},
            "process_count",
            "3 processes do not divide evenly over node_count=2 nodes",
        ),
    ],
)
def test_wrong_combinations_are_refused_at_submit_naming_the_value(
    experiment: Experiment, estimator_kwargs: dict[str, object], field: str, words: str
) -> None:
    message = _refused(experiment, Estimator(SCRIPTS, "show_env.py", **estimator_kwargs))
    assert message.startswith(f"{field}: ") and words in message


def test_a_script_run_config_is_checked_the_same_way(experiment: Experiment) -> None:
    config = ScriptRunConfig(
        SCRIPTS, "show_env.py", distributed_job_config=TensorflowConfiguration(worker_count=0)
    )
    assert "worker_count" in _refused(experiment, config)


def test_not_a_configuration_is_refused(experiment: Experiment) -> None:
    message = _refused(experiment, Estimator(SCRIPTS, "show_env.py", distributed_training="mpi"))
    assert "is not a distributed configuration" in message


def test_several_nodes_of_a_distributed_run_are_all_on_the_local_compute() -> None:
    # node_count=2 on the local compute: both nodes' processes run on this machine.
    _, nodes, per_node = resolve(PyTorchConfiguration(node_count=2).to_config(), 1, 2)
    assert (nodes, per_node) == (2, 2)
    mpi, nodes, per_node = resolve(MpiConfiguration(node_count=2).to_config(), 1, 3)
    assert (mpi["process_count"], nodes, per_node) == (6, 2, 3)


def test_a_tensorflow_cluster_spreads_over_the_nodes() -> None:
    tf, nodes, per_node = resolve(TensorflowConfiguration(worker_count=2).to_config(), 2, 1)
    assert (tf["process_count"], nodes, per_node) == (3, 2, 2)
    with pytest.raises(ValidationError, match="node_count=3, but the TensorflowConfiguration"):
        resolve(TensorflowConfiguration(1, 1).to_config(), 3, 1)


def test_counts_given_on_the_estimator_fill_in_the_configuration() -> None:
    mpi, nodes, per_node = resolve(MpiConfiguration().to_config(), 1, 3)
    assert (mpi["process_count"], nodes, per_node) == (3, 1, 3)
    torch, _, per_node = resolve(PyTorchConfiguration().to_config(), 1, 2)
    assert (torch["process_count"], per_node) == (2, 2)
    tf, _, per_node = resolve(TensorflowConfiguration(2, 1, 1).to_config(), 1, 4)
    assert (tf["process_count"], per_node) == (4, 4)
    est = TensorFlow(
        SCRIPTS,
        "show_env.py",
        distributed_training=TensorflowConfiguration(worker_count=2, parameter_server_count=0),
    )
    assert est._to_job()[1].distributed == {
        "type": "tensorflow",
        "worker_count": 2,
        "parameter_server_count": 0,
        "chief_count": 0,
    }
