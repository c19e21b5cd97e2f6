"""The distributed variants of the TensorFlow MNIST example, submitted as their submit scripts
do: two workers with MultiWorkerMirroredStrategy, and a chief, two workers and a parameter
server with ParameterServerStrategy."""

from __future__ import annotations

import pytest

from modelyard import Experiment, Workspace
from modelyard.distributed import TensorflowConfiguration
from modelyard.train import TensorFlow
from tests.examples.test_tf_mnist_script import EXAMPLE, load_mnist_data

pytestmark = pytest.mark.slow


@pytest.fixture
def mnist(workspace: Workspace) -> object:
    folder = load_mnist_data().shared_mnist_dir()
    if folder is None:
        pytest.skip("no MNIST sample beside the repository (shared/data/mnist)")
    ds = workspace.get_default_datastore()
    ds.upload(src_dir=str(folder), target_path="mnist", overwrite=True, show_progress=False)
    return ds.path("mnist").as_mount()


def _submit(workspace: Workspace, script: str, config: TensorflowConfiguration, data: object):  # type: ignore[no-untyped-def]
    est = TensorFlow(
        source_directory=str(EXAMPLE),
        entry_script=script,
        script_params={"--data-folder": data, "--batch-size": 50, "--epochs": 1},
        compute_target="local",
        pip_packages=["tf-keras"],
        distributed_training=config,
    )
    run = Experiment(workspace, "tf-mnist-distributed").submit(est)
    run.wait_for_completion()
    return run


def test_multiworker_variant_trains_on_two_workers(workspace: Workspace, mnist: object) -> None:
    config = TensorflowConfiguration(worker_count=2, parameter_server_count=0)
    run = _submit(workspace, "tf_mnist_multiworker.py", config, mnist)
    metrics = run.get_metrics()
    assert metrics["final_acc"] > 0.8 and isinstance(metrics["validation_acc"], float)
    names = run.get_file_names()
    assert "outputs/model/model.keras" in names
    for index in range(2):
        log = run._backend.read_run_file(run.id, f"user_logs/std_log_process_{index:02d}.txt")
        assert f"worker {index}: 2 workers in sync" in log.decode()


def test_parameter_server_variant_follows_the_chief(workspace: Workspace, mnist: object) -> None:
    config = TensorflowConfiguration(worker_count=2, parameter_server_count=1, chief_count=1)
    run = _submit(workspace, "tf_mnist_ps.py", config, mnist)
    assert run.get_metrics()["final_acc"] > 0.8
    assert "outputs/model/model.keras" in run.get_file_names()
    ps_log = run._backend.read_run_file(run.id, "user_logs/std_log_process_03.txt").decode()
    assert "ps 0 serving" in ps_log
    supervisor = run._backend.read_run_file(run.id, "system_logs/supervisor.txt").decode()
    assert "process 3 (ps 0)" in supervisor and "status: Completed" in supervisor
