"""Scoring one MNIST image: a modelyard service (``Model.deploy``) against a bare FastAPI app
calling the same ``run()`` (the overhead floor), with 1 and 8 concurrent clients.

The model is a 784-64-10 network in NumPy with fixed random weights (what it computes is the
same on both sides; the benchmark measures what is around it). Both servers are uvicorn with
one worker on 127.0.0.1, ``run()`` called in the thread pool. Each client is a thread with its
own keep-alive ``httpx.Client``, posting one image (a real MNIST test image when
``shared/data/mnist`` is found, else a random one) as ``{"data": [[...784 values...]]}``.

Printed for each side and client count: requests/s, p50 and p99 latency (ms), medians of
``--rounds`` alternating trials, and the ratios modelyard / bare (requests/s: lower is
slower; latency: higher is slower).

Run: .venv/bin/python benchmarks/bench_serving.py [--requests 2000] [--clients 1 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from modelyard import Workspace
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
    return (hidden @ weights["w2"] + weights["b2"]).argmax(axis=1).tolist()
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
    body = json.dumps({"data": [one_image()]}).encode()

    ws = Workspace.create("bench", folder=root / "ws")
    model = Model.register(ws, root / "mlp.npz", "mlp")
    service = Model.deploy(
        ws,
        "bench-svc",
        [model],
        InferenceConfig(entry_script="score.py", source_directory=source),
        LocalWebservice.deploy_configuration(),
    )
    port = free_port()
    bare = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare:app", "--port", str(port), "--no-access-log"],
        cwd=root,
        env={**os.environ, "SOURCE": str(source), "AZUREML_MODEL_DIR": str(root)},
    )
    try:
        service.wait_for_deployment()
        bare_url = f"http://127.0.0.1:{port}/score"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        sides = {"modelyard": service.scoring_uri, "bare FastAPI": bare_url}
        for url in sides.values():
            load(url, body, 1, 100)  # warm up both
        print(
            f"{args.requests} requests of one image each, per side and client count; "
            f"medians of {args.rounds} rounds"
        )
        for clients in args.clients:
            trials: dict[str, list[tuple[float, float, float]]] = {side: [] for side in sides}
            for trial in range(args.rounds):
                # Alternating which side goes first: this machine's load changes by the second.
                order = list(sides) if trial % 2 == 0 else list(reversed(sides))
                for side in order:
                    rate, latencies = load(sides[side], body, clients, args.requests)
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
            (mr, m50, m99), (br, b50, b99) = results["modelyard"], results["bare FastAPI"]
            print(
                f"  {clients} client(s)  modelyard / bare: req/s {mr / br:.2f}, "
                f"p50 {m50 / b50:.2f}, p99 {m99 / b99:.2f}"
            )
    finally:
        service.delete()
        bare.terminate()
        bare.wait()


if __name__ == "__main__":
    main()
