"""The web UI's speed: how soon a run page with a 1,000,000-point metric shows its chart, and
the bytes the browser downloads for it, against MLflow's UI showing the same metric.

Both UIs serve a SQLite store on this machine; one headless Chromium (Debian's, through
Playwright) opens each page with a fresh cache. Measured per page: first contentful paint
(the browser's own mark), the time until the chart is drawn (modelyard: the chart's canvas
with all 1,000,000 points counted; MLflow: the plotted line of the chart on its run page's
Model metrics tab), and the bytes received
(headers and bodies). The first load is cold (the UI reads the series from the store); the
median of the next ones is warm. The target: the chart in under 1 s.

MLflow runs from a virtual environment of its own, made on the first run
(benchmarks/mlflow_env.py), so that its requirements never change this project's;
``--without-mlflow`` leaves its half out. MLflow's store is filled by its own client for the
run and its first point, then the other points go in with one SQL insert (its ``log_batch``
takes about 2 minutes for 1,000,000 points here: DESIGN.md, section 7).

Run: .venv/bin/python benchmarks/bench_ui.py [--without-mlflow]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from mlflow_env import mlflow_python

from modelyard import Experiment, Workspace
from modelyard.hosts import free_port

POINTS = 1_000_000
REPEATS = 4
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
TIMEOUT_MS = 120_000
QUIET_S = 1.0
SETTLE_S = 10.0

MLFLOW_FILL = """\
import sqlite3, sys, time
import mlflow
db, points = sys.argv[1], int(sys.argv[2])
mlflow.set_tracking_uri(f"sqlite:///{db}")
experiment = mlflow.create_experiment("bench")
with mlflow.start_run(experiment_id=experiment) as run:
    mlflow.log_metric("loss", 0.0, step=0)
    run_id = run.info.run_id
start = int(time.time() * 1000)
rows = ((
    "loss", float(((i * 7919) % 1000) / 1000.0), start + i, run_id, i, 0
) for i in range(1, points))
with sqlite3.connect(db) as connection:
    connection.executemany(
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
        "VALUES (?, ?, ?, ?, ?, ?)", rows)
    connection.execute(
        "UPDATE latest_metrics SET value = ?, step = ?, timestamp = ? WHERE run_uuid = ?",
        (((points - 1) * 7919 % 1000) / 1000.0, points - 1, start + points - 1, run_id))
print(experiment, run_id)
"""


def _wait_for_port(port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on port {port} within {timeout} s")


def _values() -> list[float]:
    # The same shape in both stores: a saw of 1,000 levels, so the extremes matter.
    return (((np.arange(POINTS) * 7919) % 1000) / 1000.0).tolist()


def _load(browser: Any, cookies: list[dict[str, Any]], url: str, ready: str) -> dict[str, float]:
    """One page load in a fresh context (an empty cache): times in s, bytes received."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_cookies(cookies)
    page = context.new_page()
    received = [0]
    last = [time.perf_counter()]

    def count(request: Any) -> None:
        sizes = request.sizes()
        received[0] += sizes["responseBodySize"] + sizes["responseHeadersSize"]
        last[0] = time.perf_counter()

    page.on("requestfinished", count)
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(ready, timeout=TIMEOUT_MS, state="attached")
    chart = time.perf_counter() - start
    paint = page.evaluate(
        "() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || 0"
    )
    # The bytes of the page once it is quiet: no response for QUIET_S (MLflow's page polls
    # for as long as it is open, so "network idle" never comes; SETTLE_S at most).
    settle_until = time.perf_counter() + SETTLE_S
    while time.perf_counter() - last[0] < QUIET_S and time.perf_counter() < settle_until:
        page.wait_for_timeout(100)
    context.close()
    return {"chart_s": chart, "fcp_s": paint / 1000.0, "bytes": float(received[0])}


def _report(name: str, loads: list[dict[str, float]]) -> None:
    cold, warm = loads[0], loads[1:]

    def median(key: str) -> float:
        return statistics.median(load[key] for load in warm)

    print(
        f"{name:<10} cold: first paint {cold['fcp_s']:.3f} s, chart {cold['chart_s']:.3f} s, "
        f"{cold['bytes'] / 1e6:.2f} MB"
    )
    print(
        f"{'':<10} warm (median of {len(warm)}): first paint {median('fcp_s'):.3f} s, "
        f"chart {median('chart_s'):.3f} s, {median('bytes') / 1e6:.2f} MB"
        f"   (target: chart < 1 s: {'ok' if median('chart_s') < 1 else 'SLOWER'})"
    )


def _modelyard(browser: Any, folder: Path) -> list[dict[str, float]]:
    ws = Workspace.create("bench-ui", folder=folder / "ws")
    run = Experiment(ws, "bench").start_logging(display_name="million", outputs=False)
    start = time.perf_counter()
    for value in _values():
        run.log("loss", value)
    run.complete()
    print(f"(setup) modelyard: {POINTS:,} points logged in {time.perf_counter() - start:.1f} s")
    command = [sys.executable, "-m", "modelyard.cli.main", "ui"]
    ui = subprocess.Popen(
        [*command, "--workspace", str(folder / "ws"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert ui.stdout is not None
        url = ui.stdout.readline().split(" at ", 1)[1].strip()
        base, _, token = url.partition("?token=")
        port = int(base.rstrip("/").rsplit(":", 1)[1])
        cookies = [{"name": f"modelyard-ui-{port}", "value": token, "url": base, "httpOnly": True}]
        ready = "[data-metric=loss][data-points='1000000'] canvas"
        return [_load(browser, cookies, f"{base}runs/{run.id}", ready) for _ in range(REPEATS)]
    finally:
        ui.send_signal(signal.SIGTERM)
        ui.wait(timeout=30)


def _mlflow(browser: Any, python: Path, folder: Path) -> list[dict[str, float]]:
    db = folder / "mlflow.db"
    start = time.perf_counter()
    filled = subprocess.run(
        [python, "-c", MLFLOW_FILL, str(db), str(POINTS)],
        capture_output=True,
        text=True,
        check=True,
    )
    experiment, run_id = filled.stdout.split()[-2:]
    print(f"(setup) MLflow: {POINTS:,} points stored in {time.perf_counter() - start:.1f} s")
    port = free_port("127.0.0.1")
    command = [python, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}"]
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_port(port)
        base = f"http://127.0.0.1:{port}"
        # The run page's metric charts (Model metrics), as the modelyard run page shows them.
        url = f"{base}/#/experiments/{experiment}/runs/{run_id}/model-metrics"
        ready = ".js-plotly-plot path.js-line"
        return [_load(browser, [], url, ready) for _ in range(REPEATS)]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--without-mlflow", action="store_true", help="modelyard's UI only")
    args = parser.parse_args()
    # Made (on the first run) before the browser starts: the install prints its progress.
    python = None if args.without_mlflow else mlflow_python()
    with (
        tempfile.TemporaryDirectory() as tmp,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _report("modelyard", _modelyard(browser, Path(tmp)))
        if python is not None:
            _report("MLflow", _mlflow(browser, python, Path(tmp)))
        browser.close()


if __name__ == "__main__":
    main()
