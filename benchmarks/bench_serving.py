"""Scoring one MNIST image: a modelyard service (``Model.deploy``) against a bare FastAPI app
calling the same ``run()`` (the overhead floor) and against MLflow's ``mlflow models serve`` of
the same model, with 1 and 8 concurrent clients.

The model is a 784-64-10 network in NumPy with fixed random weights, answering the 10 scores of
each image (what it computes is the same on every side; the benchmark measures what is around
it). All three servers are uvicorn with one worker on 127.0.0.1, without an access log, the
model called in a thread pool:

- modelyard: ``Model.deploy`` of an entry script whose ``run()`` computes the scores, posted
  ``{"data": [[...784 values...]]}`` at ``/score``;
- bare FastAPI: the same entry script's ``run()`` in a FastAPI route, posted the same body;
- MLflow: the same weights file as an MLflow pyfunc model (a ``PythonModel`` whose
  ``load_context`` loads it and whose ``predict`` computes the same scores), saved with
  ``mlflow.pyfunc.save_model`` and served by ``mlflow models serve --env-manager local
  --workers 1`` (MLflow 3's scoring server: FastAPI on uvicorn, ``predict`` in a thread),
  posted ``{"inputs": [[...784 values...]]}`` at ``/invocations``. MLflow runs from its own
  virtual environment, made on the first run (benchmarks/mlflow_env.py); it is no dependency
  of modelyard.

Before the clock starts, each side's answer to the image must be the same 10 scores. Each
client is a thread with its own keep-alive ``httpx.Client``, posting one image (a real MNIST
test image when ``shared/data/mnist`` is found, else a random one) per request.

Printed for each side and client count: requests/s, p50 and p99 latency (ms), medians of
``--rounds`` trials (the order of the sides turned round each trial), and the ratios
modelyard / bare and modelyard / MLflow (requests/s: lower is slower; latency: higher is
slower).

Run: .venv/bin/python benchmarks/bench_serving.py [--requests 2000] [--clients 1 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from mlflow_env import mlflow_python

from modelyard import Workspace
from modelyard.hosts import free_port
from modelyard.model import InferenceConfig, Model
from modelyard.webservice import LocalWebservice

SCORE = """
import json
import os

import numpy as np

weights = None


def init():
    global weights
    # Read whole now: an NpzFile reads each array lazily, which threads must not share.
    with np.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "mlp.npz")) as arrays:
        weights = dict(arrays)


def run(raw_data):
    x = np.array(json.loads(raw_data)["data"], dtype=np.float32)
    hidden = np.maximum(x @ weights["w1"] + weights["b1"], 0)
    return (hidden @ weights["w2"] + weights["b2"]).tolist()
"""

BARE = """
import os
import sys

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

sys.path.insert(0, os.environ["SOURCE"])
import score

score.init()
app = FastAPI()


@app.post("/score")
async def scoring(request: Request):
    raw = (await request.body()).decode()
    return await run_in_threadpool(score.run, raw)


@app.get("/")
async def health():
    return "Healthy"
"""

# Run by the MLflow environment's python: SAVE_MLFLOW_MODEL MODEL_FOLDER WEIGHTS_FILE.
SAVE_MLFLOW_MODEL = """
import sys

import mlflow.pyfunc
import numpy as np


class MLP(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        with np.load(context.artifacts["weights"]) as arrays:
            self.weights = dict(arrays)

    def predict(self, context, model_input, params=None):
        w = self.weights
        x = np.asarray(model_input, dtype=np.float32)
        hidden = np.maximum(x @ w["w1"] + w["b1"], 0)
        return (hidden @ w["w2"] + w["b2"]).tolist()


# Requirements given: with --env-manager local none is installed, and without them MLflow
# would infer them by loading the model in a subprocess.
mlflow.pyfunc.save_model(
    sys.argv[1], python_model=MLP(), artifacts={"weights": sys.argv[2]}, pip_requirements=["numpy"]
)
"""


def one_image() -> list[float]:
    for parent in Path(__file__).resolve().parents:
        images = parent / "shared" / "data" / "mnist" / "t10k-images-idx3-ubyte.gz"
        if images.is_file():
            data = gzip.decompress(images.read_bytes())
            return (np.frombuffer(data, np.uint8, offset=16)[:784] / 255.0).tolist()
    return np.random.default_rng(0).random(784).tolist()


def load(url: str, body: bytes, clients: int, requests: int) -> tuple[float, list[float]]:
    """requests/s and the latencies (s) of ``requests`` posts by ``clients`` threads."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = requests // clients
    headers = {"Content-Type": "application/json"}

    def client() -> None:
        mine = []
        with httpx.Client(timeout=60) as http:
            for _ in range(per_client):
                started = time.perf_counter()
                response = http.post(url, content=body, headers=headers)
                mine.append(time.perf_counter() - started)
                response.raise_for_status()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies) / (time.perf_counter() - started), latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1]


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path | None = None) -> None:
    """Poll ``url`` until it answers 200; raise if ``process`` ends or 120 s pass first."""
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            where = f"; see {log}" if log else ""
            raise RuntimeError(f"the server for {url} did not start{where}")
        time.sleep(0.1)


