"""Compute clusters on a real multi-node Ray cluster on this machine: Ray's autoscaler (its
fake multi-node provider) starts and stops worker nodes as local processes.

One cluster for the module (max 2 nodes of 2 CPUs, scaled down after 15 s idle), created by
the v1 find-or-create block, deleted at the end (which must leave no Ray process). The module
runs on one xdist worker (``xdist_group``): a second cluster would only slow both down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="compute clusters need the cluster extra (Ray)")

from modelyard import Experiment, Run, Workspace  # noqa: E402
from modelyard.backend.records import COMPLETED, PROVISIONING, QUEUED  # noqa: E402
from modelyard.compute import AmlCompute, ComputeTarget  # noqa: E402
from modelyard.compute.ray.cluster import (  # noqa: E402
    ClusterState,
    client_environment,
    session_processes,
)
from modelyard.compute.ray.targets import cluster_folder  # noqa: E402
from modelyard.compute_target import ComputeTargetException  # noqa: E402
from modelyard.distributed import MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration  # noqa: E402
from modelyard.errors import RunFailedError  # noqa: E402
from modelyard.train import Estimator, PyTorch, TensorFlow  # noqa: E402
from modelyard.train.hyperdrive import (  # noqa: E402
    GridParameterSampling,
    HyperDriveConfig,
    PrimaryMetricGoal,
    choice,
)
from tests.helpers import wait_for  # noqa: E402
from tests.s3 import S3Server  # noqa: E402

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.slow]

SCRIPTS = Path(__file__).parent / "scripts"
DISTRIBUTED = Path(__file__).parent.parent / "runner" / "distributed_scripts"
TUNING = Path(__file__).parent.parent / "hyperdrive" / "scripts"
NAME = "cpucluster"


def find_or_create(ws: Workspace) -> tuple[ComputeTarget, bool]:
    """The v1 notebooks' block, as written (imports changed); says whether it created."""
    created = False
    try:
        compute_target = ComputeTarget(workspace=ws, name=NAME)
    except ComputeTargetException:
        compute_config = AmlCompute.provisioning_configuration(
            vm_size="cpu=2,memory=4GB,gpu=0",
            min_nodes=0,
            max_nodes=2,
            idle_seconds_before_scaledown=15,
        )
        compute_target = ComputeTarget.create(ws, NAME, compute_config)
        compute_target.wait_for_completion(
            show_output=True, min_node_count=None, timeout_in_minutes=5
        )
        created = True
    return compute_target, created


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, AmlCompute]]:
    ws = Workspace.create("ray-ws", folder=tmp_path_factory.mktemp("ray") / "ws")
    target, created = find_or_create(ws)
    assert created and isinstance(target, AmlCompute)
    state = ClusterState.load(cluster_folder(ws.folder, NAME))
    assert state is not None
    yield ws, target
    target.delete()
    assert session_processes(state.session_id) == []


