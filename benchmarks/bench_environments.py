"""Run environments: Preparing with a cached environment, and a cold build.

1. **Preparing for an environment already in the cache** (target: at most 0.1 s). A run
   builds the environment once; then runs with the same environment are submitted one after
   the other, and each supervisor's own timer ("prepared in X s" in
   ``system_logs/supervisor.txt``: from entering Preparing to being ready to start) is read.
2. **A cold build** of the same package set (the run's packages plus the modelyard client's
   requirements, which every built environment holds), side by side: modelyard's builder
   (``uv venv`` + ``uv pip install``) against ``python -m venv`` + ``pip install -r``, both
   reading the machine's pip configuration. Measured twice: with the installers' download
   caches warm (the usual case on a machine that built anything before) and cold (each given
   an empty cache folder). The ratio is pip's time over modelyard's.

Run: .venv/bin/python benchmarks/bench_environments.py
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modelyard import Environment, Experiment, Workspace
from modelyard.compute.local import stop_agent
from modelyard.runner.envbuild import EnvironmentCache, prepare_environment
from modelyard.runner.envbuild.requirements import client_requirements
from modelyard.runner.job import JobSpec
from modelyard.script_run_config import ScriptRunConfig

PACKAGES = ["requests", "pyyaml", "tabulate", "humanize", "toolz", "arrow"]
CACHED_RUNS = 10
COLD_REPEATS = 2
TARGET_PREPARING_S = 0.1


def preparing_with_a_cached_environment(tmp: Path) -> list[float]:
    source = tmp / "src"
    source.mkdir()
    (source / "train.py").write_text("import tabulate, yaml\nprint('ready')\n")
    ws = Workspace.create("bench", folder=tmp / "ws")
    exp = Experiment(ws, "environments")
    config = ScriptRunConfig(
        source, "train.py", environment=Environment("bench-env", pip_packages=PACKAGES)
    )
    exp.submit(config).wait_for_completion()  # builds it, and starts the agent: not measured
    times = []
    for _ in range(CACHED_RUNS):
        run = exp.submit(config)
        run.wait_for_completion()
        log = ws._backend.read_run_file(run.id, "system_logs/supervisor.txt").decode()
        found = re.search(r"prepared in ([\d.]+) s: environment", log)
        if found is None:
            raise SystemExit(f"no cached environment in run {run.id}:\n{log}")
        times.append(float(found.group(1)))
    stop_agent(ws.folder)
    return times


def modelyard_build(tmp: Path, label: str) -> float:
    cache = EnvironmentCache(tmp / f"envs-{label}")
    started = time.perf_counter()
    prepared = prepare_environment(
        JobSpec(script="x.py", pip_packages=PACKAGES),
        log=lambda text: None,
        poll=lambda: None,
        on_process=lambda pgid: None,
        cache=cache,
    )
    elapsed = time.perf_counter() - started
    assert prepared.built and prepared.lease is not None
    prepared.lease.close()
    return elapsed


def venv_and_pip_build(tmp: Path, label: str) -> float:
    requirements = tmp / "requirements.txt"
    requirements.write_text("\n".join([*PACKAGES, *client_requirements()]) + "\n")
    target = tmp / f"venv-{label}"
    python = getattr(sys, "_base_executable", None) or sys.executable
    started = time.perf_counter()
    for command in (
        [python, "-m", "venv", str(target)],
        [str(target / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(requirements)],
    ):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{command} failed:\n{done.stdout}{done.stderr}")
    return time.perf_counter() - started


def cold_builds(tmp: Path, caches: str) -> tuple[float, float]:
    """Median seconds of (modelyard, venv + pip) over COLD_REPEATS builds each."""
    ours, theirs = [], []
    for repeat in range(COLD_REPEATS):
        label = f"{caches}-{repeat}"
        saved = {name: os.environ.get(name) for name in ("UV_CACHE_DIR", "PIP_CACHE_DIR")}
        if caches == "cold":
            os.environ["UV_CACHE_DIR"] = str(tmp / f"uv-cache-{label}")
            os.environ["PIP_CACHE_DIR"] = str(tmp / f"pip-cache-{label}")
        try:
            ours.append(modelyard_build(tmp, label))
            theirs.append(venv_and_pip_build(tmp, label))
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return statistics.median(ours), statistics.median(theirs)


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ["MODELYARD_ENV_CACHE"] = str(tmp / "run-envs")
        times = preparing_with_a_cached_environment(tmp)
        median = statistics.median(times)
        verdict = "ok" if max(times) <= TARGET_PREPARING_S else "SLOWER THAN TARGET"
        print(
            f"Preparing with the environment in the cache, {CACHED_RUNS} runs: median "
            f"{median * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, max "
            f"{max(times) * 1000:.0f} ms (target <= {TARGET_PREPARING_S * 1000:.0f} ms: "
            f"{verdict})"
        )
        total = len(PACKAGES) + len(client_requirements())
        print(
            f"Cold build of {', '.join(PACKAGES)} + the client's {len(client_requirements())} "
            f"requirements ({total} requirements, with their dependencies), median of "
            f"{COLD_REPEATS}:"
        )
        for caches in ("warm", "cold"):
            ours, theirs = cold_builds(tmp, caches)
            print(
                f"  download caches {caches}: modelyard (uv) {ours:.2f} s, python -m venv + "
                f"pip install {theirs:.2f} s: {theirs / ours:.1f}x faster"
            )


if __name__ == "__main__":
    main()
