"""Environments: a run's Python packages, built once per content hash, cached, reused.

The local equivalent of v1's docker image build, in the run's Preparing phase:

- ``prepare.py`` decides what a run needs (modelyard's own Python, a user-managed one, or a
  built environment) and computes the content hash;
- ``cache.py`` is the machine-wide cache (``~/.cache/modelyard/envs``, or
  ``$MODELYARD_ENV_CACHE``): atomic publication, one build per key, leases, LRU prune;
- ``builder.py`` builds with uv (or pip, ``MODELYARD_ENV_INSTALLER=pip``, or conda for
  ``conda_packages``) and streams the log;
- ``sources.py`` reads the machine's pip configuration for uv;
- ``interpreters.py`` finds the Pythons present for ``python_version``;
- ``requirements.py`` checks requirement lines, framework defaults, the client's needs;
- ``conda.py`` turns conda packages into their PyPI twins where there is no conda;
- ``horovod.py`` says how Horovod is compiled into an environment, and with what it builds.

The run's build log is ``system_logs/environment_build.txt``; ``RunFileLog`` writes it live.

Example (what the supervisor does)::

    prepared = prepare_environment(spec, log=RunFileLog(backend, run_id), poll=check_cancel,
                                   on_process=write_pgid, run_id=run_id)
    command = spec.command_line(prepared.python, arguments)
"""

from __future__ import annotations

from modelyard.backend.base import Backend
from modelyard.runner.envbuild.cache import CachedEnvironment, EnvironmentCache, cache_root
from modelyard.runner.envbuild.errors import BUILD_LOG, EnvironmentBuildError
from modelyard.runner.envbuild.prepare import (
    Preparation,
    check_python_version,
    check_submittable,
    prepare_environment,
)


class RunFileLog:
    """Appends text to one of a run's files as it comes (offsets make retries harmless)."""

    def __init__(self, backend: Backend, run_id: str, name: str = BUILD_LOG) -> None:
        self.backend = backend
        self.run_id = run_id
        self.name = name
        self.offset = 0

    def __call__(self, text: str) -> None:
        data = text.encode()
        if data:
            self.backend.append_run_file(self.run_id, self.name, self.offset, data)
            self.offset += len(data)


__all__ = [
    "BUILD_LOG",
    "CachedEnvironment",
    "EnvironmentBuildError",
    "EnvironmentCache",
    "Preparation",
    "RunFileLog",
    "cache_root",
    "check_python_version",
    "check_submittable",
    "prepare_environment",
]
