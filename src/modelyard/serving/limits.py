"""A scoring service's CPU and memory limits (``AciWebservice``'s ``cpu_cores`` and
``memory_gb``), kept by the service's own process.

No container holds a local service, and a user need not be root, so the limits are those a
process can keep on itself:

- ``cpu_cores``: the service's processes run on ``ceil(cpu_cores)`` of the CPUs it may use
  (``sched_setaffinity``, inherited by uvicorn's workers), so a busy service leaves the
  machine's other CPUs to the rest. Services are spread over the CPUs by port, so that two
  one-core services do not share a CPU while another sits idle.
- ``memory_gb``: a thread of the service's main process adds up the resident memory of its
  process group every :data:`WATCH_INTERVAL_S`; over the limit, it writes why to the
  service's failed file and kills the group, as a container is killed when it runs out of its
  memory. The service then shows Failed, and ``get_logs()`` and ``wait_for_deployment()`` say
  how much it used.

Example::

    settings = ServiceSettings(..., cpu_cores=1, memory_gb=0.5)
    apply_cpu_limit(settings.cpu_cores, settings.port)   # this process and its children
    start_memory_watch(settings.memory_gb, Path(settings.failed_file))
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

from modelyard.runner.process_identity import group_members

WATCH_INTERVAL_S = 0.5
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def cpus_for(cpu_cores: float, allowed: set[int], port: int) -> set[int]:
    """The ``ceil(cpu_cores)`` CPUs of ``allowed`` a service on ``port`` runs on (all of them
    when it asks for as many or more).

    Example::

        cpus_for(1.5, {0, 1, 2, 3}, port=6789)     # {1, 2}
    """
    ordered = sorted(allowed)
    count = min(len(ordered), max(1, math.ceil(cpu_cores)))
    first = port % len(ordered)
    return {ordered[(first + step) % len(ordered)] for step in range(count)}


def apply_cpu_limit(cpu_cores: float | None, port: int) -> None:
    """Run this process (and the workers it starts) on :func:`cpus_for` its CPUs."""
    if cpu_cores is None or not hasattr(os, "sched_setaffinity"):
        return
    os.sched_setaffinity(0, cpus_for(cpu_cores, os.sched_getaffinity(0), port))


def group_rss_bytes(group: int) -> int:
    """The resident memory of the processes of ``group``, in bytes."""
    total = 0
    for pid in group_members(group):
        try:
            with open(f"/proc/{pid}/statm", "rb") as statm:
                total += int(statm.read().split()[1]) * _PAGE_BYTES
        except (OSError, IndexError, ValueError):
            continue  # it ended meanwhile
    return total


def start_memory_watch(memory_gb: float | None, failed_file: Path) -> threading.Thread | None:
    """Watch this process group's memory in a daemon thread; over ``memory_gb`` GB, record why
    in ``failed_file`` and kill the group."""
    if memory_gb is None:
        return None
    limit = int(memory_gb * 1024**3)
    group = os.getpgrp()

    def watch() -> None:
        while True:
            used = group_rss_bytes(group)
            if used > limit:
                reason = (
                    f"the service used {used / 1024**3:.2f} GB of memory, over its memory_gb "
                    f"limit of {memory_gb:g}: it was stopped. Deploy it with a larger "
                    "memory_gb (AciWebservice.deploy_configuration(memory_gb=...)), or make "
                    "init() and run() hold less\n"
                )
                print(reason, file=sys.stderr, flush=True)
                failed_file.write_text(reason)
                os.killpg(group, signal.SIGKILL)
            time.sleep(WATCH_INTERVAL_S)

    thread = threading.Thread(target=watch, name="memory-limit", daemon=True)
    thread.start()
    return thread
