"""The modelyard server under load, against MLflow's tracking server and against s3fs.

Three figures, each with its competitor measured in the same run:

1. **Metric ingest under concurrent runs**: ``--clients`` processes (50), each its own run,
   send ``--points`` points (10,000) in batches of 1,000 at once. modelyard: ``log_metrics``
   through a ``modelyard server`` on PostgreSQL; MLflow: ``POST /api/2.0/mlflow/runs/log-batch``
   (1,000 metrics per call, its limit) to ``mlflow server`` on its own database of the same
   PostgreSQL cluster (tests/postgres.py). Points/s stored (read back and counted: every point
   must be there) and the p50/p99 latency of one batch call.
2. **1 GiB up and down**: one file as a run file through a server whose files are on S3
   (moto's server, tests/s3.py), against s3fs ``put``/``get`` of the same file straight to the
   same endpoint. MiB/s each way.
3. **Submit to first line**: from ``exp.submit`` returning to the script's first line being
   readable by the client, median of ``--runs``, on a server's workspace and on an embedded one
   (both on SQLite and local files, so that only the server's part differs).

MLflow runs from a virtual environment of its own, made on the first run
(benchmarks/mlflow_env.py); nothing of it is in the project's dependencies.

Run: .venv/bin/python benchmarks/bench_server.py [--quick] [--only ingest|submit|transfer]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.*

import httpx
import s3fs
from bench_submit_latency import first_line_latencies
from mlflow_env import mlflow_python

from modelyard import Workspace
from modelyard.backend.records import RUNNING, SCALAR, MetricBatch
from modelyard.backend.remote.backend import RemoteBackend
from modelyard.compute.local import stop_agent
from modelyard.hosts import free_port
from tests.postgres import PostgresServer
from tests.s3 import KEY, SECRET, S3Server
from tests.server_process import ServerProcess

BATCH = 1000
# Worker processes of each server, modelyard's and MLflow's alike.
WORKERS = 4


def _line(label: str, figures: str) -> None:
    print(f"{label:<48} {figures}", flush=True)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# -- 1. metric ingest -------------------------------------------------------------------


def _modelyard_client(args: tuple[str, str, str, str, int], start: Any, out: Any) -> None:
    url, workspace, token, run_id, points = args
    backend = RemoteBackend(url, workspace, token)
    backend.get_run(run_id)  # connected and warm before the clock starts
    latencies = []
    out.put("ready")
    start.wait()
    for first in range(0, points, BATCH):
        values = [float(i) for i in range(first, min(points, first + BATCH))]
        batch = MetricBatch(
            "value", SCALAR, uuid.uuid4().hex, values, list(range(first, first + len(values))),
            [time.time()] * len(values),
        )  # fmt: skip
        began = time.perf_counter()
        backend.log_metrics(run_id, [batch])
        latencies.append(time.perf_counter() - began)
    out.put(latencies)


def _mlflow_client(args: tuple[str, str, int], start: Any, out: Any) -> None:
    url, run_id, points = args
    client = httpx.Client(base_url=url, timeout=300)
    client.get("/health")  # connected before the clock starts
    latencies = []
    out.put("ready")
    start.wait()
    for first in range(0, points, BATCH):
        now = int(time.time() * 1000)
        metrics = [
            {"key": "value", "value": float(i), "timestamp": now, "step": i}
            for i in range(first, min(points, first + BATCH))
        ]
        began = time.perf_counter()
        response = client.post(
            "/api/2.0/mlflow/runs/log-batch", json={"run_id": run_id, "metrics": metrics}
        )
        if response.status_code != 200:
            raise RuntimeError(f"MLflow answered {response.status_code}: {response.text[:500]}")
        latencies.append(time.perf_counter() - began)
    out.put(latencies)


def _race(target: Any, jobs: list[Any]) -> tuple[float, list[float]]:
    """Run ``target`` once per job in processes started together; (wall s, latencies)."""
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    processes = [context.Process(target=target, args=(job, start, out)) for job in jobs]
    for process in processes:
        process.start()
    for _ in processes:  # every process imported and connected before the clock starts
        assert out.get(timeout=600) == "ready"
    began = time.perf_counter()
    start.set()
    latencies: list[float] = []
    for _ in processes:
        latencies.extend(out.get(timeout=1800))
    wall = time.perf_counter() - began
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"a client process failed ({process.exitcode})")
    return wall, latencies


def ingest_modelyard(server: ServerProcess, clients: int, points: int) -> tuple[float, list[float]]:
    workspace = server.new_workspace()
    backend = RemoteBackend(server.url, workspace, server.admin_token)
    runs = [f"ingest_{i}" for i in range(clients)]
    for run_id in runs:
        backend.create_run(run_id, "ingest", run_type="script", status=RUNNING)
    wall, latencies = _race(
        _modelyard_client, [(server.url, workspace, server.admin_token, r, points) for r in runs]
    )
    stored = sum(backend.list_metrics(r)[0].count for r in runs)
    if stored != clients * points:
        raise RuntimeError(f"modelyard stored {stored:,} of {clients * points:,} points")
    return stored / wall, latencies


def _mlflow_pool(clients: int) -> dict[str, str]:
    """A database connection in each MLflow worker for every client it may be serving at once.

    With SQLAlchemy's default pool (5, and 10 more), a call that waits 30 s for a connection
    fails (``QueuePool limit ... reached``), and under 50 clients MLflow's slower batches made
    some wait that long, which ended its side of the benchmark. Sized to the clients, every
    call gets a connection, so the figure is MLflow's speed, not its pool's default."""
    size = -(-clients // WORKERS)
    return {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": str(size)}


def ingest_mlflow(
    database_url: str, clients: int, points: int, folder: Path
) -> tuple[float, list[float]]:
    python = mlflow_python()
    port = free_port("127.0.0.1")
    # MLflow takes a plain postgresql:// URL (its store picks psycopg 3: mlflow_env.PACKAGES).
    uri = database_url.replace("postgresql+psycopg://", "postgresql://")
    log = open(folder / "mlflow.log", "wb")  # noqa: SIM115 - closed with the server below
    process = subprocess.Popen(
        [
            str(python), "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", uri, "--artifacts-destination", str(folder / "artifacts"),
            "--workers", str(WORKERS),
        ],
        stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, **_mlflow_pool(clients)},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"mlflow server did not start; see {folder / 'mlflow.log'}")
            time.sleep(0.5)
        client = httpx.Client(base_url=url, timeout=300)
        experiment = client.post(
            "/api/2.0/mlflow/experiments/create", json={"name": f"ingest-{uuid.uuid4().hex}"}
        ).json()["experiment_id"]
        runs = [
            client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": experiment}).json()[
                "run"
            ]["info"]["run_id"]
            for _ in range(clients)
        ]
        wall, latencies = _race(_mlflow_client, [(url, r, points) for r in runs])
        stored = 0
        for run_id in runs:
            token = None
            while True:
                params: dict[str, Any] = {
                    "run_id": run_id,
                    "metric_key": "value",
                    "max_results": 25000,
                }
                if token:
                    params["page_token"] = token
                page = client.get("/api/2.0/mlflow/metrics/get-history", params=params).json()
                stored += len(page.get("metrics", []))
                token = page.get("next_page_token")
                if not token:
                    break
        if stored != clients * points:
            raise RuntimeError(f"MLflow stored {stored:,} of {clients * points:,} points")
        return stored / wall, latencies
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


# -- 2. a big file up and down ----------------------------------------------------------


def transfer(s3: S3Server, folder: Path, size: int) -> None:
    big = folder / "big.bin"
    with open(big, "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(size >> 20):
            f.write(chunk)
    bucket, _options = s3.new_bucket("yard")
    server = ServerProcess.start(
        folder / "server-s3",
        options=["--storage-url", bucket, "--storage-endpoint-url", s3.endpoint_url],
        env={"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET},
    )
    try:
        backend = RemoteBackend(server.url, server.new_workspace(), server.admin_token)
        backend.create_run("big", "transfer", run_type="script", status=RUNNING)
        began = time.perf_counter()
        backend.upload_run_file("big", "outputs/big.bin", big)
        up = time.perf_counter() - began
        began = time.perf_counter()
        with (
            backend.open_run_file("big", "outputs/big.bin") as stream,
            open(folder / "down.bin", "wb") as out,
        ):
            while chunk := stream.read(8 << 20):
                out.write(chunk)
        down = time.perf_counter() - began
        assert (folder / "down.bin").stat().st_size == size
    finally:
        server.stop()
    fs = s3fs.S3FileSystem(key=KEY, secret=SECRET, client_kwargs={"endpoint_url": s3.endpoint_url})
    target, _ = s3.new_bucket("direct")
    began = time.perf_counter()
    fs.put_file(str(big), f"{target}/big.bin")
    s3_up = time.perf_counter() - began
    began = time.perf_counter()
    fs.get_file(f"{target}/big.bin", str(folder / "down-s3.bin"))
    s3_down = time.perf_counter() - began
    mib = size / (1 << 20)
    for way, ours, theirs in (("upload", up, s3_up), ("download", down, s3_down)):
        _line(
            f"{way} {mib:,.0f} MiB: server",
            f"{mib / ours:8.1f} MiB/s   s3fs {mib / theirs:8.1f} MiB/s"
            f"   ratio {theirs / ours:5.2f}",
        )


# -- 3. submit to first line ------------------------------------------------------------


def first_line(ws: Workspace, source: Path, runs: int) -> float:
    return statistics.median(first_line_latencies(ws, source, runs))


PARTS = ("ingest", "submit", "transfer")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer points, 256 MiB, 5 runs")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--points", type=int, default=None)
    parser.add_argument("--only", choices=PARTS, action="append", help="this figure only")
    options = parser.parse_args()
    parts = options.only or PARTS
    points = options.points or (2_000 if options.quick else 10_000)
    size = (256 if options.quick else 1024) << 20
    runs = 5 if options.quick else 20
    postgres, s3 = PostgresServer.start(), S3Server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            server = ServerProcess.start(
                folder / "server", database_url=postgres.new_database(),
                options=["--workers", str(WORKERS)], port=free_port("127.0.0.1"),
            )  # fmt: skip
            try:
                if "ingest" in parts:
                    ingest(server, postgres, options.clients, points, folder)
            finally:
                server.stop()
            if "submit" in parts:
                submit(folder, runs)
            if "transfer" in parts:
                transfer(s3, folder, size)
    finally:
        postgres.stop()
        s3.stop()


def ingest(
    server: ServerProcess, postgres: PostgresServer, clients: int, points: int, folder: Path
) -> None:
    ours, our_latency = ingest_modelyard(server, clients, points)
    theirs, their_latency = ingest_mlflow(postgres.new_database(), clients, points, folder)
    _line(
        f"ingest, {clients} runs x {points:,} points: modelyard",
        f"{ours:10,.0f} points/s   MLflow {theirs:10,.0f} points/s   ratio {ours / theirs:5.1f}",
    )
    for name, values in (("modelyard", our_latency), ("MLflow", their_latency)):
        _line(
            f"  batch of 1,000, {name}",
            f"p50 {_percentile(values, 0.5) * 1000:7.1f} ms   "
            f"p99 {_percentile(values, 0.99) * 1000:7.1f} ms",
        )


def submit(folder: Path, runs: int) -> None:
    """Both on SQLite and local files: a server as ``modelyard server`` alone starts, and an
    embedded workspace."""
    source = folder / "src"
    source.mkdir()
    (source / "hello.py").write_text("print('first line', flush=True)\n")
    server = ServerProcess.start(folder / "server-sqlite")
    try:
        name = server.new_workspace()
        os.environ["MODELYARD_TOKEN"] = server.member(name, "contributor")
        remote = first_line(Workspace.get(name, server=server.url), source, runs)
    finally:
        server.stop()
    embedded = first_line(Workspace.create("bench", folder=folder / "embedded"), source, runs)
    stop_agent(folder / "embedded")
    _line(
        f"submit -> first line, median of {runs}: server",
        f"{remote:8.3f} s   embedded {embedded:8.3f} s   ratio {remote / embedded:5.2f}",
    )


if __name__ == "__main__":
    main()
