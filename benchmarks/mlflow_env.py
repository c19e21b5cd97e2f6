"""MLflow for the benchmarks that compare with it, in a virtual environment of its own.

MLflow is no dependency of modelyard: MLflow 3.17 pins versions of SQLAlchemy, Alembic, FastAPI
and others that the project's own environment must not be made to follow. The first benchmark
that needs it makes the environment with uv (a dependency of modelyard) under
``~/.cache/modelyard-bench/mlflow``, on the interpreter that runs the benchmark; the others
reuse it. It holds MLflow, psycopg for ``mlflow server`` on PostgreSQL (bench_server.py) and
NumPy for the pyfunc model that ``mlflow models serve`` scores (bench_serving.py). When
``PACKAGES`` changes, the next run makes it anew.

Example, from a benchmark in this folder (run as ``.venv/bin/python benchmarks/bench_x.py``,
so that this folder is on ``sys.path``)::

    from mlflow_env import mlflow_python

    subprocess.run([mlflow_python(), "-m", "mlflow", "--version"], check=True)

Run ``.venv/bin/python benchmarks/mlflow_env.py`` to make the environment ahead of time; it
prints the path of its python.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

MLFLOW_VENV = Path.home() / ".cache" / "modelyard-bench" / "mlflow"
MLFLOW = "mlflow==3.17.*"
PACKAGES = (MLFLOW, "psycopg[binary]", "numpy")
# Written last, with PACKAGES: an environment whose install was cut short, or made for other
# packages, is made again rather than half used.
_MADE = MLFLOW_VENV / ".modelyard-bench-packages"


def mlflow_python() -> Path:
    """The python of the MLflow environment, made first if it is missing or out of date.

    Raises RuntimeError, saying what failed, when uv cannot be found or cannot make it.
    """
    python = MLFLOW_VENV / "bin" / "python"
    wanted = "\n".join(PACKAGES) + "\n"
    if python.exists() and _MADE.is_file() and _MADE.read_text() == wanted:
        return python
    beside = Path(sys.executable).parent / "uv"
    uv = str(beside) if beside.is_file() else shutil.which("uv")
    if uv is None:
        raise RuntimeError(
            "uv not found beside this python nor on PATH: run the benchmark with the project's "
            "environment (.venv/bin/python), where uv is installed with modelyard"
        )
    print(f"(setup) making {MLFLOW_VENV} with {', '.join(PACKAGES)}", flush=True)
    MLFLOW_VENV.parent.mkdir(parents=True, exist_ok=True)
    steps = (
        [uv, "venv", "-q", "--clear", "--python", sys.executable, str(MLFLOW_VENV)],
        [uv, "pip", "install", "-q", "--python", str(python), *PACKAGES],
    )
    for step in steps:
        if subprocess.run(step).returncode != 0:
            raise RuntimeError(
                f"could not make the MLflow environment at {MLFLOW_VENV} "
                f"({' '.join(step[:3])} failed, its error is above): check that the package "
                "registry is reachable, then run the benchmark again"
            )
    _MADE.write_text(wanted)
    return python


if __name__ == "__main__":
    print(mlflow_python())