def worker_nodes(state: ClusterState) -> list[str]:
    """The ids of the cluster's alive worker nodes, as Ray lists them (asked from a process
    of its own: Ray reads the token settings when imported, and this one imported it)."""
    code = (
        f"import json, ray; ray.init(address={state.address!r}, logging_level='error', "
        "log_to_driver=False); print(json.dumps([n['NodeID'] for n in ray.nodes() if "
        "n['Alive'] and 'node:__internal_head__' not in n['Resources']]))"
    )
    env = {**os.environ, **client_environment(state.token_file)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    nodes: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return nodes


def read(run: Run, name: str) -> str:
    return run._backend.read_run_file(run.id, name, 0, 1 << 30).decode()


def completed(run: Run) -> None:
    """Wait for ``run``; when it did not complete, fail with every log it has (a run across
    nodes fails on all of them at once, and the cause may be in any node's log) and what the
    cluster's raylets said of dead or killed workers."""
    run.wait_for_completion(raise_on_error=False)
    if run.get_status() != COMPLETED:
        logs = [name for name in run.get_file_names() if name.endswith(".txt")]
        text = "\n".join(f"--- {name}\n{read(run, name)[-3000:]}" for name in logs)
        state = ClusterState.load(cluster_folder(run.experiment.workspace.folder, NAME))
        if state is not None:
            for raylet in sorted(Path(state.temp_dir).glob("session_latest/logs/raylet*.out")):
                said = [
                    line
                    for line in raylet.read_text(errors="replace").splitlines()
                    if any(word in line for word in ("died", "Kill", "kill", "exit", " E ", " W "))
                ]
                text += f"\n--- {raylet.name}\n" + "\n".join(said[-40:])
        pytest.fail(f"{run.id} ended {run.get_status()}: {run.get_details().get('error')}\n{text}")


def test_the_find_or_create_block_finds_the_cluster_it_created(
    cluster: tuple[Workspace, AmlCompute],
) -> None:
    ws, _ = cluster
    found, created = find_or_create(ws)
    assert not created and isinstance(found, AmlCompute) and found.name == NAME
    assert [t.name for t in ComputeTarget.list(ws)] == ["local", NAME]
    assert list(ws.compute_targets) == ["local", NAME]
    status = found.get_status()
    assert status.provisioning_state == "Succeeded"
    serialized = status.serialize()
    assert serialized["scaleSettings"]["maxNodeCount"] == 2
    assert serialized["vmSize"] == found.vm_size
    assert serialized["currentNodeCount"] == status.current_node_count


def test_a_run_on_the_cluster_streams_its_output_and_completes(
    cluster: tuple[Workspace, AmlCompute], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, target = cluster
    run = Experiment(ws, "on-cluster").submit(
        Estimator(str(SCRIPTS), "where.py", compute_target=target)
    )
    run.wait_for_completion(show_output=True)
    printed = capsys.readouterr().out
    assert "hello from" in printed and "done" in printed
    assert run.get_status() == COMPLETED
    assert run.get_metrics()["answer"] == 42
    where = read(run, "outputs/where_0.txt")
    # It ran in a node's own folder, not in the local compute's.
    assert str(cluster_folder(ws.folder, NAME) / "nodes") in where
    assert read(run, "outputs/ray_variables.txt") == ""  # no Ray setting, no token
    # It waited in Provisioning for its node, which the admission asked Ray for.
    assert "waiting for 1 node(s)" in read(run, "system_logs/admission.txt")


def test_a_tuning_run_runs_its_children_on_the_cluster(
    cluster: tuple[Workspace, AmlCompute],
) -> None:
    ws, target = cluster
    config = HyperDriveConfig(
        run_config=Estimator(str(TUNING), "objective.py", compute_target=target),
        hyperparameter_sampling=GridParameterSampling({"--x": choice(0, 1), "--y": choice(-2)}),
        primary_metric_name="score",
        primary_metric_goal=PrimaryMetricGoal.MAXIMIZE,
        max_concurrent_runs=2,
    )
    hd_run = Experiment(ws, "tune-on-cluster").submit(config)
    hd_run.wait_for_completion()
    children = list(hd_run.get_children())
    assert len(children) == 2
    for child in children:
        completed(child)
        # Each child ran on a node of the cluster, placed there by its admission.
        assert child.get_details()["target"] == NAME
        assert "waiting for 1 node(s)" in read(child, "system_logs/admission.txt")
    best = hd_run.get_best_run_by_primary_metric()
    assert best is not None and best.hyperparameters == {"--x": 1, "--y": -2}


def test_a_run_asking_for_more_nodes_than_max_nodes_is_refused_at_submit(
    cluster: tuple[Workspace, AmlCompute],
) -> None:
    ws, target = cluster
    with pytest.raises(ComputeTargetException, match="max_nodes=2"):
        Experiment(ws, "too-big").submit(
            Estimator(str(SCRIPTS), "where.py", compute_target=target, node_count=3)
        )


def test_pytorch_ddp_across_two_nodes_ends_with_identical_parameters(
    cluster: tuple[Workspace, AmlCompute],
) -> None:
    ws, target = cluster
    est = PyTorch(
        str(DISTRIBUTED),
        "torch_ddp.py",
        compute_target=target,
        node_count=2,
        distributed_training=PyTorchConfiguration(
            communication_backend="gloo", process_count=2, node_count=2
        ),
    )
    run = Experiment(ws, "ddp-2-nodes").submit(est)
    completed(run)
    ranks = [read(run, f"outputs/rank_{rank}.txt").split() for rank in range(2)]
    assert [r[0] for r in ranks] == ["3.0", "3.0"]  # allreduce of 1 + 2
    assert ranks[0][1] == ranks[1][1]  # identical parameters after one optimiser step
    assert [r[2] for r in ranks] == ["0", "0"]  # each alone on its node: LOCAL_RANK 0
    logs = [read(run, f"user_logs/std_log_process_{i:02d}.txt") for i in range(2)]
    assert "rank 0 of 2" in logs[0] and "rank 1 of 2" in logs[1]
    admission = read(run, "system_logs/admission.txt")
    assert "running on" in admission
    nodes = admission.split("running on", 1)[1].splitlines()[0]
    assert len({part.split()[0] for part in nodes.split(",")}) == 2  # two distinct nodes


def test_tensorflow_multiworker_across_two_nodes(
    cluster: tuple[Workspace, AmlCompute],
) -> None:
    ws, target = cluster
    est = TensorFlow(
        str(DISTRIBUTED),
        "tf_multiworker.py",
        compute_target=target,
        node_count=2,
        distributed_training=TensorflowConfiguration(worker_count=2, parameter_server_count=0),
    )
    run = Experiment(ws, "tf-2-nodes").submit(est)
    completed(run)
    workers = [read(run, f"outputs/worker_{i}.txt").split() for i in range(2)]
    assert [w[0] for w in workers] == ["2", "2"]  # two replicas in sync
    assert workers[0][1] == workers[1][1]


def test_an_mpi_allreduce_across_two_nodes_starts_each_daemon_through_ray(
    cluster: tuple[Workspace, AmlCompute],
) -> None:
    ws, target = cluster
    est = Estimator(
        str(DISTRIBUTED),
        "mpi_allreduce.py",
        compute_target=target,
        distributed_training=MpiConfiguration(process_count_per_node=1, node_count=2),
    )
    run = Experiment(ws, "mpi-2-nodes").submit(est)
    completed(run)
    ranks = {
        name: read(run, name) for name in run.get_file_names() if name.startswith("outputs/rank_")
    }
    # rank, world size, sum of rank + 1 over 2 ranks, local rank: one rank on each node
    assert ranks == {f"outputs/rank_{r}.txt": f"{r} 2 3 0" for r in range(2)}
    supervisor = read(run, "system_logs/supervisor.txt")
    assert "modelyard-node-0 slots=1" not in supervisor  # the hostfile is a file, not logged
    assert "plm_rsh_agent" in supervisor and "modelyard.compute.ray.rsh" in supervisor


def test_more_runs_than_the_cluster_holds_are_admitted_in_order(
    cluster: tuple[Workspace, AmlCompute],
) -> None:
    ws, target = cluster
    exp = Experiment(ws, "queue")
    # Each takes both nodes: the second and third wait until the one before has ended.
    runs = [
        exp.submit(
            Estimator(
                str(SCRIPTS), "where.py", arguments=["3"], compute_target=target, node_count=2
            )
        )
        for _ in range(3)
    ]
    assert runs[2].get_status() in (QUEUED, PROVISIONING)
    for run in runs:
        completed(run)
    # Without distribution the script runs on each of its nodes: a log and a folder each.
    logs = {name for name in runs[0].get_file_names() if name.startswith("user_logs/")}
    assert logs == {"user_logs/std_log_process_00.txt", "user_logs/std_log_process_01.txt"}
    folders = {read(runs[0], f"outputs/where_{i}.txt") for i in range(2)}
    assert len(folders) == 2
    assert runs[0].get_metrics(process=1) == {"answer": 42}
    starts = [run.get_details()["startTimeUtc"] for run in runs]
    ends = [run.get_details()["endTimeUtc"] for run in runs]
    assert starts == sorted(starts)
    assert starts[1] >= ends[0] and starts[2] >= ends[1]


def test_a_node_killed_mid_run_fails_the_run_naming_the_node(
    cluster: tuple[Workspace, AmlCompute],
) -> None:
    ws, target = cluster
    run = Experiment(ws, "node-lost").submit(
        Estimator(str(SCRIPTS), "where.py", arguments=["600"], compute_target=target, node_count=2)
    )
    wait_until_started_on_both_nodes(run)
    admission = read(run, "system_logs/admission.txt")
    second = admission.split("running on", 1)[1].split(",")[1].split()[0]
    state = ClusterState.load(cluster_folder(ws.folder, NAME))
    assert state is not None
    killed = kill_node(second, state.token_file)
    assert killed
    with pytest.raises(RunFailedError):
        run.wait_for_completion()
    error = run.get_details()["error"]
    assert second in error["message"] and "lost" in error["message"]


def wait_until_started_on_both_nodes(run: Run) -> None:
    """Until the script has printed on each of the run's two nodes (where.py's first line)."""
    logs = [f"user_logs/std_log_process_{index:02d}.txt" for index in range(2)]
    wait_for(lambda: all("hello from" in read_or_empty(run, log) for log in logs), timeout=240)


def read_or_empty(run: Run, name: str) -> str:
    try:
        return read(run, name)
    except Exception:
        return ""


def kill_node(node_tail: str, token_file: str) -> list[int]:
    """SIGKILL every process of the fake node whose id ends with ``node_tail``, of the cluster
    whose token is ``token_file``. Each test process starts a cluster of its own, and the fake
    nodes of all of them have the same ids: the token file, which every process of a cluster
    inherits, tells this one's from another test process's."""
    ours = f"RAY_AUTH_TOKEN_PATH={token_file}".encode()
    killed = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        items = environ.split(b"\0")
        if ours not in items:
            continue
        for item in items:
            if item.startswith(b"RAY_OVERRIDE_NODE_ID_FOR_TESTING=") and item.endswith(
                node_tail.encode()
            ):
                os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
    return killed


def test_the_cluster_scales_down_after_the_idle_time_and_up_from_zero(
    cluster: tuple[Workspace, AmlCompute],
) -> None:
    ws, target = cluster
    state = ClusterState.load(cluster_folder(ws.folder, NAME))
    assert state is not None
    wait_for(lambda: target.get_status().current_node_count == 0, timeout=180, interval=1)
    run = Experiment(ws, "scale-up").submit(
        Estimator(str(SCRIPTS), "where.py", compute_target=target, node_count=2)
    )
    run.wait_for_completion()
    assert len(worker_nodes(state)) == 2  # both came up, and stay a while once idle
    # Idle again: after idle_seconds_before_scaledown the autoscaler takes both nodes away.
    wait_for(lambda: target.get_status().current_node_count == 0, timeout=180, interval=1)
    assert worker_nodes(state) == []


def test_an_embedded_workspace_cannot_send_runs_to_a_cluster_on_other_machines(
    cluster: tuple[Workspace, AmlCompute], tmp_path: Path
) -> None:
    ws = Workspace.create("elsewhere", folder=tmp_path / "ws")
    config = AmlCompute.provisioning_configuration(
        vm_size="cpu=2,memory=4GB,gpu=0", max_nodes=2, address="ray://10.0.0.5:10001"
    )
    target = ComputeTarget.create(ws, "remote", config)
    with pytest.raises(ComputeTargetException, match="PostgreSQL \\+ S3 workspace"):
        Experiment(ws, "refused").submit(Estimator(str(SCRIPTS), "where.py", compute_target=target))
    assert list(Experiment(ws, "refused").get_runs()) == []  # nothing of the run was stored
    ComputeTarget(ws, "remote").delete()  # never came up: forgotten at once
    assert list(ws.compute_targets) == ["local"]


def test_a_postgresql_and_s3_workspace_runs_on_an_attached_cluster(
    cluster: tuple[Workspace, AmlCompute],
    tmp_path: Path,
    postgres_url: str,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """address= attaches a running Ray cluster (here the module's own): its nodes reach the
    workspace through its database and object store, not through its folder."""
    ws0, _ = cluster
    state = ClusterState.load(cluster_folder(ws0.folder, NAME))
    assert state is not None
    storage_url, options = s3_server.new_bucket("team")
    ws = Workspace.create(
        "team",
        folder=tmp_path / "team",
        database_url=postgres_url,
        storage_url=storage_url,
        storage_options=options,
    )
    # The attached cluster's token, as its users have it: in their environment.
    for name, value in client_environment(state.token_file).items():
        monkeypatch.setenv(name, value)
    config = AmlCompute.provisioning_configuration(
        vm_size="cpu=2,memory=4GB,gpu=0", max_nodes=2, address=state.address
    )
    target = ComputeTarget.create(ws, "attached", config)
    target.wait_for_completion(timeout_in_minutes=3)
    assert target.get_status().serialize()["provisioningState"] == "Succeeded"
    try:
        run = Experiment(ws, "attached").submit(
            Estimator(str(SCRIPTS), "where.py", compute_target=target)
        )
        run.wait_for_completion()
        assert run.get_metrics()["answer"] == 42
        assert "hello from" in read(run, "user_logs/std_log.txt")
        # Its node worked in a folder of its own, not below either workspace's folder.
        assert str(tmp_path) not in read(run, "outputs/where_0.txt")
    finally:
        target.delete()
    assert list(ws.compute_targets) == ["local"]
    assert session_processes(state.session_id)  # the attached cluster itself runs on


def test_a_run_canceled_on_the_cluster_stops_on_every_node(
    cluster: tuple[Workspace, AmlCompute],
) -> None:
    ws, target = cluster
    run = Experiment(ws, "cancel").submit(
        Estimator(str(SCRIPTS), "where.py", arguments=["600"], compute_target=target, node_count=2)
    )
    wait_until_started_on_both_nodes(run)
    run.cancel()
    with pytest.raises(RunFailedError, match="Canceled"):
        run.wait_for_completion()
    assert run.get_status() == "Canceled"


def test_the_cli_lists_shows_and_exports_the_cluster(
    cluster: tuple[Workspace, AmlCompute], tmp_path: Path
) -> None:
    ws, _ = cluster
    config = ws.write_config(tmp_path)
    shown = cli("--workspace-config", str(config), "compute", "show", NAME, "--json")
    assert json.loads(shown)["status"]["scaleSettings"]["maxNodeCount"] == 2
    listed = cli("--workspace-config", str(config), "compute", "list")
    assert "local" in listed and NAME in listed
    out = tmp_path / "cluster.yaml"
    cli(
        "--workspace-config",
        str(config),
        "compute",
        "export",
        NAME,
        "--provider",
        "aws",
        "--output",
        str(out),
    )
    assert "provider:" in out.read_text() and "ray up" in out.read_text()


def cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "modelyard.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
