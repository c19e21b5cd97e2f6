"""What the SDK shows of a cluster from its record alone, and what it refuses before a run is
stored: no Ray cluster is started here (tests/compute/test_ray_cluster.py starts one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard import Experiment, Workspace
from modelyard.compute import AmlCompute, ComputeTarget
from modelyard.compute.ray.targets import SUCCEEDED_STATE, NodeCounts
from modelyard.compute_target import ComputeTargetException
from modelyard.train import Estimator


@pytest.fixture
def source(tmp_path: Path) -> str:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("print('training')\n")
    return str(tmp_path / "src")


@pytest.fixture
def recorded(workspace: Workspace) -> AmlCompute:
    """A cluster as its admission records it once up: state, address, node counts."""
    config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=3)
    backend = workspace._backend
    backend.create_compute("cpucluster", "AmlCompute", config.to_dict())
    backend.update_compute(
        "cpucluster",
        state=SUCCEEDED_STATE,
        address="127.0.0.1:6379",
        nodes={"current": 2, "target": 3, "idle": 1, "running": 1, "preparing": 1},
    )
    target = ComputeTarget(workspace, "cpucluster")
    assert isinstance(target, AmlCompute)
    return target


def test_a_recorded_cluster_is_found_by_name_as_its_type(
    workspace: Workspace, recorded: AmlCompute
) -> None:
    assert type(ComputeTarget(workspace=workspace, name="cpucluster")) is AmlCompute
    assert [type(t).__name__ for t in ComputeTarget.list(workspace)] == [
        "ComputeTarget",
        "AmlCompute",
    ]
    with pytest.raises(ComputeTargetException, match="does not exist"):
        ComputeTarget(workspace, "gpucluster")


def test_get_status_serializes_as_v1_does(recorded: AmlCompute) -> None:
    status = recorded.get_status()
    assert (status.current_node_count, status.target_node_count) == (2, 3)
    assert status.allocation_state == "Resizing"  # a node is on its way
    serialized = status.serialize()
    assert serialized["nodeStateCounts"] == {
        "idleNodeCount": 1,
        "runningNodeCount": 1,
        "preparingNodeCount": 1,
        "unusableNodeCount": 0,
        "leavingNodeCount": 0,
        "preemptedNodeCount": 0,
    }
    assert serialized["scaleSettings"] == {
        "minNodeCount": 0,
        "maxNodeCount": 3,
        "nodeIdleTimeBeforeScaleDown": "PT1800S",
    }
    assert serialized["provisioningState"] == "Succeeded"
    assert serialized["vmSize"] == recorded.vm_size
    assert recorded.serialize()["properties"]["address"] == "127.0.0.1:6379"


def test_node_counts_read_what_the_admission_recorded(recorded: AmlCompute) -> None:
    counts = NodeCounts.of(recorded._record)
    assert counts == NodeCounts(current=2, target=3, idle=1, running=1, preparing=1)


def test_wait_for_completion_waits_for_the_nodes_asked_for(
    recorded: AmlCompute, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded.wait_for_completion(show_output=True, min_node_count=2, timeout_in_minutes=0.1)
    assert "Minimum number of nodes requested have been provisioned" in capsys.readouterr().out
    with pytest.raises(ComputeTargetException, match="still Succeeded"):
        recorded.wait_for_completion(min_node_count=3, timeout_in_minutes=0.02)


def test_a_failed_provisioning_says_why(
    workspace: Workspace, recorded: AmlCompute, source: str
) -> None:
    workspace._backend.update_compute(
        "cpucluster", state="Failed", errors=[{"message": "the Ray head did not start"}]
    )
    with pytest.raises(ComputeTargetException, match="the Ray head did not start"):
        recorded.wait_for_completion(timeout_in_minutes=0.1)
    with pytest.raises(ComputeTargetException, match="failed to provision"):
        Experiment(workspace, "e").submit(
            Estimator(source, "train.py", compute_target=ComputeTarget(workspace, "cpucluster"))
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"node_count": 4}, "node_count=4, but compute target 'cpucluster' has max_nodes=3"),
        ({"use_gpu": True}, "vm_size 'STANDARD_D2_V2' has no GPU"),
    ],
)
def test_what_the_cluster_cannot_hold_is_refused_before_anything_is_stored(
    workspace: Workspace,
    recorded: AmlCompute,
    source: str,
    options: dict[str, object],
    message: str,
) -> None:
    experiment = Experiment(workspace, "refused")
    with pytest.raises(ComputeTargetException, match=message):
        experiment.submit(Estimator(source, "train.py", compute_target=recorded, **options))
    assert list(experiment.get_runs()) == []
