"""``python -m modelyard.serving SETTINGS_FILE``: serve one deployed model until stopped."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import uvicorn

from modelyard.serving.limits import apply_cpu_limit, start_memory_watch
from modelyard.serving.settings import SETTINGS_ENV, ServiceSettings


def main() -> None:
    path = Path(sys.argv[1]).resolve()
    settings = ServiceSettings.read(path)
    os.environ[SETTINGS_ENV] = str(path)
    apply_cpu_limit(settings.cpu_cores, settings.port)
    start_memory_watch(settings.memory_gb, Path(settings.failed_file))
    uvicorn.run(
        "modelyard.serving.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        lifespan="on",
        log_level="info",
        # A line per request would grow the log without end and cost about a third of the
        # throughput of one client (benchmarks/bench_serving.py); errors are still logged.
        access_log=False,
    )


if __name__ == "__main__":
    main()
