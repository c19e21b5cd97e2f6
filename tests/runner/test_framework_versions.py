"""v1 environments built for real: conda specifications without conda, curated names, the
PyTorch default with torchvision, Horovod compiled into an environment.

Builds use uv and the machine's package sources; the small ones install wheels the test wrote
(tests/runner/wheels.py). The framework builds are slow: they install torch or TensorFlow (from
uv's cache after the first time) and, for Horovod, compile it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard import Environment, Experiment, Run
from modelyard.distributed import MpiConfiguration
from modelyard.errors import NotFoundError, RunFailedError
from modelyard.runner.envbuild.prepare import find_conda
from modelyard.script_run_config import ScriptRunConfig
from modelyard.train import PyTorch, TensorFlow
from tests.runner.wheels import make_wheel, module_name, unique_name

SCRIPTS = Path(__file__).parent / "scripts"
PYTHON = "3.11"  # the version the test machines' Python is; a conda file pins one


def run_file(run: Run, name: str) -> str:
    try:
        return run._backend.read_run_file(run.id, name, 0, 1 << 30).decode()
    except NotFoundError:
        return ""


def no_conda() -> None:
    if find_conda() is not None:
        pytest.skip("conda is on this machine: conda packages are installed with it")


def test_a_conda_specification_gets_its_pip_section_python_and_conda_packages_from_pypi(
    experiment: Experiment, env_cache: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    no_conda()
    from_pip, from_conda = unique_name(), unique_name("condatwin")
    make_wheel(wheelhouse, from_pip, "2.0")
    make_wheel(wheelhouse, from_conda, "1.4.2")
    spec = tmp_path / "environment.yml"
    spec.write_text(
        "name: project_environment\n"
        "channels:\n  - conda-forge\n"
        "dependencies:\n"
        f"  - python={PYTHON}\n"
        "  - pip\n"
        f"  - {from_conda}=1.4\n"
        "  - pip:\n"
        f"    - {from_pip}==2.0\n"
        "    - azureml-defaults\n"
    )
    with pytest.warns(UserWarning, match="azureml-defaults"):
        env = Environment.from_conda_specification("from-yaml", spec)
    run = experiment.submit(
        ScriptRunConfig(
            SCRIPTS,
            "env_report.py",
            arguments=[module_name(from_pip), module_name(from_conda)],
            environment=env,
        )
    )
    assert run.wait_for_completion()["status"] == "Completed"
    out = run_file(run, "user_logs/std_log.txt")
    assert f"import {module_name(from_pip)}: 2.0" in out
    assert f"import {module_name(from_conda)}: 1.4.2" in out
    assert f"prefix: {env_cache}" in out
    log = run_file(run, "system_logs/environment_build.txt")
    assert f"Python {PYTHON}" in log
    assert f"{from_conda}=1.4 -> {from_conda}==1.4.*" in log  # the mapping, in the build log
    assert "azureml-defaults" not in log


def test_a_conda_package_with_no_pypi_twin_fails_the_build_naming_it(
    experiment: Experiment, env_cache: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    no_conda()
    there, missing = unique_name(), unique_name("condaonly")
    make_wheel(wheelhouse, there, "1.0")
    spec = tmp_path / "environment.yml"
    spec.write_text(f"dependencies:\n  - {there}\n  - {missing}=3.1\n")
    env = Environment.from_conda_specification("conda-only", spec)
    run = experiment.submit(ScriptRunConfig(SCRIPTS, "env_report.py", environment=env))
    with pytest.raises(RunFailedError):
        run.wait_for_completion(raise_on_error=True)
    error = run.get_details()["error"]
    assert error["field"] == "conda_packages"
    assert f"conda package(s) {missing}=3.1 have no PyPI package" in error["message"]
    assert "conda, mamba or micromamba" in error["message"]
    log = run_file(run, "system_logs/environment_build.txt")
    assert f"{there} -> {there}" in log and f"{missing}=3.1 -> {missing}==3.1.*: not" in log
    assert not [path for path in env_cache.glob("*") if path.is_symlink()]  # none published


@pytest.mark.slow
def test_a_curated_scikit_learn_environment_builds_and_runs(
    experiment: Experiment, env_cache: Path, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "fit.py").write_text(
        "import sklearn, pandas\n"
        "from sklearn.linear_model import LinearRegression\n"
        "frame = pandas.DataFrame({'x': [0.0, 1.0, 2.0], 'y': [1.0, 3.0, 5.0]})\n"
        "model = LinearRegression().fit(frame[['x']], frame['y'])\n"
        "print('sklearn', sklearn.__version__, 'slope', round(float(model.coef_[0]), 3))\n"
    )
    env = Environment.get(experiment.workspace, "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu")
    run = experiment.submit(ScriptRunConfig(source, "fit.py", environment=env))
    assert run.wait_for_completion()["status"] == "Completed"
    out = run_file(run, "user_logs/std_log.txt")
    assert "sklearn 1.9." in out and "slope 2.0" in out
    assert run.get_environment().name == "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu"


@pytest.mark.slow
def test_the_pytorch_default_environment_runs_torchvision_operators(
    experiment: Experiment, tmp_path: Path
) -> None:
    # The session's environment cache: the Horovod-free framework build is shared with any
    # other PyTorch() test of the session.
    source = tmp_path / "src"
    source.mkdir()
    (source / "nms.py").write_text(
        "import numpy, torch, torchvision\n"
        "from torchvision.ops import nms\n"
        "boxes = torch.from_numpy(numpy.array([[0, 0, 1, 1], [0, 0, 1.1, 1.1], [5, 5, 6, 6]],"
        " dtype=numpy.float32))\n"
        "kept = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)\n"
        "print('versions', torch.__version__, torchvision.__version__, numpy.__version__)\n"
        "print('kept', kept.tolist())\n"
    )
    run = experiment.submit(PyTorch(source, "nms.py"))
    assert run.wait_for_completion()["status"] == "Completed", run_file(
        run, "system_logs/environment_build.txt"
    )
    out = run_file(run, "user_logs/std_log.txt")
    assert "kept [0, 2]" in out
    assert "versions 2.14.1" in out and " 0.29.1" in out


@pytest.mark.slow
def test_a_horovod_allreduce_over_mpi_in_an_environment_that_compiles_it(
    experiment: Experiment, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "allreduce.py").write_text(
        "import horovod.tensorflow as hvd\n"
        "import tensorflow as tf\n"
        "from modelyard import Run\n"
        "hvd.init()\n"
        "total = hvd.allreduce(tf.constant(float(hvd.rank() + 1)), op=hvd.Sum)\n"
        "print('rank', hvd.rank(), 'of', hvd.size(), 'sum', float(total.numpy()))\n"
        "Run.get_context().log('sum', float(total.numpy()))\n"
    )
    est = TensorFlow(
        source,
        "allreduce.py",
        framework_version="2.12",
        pip_packages=["horovod==0.28.1"],
        distributed_training=MpiConfiguration(process_count_per_node=2),
    )
    run = experiment.submit(est)
    assert run.wait_for_completion()["status"] == "Completed", run_file(
        run, "system_logs/environment_build.txt"
    )
    log = run_file(run, "system_logs/environment_build.txt")
    assert "HOROVOD_WITH_TENSORFLOW=1" in log and "HOROVOD_WITH_MPI=1" in log
    outputs = [run_file(run, f"user_logs/std_log_process_{n:02d}.txt") for n in range(2)]
    assert all("of 2 sum 3.0" in out for out in outputs), outputs
    assert run.get_metrics(process=0)["sum"] == 3.0