def serve_mlflow(root: Path, port: int) -> subprocess.Popen[bytes]:
    """``mlflow models serve`` of the network in ``root / "mlp.npz"``, saved as a pyfunc model,
    on 127.0.0.1:``port`` with one uvicorn worker; answering when this returns."""
    python = mlflow_python()
    model = root / "mlflow-model"
    saved = subprocess.run(
        [python, "-c", SAVE_MLFLOW_MODEL, str(model), str(root / "mlp.npz")],
        capture_output=True,
        text=True,
    )
    if saved.returncode != 0:
        raise RuntimeError(f"saving the MLflow model failed:\n{saved.stderr[-2000:]}")
    log = root / "mlflow.log"
    command = [python, "-m", "mlflow", "models", "serve", "-m", str(model), "-h", "127.0.0.1"]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, "-p", str(port), "--env-manager", "local", "--workers", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                # MLflow starts its server as the `uvicorn` found on PATH: its environment's.
                "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}",
                # No access log, as on the other sides (uvicorn reads UVICORN_* variables).
                "UVICORN_ACCESS_LOG": "false",
            },
            # `mlflow` stays the parent of uvicorn: a group of their own ends both at once.
            start_new_session=True,
        )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", process, log)
    except BaseException:
        stop_group(process)
        raise
    return process


def stop_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=60)


def scores(side: str, url: str, body: bytes) -> np.ndarray:
    """The scores that ``side`` answers for ``body``: shape (1, 10) when it is right."""
    answer = httpx.post(url, content=body, headers={"Content-Type": "application/json"})
    answer.raise_for_status()
    parsed = answer.json()
    return np.asarray(parsed["predictions"] if side == "MLflow" else parsed, dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=3, help="Trials per side; medians shown.")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    rng = np.random.default_rng(0)
    np.savez(
        root / "mlp.npz",
        w1=rng.normal(size=(784, 64)).astype(np.float32),
        b1=np.zeros(64, np.float32),
        w2=rng.normal(size=(64, 10)).astype(np.float32),
        b2=np.zeros(10, np.float32),
    )
    source = root / "source"
    source.mkdir()
    (source / "score.py").write_text(SCORE)
    (root / "bare.py").write_text(BARE)
    image = one_image()
    bodies = {
        "modelyard": json.dumps({"data": [image]}).encode(),
        "MLflow": json.dumps({"inputs": [image]}).encode(),
    }
    with contextlib.ExitStack() as cleanup:
        mlflow_port = free_port("127.0.0.1")
        cleanup.callback(stop_group, serve_mlflow(root, mlflow_port))
        ws = Workspace.create("bench", folder=root / "ws")
        model = Model.register(ws, root / "mlp.npz", "mlp")
        service = Model.deploy(
            ws,
            "bench-svc",
            [model],
            InferenceConfig(entry_script="score.py", source_directory=source),
            LocalWebservice.deploy_configuration(),
        )
        cleanup.callback(service.delete)
        port = free_port("127.0.0.1")
        # Its start and stop lines would mix with the figures (the service logs to a file).
        quiet = ["--no-access-log", "--log-level", "warning"]
        bare = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bare:app", "--port", str(port), *quiet],
            cwd=root,
            env={**os.environ, "SOURCE": str(source), "AZUREML_MODEL_DIR": str(root)},
        )
        cleanup.callback(bare.wait)
        cleanup.callback(bare.terminate)
        service.wait_for_deployment()
        wait_until_up(f"http://127.0.0.1:{port}/", bare)
        sides = {
            "modelyard": (service.scoring_uri, bodies["modelyard"]),
            "bare FastAPI": (f"http://127.0.0.1:{port}/score", bodies["modelyard"]),
            "MLflow": (f"http://127.0.0.1:{mlflow_port}/invocations", bodies["MLflow"]),
        }
        expected = scores("modelyard", *sides["modelyard"])
        if expected.shape != (1, 10):
            raise RuntimeError(f"modelyard answered {expected.tolist()}, not 10 scores")
        for side, (url, body) in sides.items():
            # The figures compare like with like only while every side computes the same.
            answered = scores(side, url, body)
            if answered.shape != expected.shape or not np.allclose(answered, expected, rtol=1e-5):
                raise RuntimeError(
                    f"{side} answered {answered.tolist()}, modelyard {expected.tolist()}"
                )
            load(url, body, 1, 100)  # warm up
        print(
            f"{args.requests} requests of one image each, per side and client count; "
            f"medians of {args.rounds} rounds"
        )
        for clients in args.clients:
            trials: dict[str, list[tuple[float, float, float]]] = {side: [] for side in sides}
            for trial in range(args.rounds):
                # Turning the order round each trial: this machine's load changes by the second.
                order = list(sides) if trial % 2 == 0 else list(reversed(sides))
                for side in order:
                    rate, latencies = load(*sides[side], clients, args.requests)
                    trials[side].append(
                        (rate, percentile(latencies, 50), percentile(latencies, 99))
                    )
            results = {}
            for side, values in trials.items():
                rate, p50, p99 = (statistics.median(v[i] for v in values) for i in range(3))
                results[side] = (rate, p50, p99)
                print(
                    f"  {clients} client(s)  {side:<13} {rate:8.0f} req/s  "
                    f"p50 {p50 * 1e3:6.2f} ms  p99 {p99 * 1e3:6.2f} ms"
                )
            ours = results["modelyard"]
            for label, side in (("bare", "bare FastAPI"), ("MLflow", "MLflow")):
                theirs = results[side]
                print(
                    f"  {clients} client(s)  modelyard / {label}: "
                    f"req/s {ours[0] / theirs[0]:.2f}, p50 {ours[1] / theirs[1]:.2f}, "
                    f"p99 {ours[2] / theirs[2]:.2f}"
                )


if __name__ == "__main__":
    main()
