"""Distributed runs on the local compute, with real processes and real frameworks: OpenMPI with
mpi4py, TensorFlow (tf-keras) and PyTorch over gloo.

The TensorFlow and PyTorch tests are marked slow (each process imports its framework, 7-13 s
for TensorFlow on two cores); `make test` runs them too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard import Experiment, Run, Workspace
from modelyard.backend.channel_wire import decode, encode
from modelyard.backend.records import SCALAR, MetricBatch
from modelyard.distributed import MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration
from modelyard.errors import RunFailedError
from modelyard.runner import local_compute
from modelyard.script_run_config import ScriptRunConfig
from modelyard.train import Estimator, PyTorch, TensorFlow
from tests.helpers import wait_for

SCRIPTS = Path(__file__).parent / "distributed_scripts"


def read(run: Run, name: str) -> str:
    return run._backend.read_run_file(run.id, name, 0, 1 << 30).decode()


def outputs(run: Run, prefix: str) -> dict[str, str]:
    return {name: read(run, name) for name in run.get_file_names() if name.startswith(prefix)}


def supervisor_log(run: Run) -> str:
    return read(run, "system_logs/supervisor.txt")


def workdir(workspace: Workspace, run: Run) -> Path:
    return local_compute.compute_dir(workspace.folder) / "runs" / run.id / "wd"


def pids(workspace: Workspace, run: Run, count: int) -> list[int]:
    folder = workdir(workspace, run) / "pids"

    def all_written() -> list[int] | None:
        files = sorted(folder.glob("*.pid")) if folder.is_dir() else []
        texts = [f.read_text() for f in files]
        return [int(t) for t in texts] if len(files) == count and all(texts) else None

    # A deadline, not a timing: four processes importing TensorFlow at once on a loaded
    # 2-core machine took more than 60 s.
    found: list[int] = wait_for(all_written, timeout=240)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- MPI -------------------------------------------------------------------------------------


def test_mpi4py_allreduce_over_four_ranks(experiment: Experiment) -> None:
    est = Estimator(
        SCRIPTS,
        "mpi_allreduce.py",
        distributed_training=MpiConfiguration(process_count_per_node=4),
    )
    run = experiment.submit(est)
    run.wait_for_completion()
    ranks = outputs(run, "outputs/rank_")
    # rank, world size, sum of rank + 1 over 4 ranks, local rank
    assert ranks == {f"outputs/rank_{r}.txt": f"{r} 4 10 {r}" for r in range(4)}
    assert run.get_metrics() == {"allreduce_sum": [10, 10, 10, 10]}
    assert run.get_metrics(process=3) == {"allreduce_sum": 10}
    for rank in range(4):
        log = read(run, f"user_logs/std_log_process_{rank:02d}.txt")
        assert log == f"rank {rank} of 4: allreduce sum 10\n"  # its own output, nothing else
    assert "user_logs/std_log.txt" not in run.get_file_names()
    assert run.get_properties()["modelyard.distributed"] == "mpi"


def test_mpi_ranks_see_openmpi_variables_and_the_runs_settings(experiment: Experiment) -> None:
    est = Estimator(
        SCRIPTS,
        "show_env.py",
        environment_variables={"MY_SETTING": "passed with -x"},
        node_count=1,
        process_count_per_node=2,
        distributed_training=MpiConfiguration(),
    )
    run = experiment.submit(est)
    run.wait_for_completion()
    for rank in range(2):
        seen = json.loads(read(run, f"outputs/env_{rank}.json"))
        assert seen["OMPI_COMM_WORLD_RANK"] == str(rank)
        assert seen["OMPI_COMM_WORLD_SIZE"] == "2"
        assert seen["OMPI_COMM_WORLD_LOCAL_RANK"] == str(rank)
        assert seen["MODELYARD_PROCESS_INDEX"] == str(rank)
        assert seen["MODELYARD_PROCESS_COUNT"] == "2"
        assert seen["MY_SETTING"] == "passed with -x"
    log = supervisor_log(run)
    if os.geteuid() == 0:  # mpirun refuses root unless told (as non-root the flag is absent)
        assert "--allow-run-as-root" in log
    else:
        assert "--allow-run-as-root" not in log
    assert "'-x', 'MY_SETTING'" in log


def test_without_mpirun_the_run_fails_in_preparing_saying_how_to_install(
    experiment: Experiment,
) -> None:
    est = Estimator(
        SCRIPTS,
        "mpi_allreduce.py",
        environment_variables={"PATH": "/nonexistent"},  # no mpirun on this PATH
        distributed_training=MpiConfiguration(process_count_per_node=2),
    )
    run = experiment.submit(est)
    with pytest.raises(RunFailedError, match="apt-get install openmpi-bin libopenmpi-dev"):
        run.wait_for_completion()
    log = supervisor_log(run)
    assert "status: Preparing" in log and "status: Starting" not in log
    assert "pip install mpi4py" in run.get_details()["error"]["message"]


def test_a_killed_supervisor_stops_every_mpi_rank(
    workspace: Workspace, experiment: Experiment
) -> None:
    run = experiment.submit(
        Estimator(SCRIPTS, "sleep_ranks.py", distributed_training=MpiConfiguration(3))
    )
    ranks = pids(workspace, run, 3)
    processes_file = (
        local_compute.compute_dir(workspace.folder) / "runs" / run.id / "processes.json"
    )
    # Each rank is in a process group of its own (mpirun's doing); all are recorded.
    info = wait_for(lambda: (i := json.loads(processes_file.read_text()))["pgids"][3:] and i)
    assert len(info["pgids"]) == 4  # mpirun's and the three ranks'
    os.kill(info["supervisor_pid"], signal.SIGKILL)
    wait_for(lambda: run.get_status() == "Failed", timeout=60)
    wait_for(lambda: not any(alive(pid) for pid in ranks), timeout=10)


# -- failures, cancel, logs and metrics of several processes ----------------------------------


@pytest.mark.parametrize(
    "config",
    [MpiConfiguration(process_count_per_node=3), PyTorchConfiguration(process_count=3)],
    ids=["mpi", "direct"],
)
def test_a_failing_rank_stops_the_others_and_fails_the_run_naming_it(
    workspace: Workspace, experiment: Experiment, config: object
) -> None:
    run = experiment.submit(
        ScriptRunConfig(SCRIPTS, "rank_fails.py", distributed_job_config=config)
    )
    others = [pid for i, pid in enumerate(pids(workspace, run, 3)) if i != 1]
    with pytest.raises(RunFailedError) as info:
        run.wait_for_completion()  # the others wait forever: this returns once they are stopped
    error = run.get_details()["error"]
    assert error["message"] == (
        "process 1 (rank 1) exited with code 3; the run's other processes were stopped"
    )
    assert (error["process"], error["exit_code"]) == (1, 3)
    assert "rank 1 breaks down" in error["stderr_tail"]
    assert info.value.run_exit_code == 3
    assert "rank 1 breaks down" in str(info.value)  # the tail of process 1's log
    # The run ends once its processes are stopped: none of the others is left.
    assert not any(alive(pid) for pid in others)
    log = supervisor_log(run)
    stopped_at = log.index("stopping the other processes")
    assert "status: Failed" in log[stopped_at:]


def test_cancel_stops_every_process(workspace: Workspace, experiment: Experiment) -> None:
    run = experiment.submit(
        PyTorch(
            SCRIPTS, "sleep_ranks.py", distributed_training=PyTorchConfiguration(process_count=2)
        )
    )
    processes = pids(workspace, run, 2)
    run.cancel()
    wait_for(lambda: run.get_status() == "Canceled", timeout=30)
    assert not any(alive(pid) for pid in processes)


def test_each_process_has_its_own_log_and_keeps_its_metrics(
    workspace: Workspace,
    experiment: Experiment,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = ScriptRunConfig(
        SCRIPTS, "show_env.py", distributed_job_config=PyTorchConfiguration(process_count=3)
    )
    run = experiment.submit(config)
    run.wait_for_completion(show_output=True)
    printed = capsys.readouterr().out
    # show_output streams process 0 and says where the others are.
    assert "hello from process 0" in printed and "hello from process 1" not in printed
    assert (
        "Streaming process 0 of 3 (user_logs/std_log_process_00.txt). The other processes' "
        "output is in user_logs/std_log_process_01.txt to user_logs/std_log_process_02.txt"
    ) in printed
    for index in range(3):
        log = read(run, f"user_logs/std_log_process_{index:02d}.txt")
        assert f"hello from process {index}\n" in log and f"stderr of process {index}\n" in log
    # Every process logged "index" twice: all points are kept, each with its process.
    assert sorted(run.get_metrics()["index"]) == [0, 0, 1, 2, 10, 20]
    assert run.get_metrics(process=2) == {"index": [2, 20]}
    history = run.get_metric_history("index", process=1)
    assert [(p.step, p.value) for p in history] == [(0, 1), (1, 10)]  # steps count per process
    # `modelyard run logs` prints process 0's output, or the one --process names.
    workspace.write_config(tmp_path)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "modelyard.cli.main", "run", "logs", run.id, *args]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert "hello from process 0" in cli().stdout
    assert "hello from process 2" in cli("--process", "2").stdout
    wrong = cli("--process", "3")
    assert wrong.returncode == 2 and "has processes 0 to 2 only" in wrong.stderr


def test_tensorflow_processes_get_tf_config_in_the_documented_shape(
    experiment: Experiment,
) -> None:
    est = TensorFlow(
        SCRIPTS,
        "show_env.py",
        distributed_training=TensorflowConfiguration(
            worker_count=2, parameter_server_count=1, chief_count=1
        ),
    )
    run = experiment.submit(est)
    run.wait_for_completion()
    configs = [
        json.loads(json.loads(read(run, f"outputs/env_{i}.json"))["TF_CONFIG"]) for i in range(4)
    ]
    cluster = configs[0]["cluster"]
    assert sorted(cluster) == ["chief", "ps", "worker"]
    assert (len(cluster["chief"]), len(cluster["worker"]), len(cluster["ps"])) == (1, 2, 1)
    addresses = cluster["chief"] + cluster["worker"] + cluster["ps"]
    assert len(set(addresses)) == 4 and all(a.startswith("127.0.0.1:") for a in addresses)
    tasks = [(c["task"]["type"], c["task"]["index"]) for c in configs]
    assert tasks == [("chief", 0), ("worker", 0), ("worker", 1), ("ps", 0)]
    assert all(c["cluster"] == cluster and c["environment"] == "cloud" for c in configs)


def test_metric_batches_carry_their_process_over_the_channel() -> None:
    batch = MetricBatch("loss", SCALAR, "b1", [0.5], [0], [1.0], "", process=2)
    assert decode(encode(batch)) == batch


# -- real frameworks (slow) -------------------------------------------------------------------


@pytest.mark.slow
def test_pytorch_ddp_over_gloo_with_two_processes(experiment: Experiment) -> None:
    est = PyTorch(
        SCRIPTS,
        "torch_ddp.py",
        distributed_training=PyTorchConfiguration(communication_backend="gloo", process_count=2),
    )
    run = experiment.submit(est)
    run.wait_for_completion()
    ranks = [read(run, f"outputs/rank_{r}.txt").split() for r in range(2)]
    assert [r[0] for r in ranks] == ["3.0", "3.0"]  # allreduce of 1 + 2
    assert ranks[0][1] == ranks[1][1]  # identical parameters after one optimiser step
    assert [r[2] for r in ranks] == ["0", "1"]  # LOCAL_RANK


@pytest.mark.slow
def test_tensorflow_multiworker_mirrored_two_workers_end_with_the_same_weights(
    experiment: Experiment,
) -> None:
    est = TensorFlow(
        SCRIPTS,
        "tf_multiworker.py",
        distributed_training=TensorflowConfiguration(worker_count=2, parameter_server_count=0),
    )
    run = experiment.submit(est)
    run.wait_for_completion()
    workers = [read(run, f"outputs/worker_{i}.txt").split() for i in range(2)]
    assert [w[0] for w in workers] == ["2", "2"]  # two replicas in sync
    assert workers[0][1] == workers[1][1]
    assert len(run.get_metrics()["loss"]) == 2


@pytest.mark.slow
def test_tensorflow_parameter_server_strategy_stops_the_servers_at_the_end(
    workspace: Workspace, experiment: Experiment
) -> None:
    est = TensorFlow(
        SCRIPTS,
        "tf_parameter_server.py",
        distributed_training=TensorflowConfiguration(
            worker_count=2, parameter_server_count=1, chief_count=1
        ),
    )
    run = experiment.submit(est)
    processes = pids(workspace, run, 4)
    run.wait_for_completion()
    assert read(run, "outputs/chief.txt") == "6.0 1 2"  # 6 steps, 1 ps, 2 workers
    log = supervisor_log(run)
    assert "process 0 (chief 0) exited with code 0" in log
    assert (
        "stopping process 1 (worker 0), process 2 (worker 1), process 3 (ps 0): the processes "
        "the run waits for have ended"
    ) in log
    assert "ps 0 serving" in read(run, "user_logs/std_log_process_03.txt")
    assert not any(alive(pid) for pid in processes)
