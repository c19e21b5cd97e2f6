"""What environment a run's processes get, and what the local compute agent is started with.

A run's processes never see the environment of whoever submitted it, nor of the client that
happened to start the agent: a second notebook's run must not find the first one's
``MY_API_TOKEN``. A run's process gets exactly:

1. the variables of this table, taken from the supervisor's environment when set there
   (what the machine and its frameworks need, no credentials):

   =====================  ============================================================
   what                   variables
   =====================  ============================================================
   the account            ``PATH``, ``HOME``, ``USER``, ``LOGNAME``, ``SHELL``, ``TERM``
   text and time          ``LANG``, ``LANGUAGE``, ``LC_*``, ``TZ``
   temporary files        ``TMPDIR``, ``TEMP``, ``TMP``
   caches and settings    ``XDG_CACHE_HOME``, ``XDG_CONFIG_HOME``, ``XDG_DATA_HOME``
   shared libraries       ``LD_LIBRARY_PATH`` (CUDA's, MPI's)
   GPUs                   ``CUDA_VISIBLE_DEVICES``, ``CUDA_DEVICE_ORDER``, ``CUDA_HOME``,
                          ``CUDA_PATH``, ``NVIDIA_VISIBLE_DEVICES``,
                          ``NVIDIA_DRIVER_CAPABILITIES``, ``HIP_VISIBLE_DEVICES``,
                          ``ROCR_VISIBLE_DEVICES``
   NCCL                   ``NCCL_*`` (network interfaces, transports)
   OpenMPI                ``OMPI_MCA_*``, ``PMIX_MCA_*``, ``PRTE_MCA_*``, ``OPAL_PREFIX``,
                          ``OMPI_ALLOW_RUN_AS_ROOT``, ``OMPI_ALLOW_RUN_AS_ROOT_CONFIRM``
   threads, BLAS          ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_*`` (thread
                          counts, and ``OPENBLAS_CORETYPE`` where a processor needs it)
   Python                 ``PYTHONPATH``, ``PYTHONHOME`` (how modelyard's own interpreter
                          finds modelyard, when it is not installed into it)
   =====================  ============================================================

2. the run's own ``environment_variables`` (the estimator's, its environment's, and those of
   the environment it was built into: ``PATH``, ``VIRTUAL_ENV``), which win over the table;
3. what the runner sets: ``PYTHONUNBUFFERED=1``, ``MODELYARD_RUN_CONTEXT``,
   ``MODELYARD_DATAREFERENCE_<name>``, ``CUDA_VISIBLE_DEVICES`` for ``use_gpu=True``, and per
   process ``MODELYARD_PROCESS_INDEX``/``_COUNT`` with the framework's variables
   (``TF_CONFIG``; ``MASTER_ADDR``, ``RANK``, ...; ``OMPI_COMM_WORLD_*`` from mpirun).

Anything else a script needs goes into ``environment_variables``. The agent (and the
supervisors it forks) is started with the table above plus what it reads itself: the
``MODELYARD_*`` settings, the package installer's settings (``PIP_*``, ``UV_*``, ``CONDA_*``,
proxies and CA bundles, ``PYENV_ROOT``, ``XDG_CONFIG_DIRS``) and ``XDG_RUNTIME_DIR``. A
client's other variables never sit in the long-lived agent.

Example::

    env = run_process_environment(os.environ, {"TF_USE_LEGACY_KERAS": "1"})
    "MY_API_TOKEN" in env                  # False, whatever os.environ holds
"""

from __future__ import annotations

from collections.abc import Mapping

INHERITED_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TERM",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TEMP",
        "TMP",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "LD_LIBRARY_PATH",
        "CUDA_VISIBLE_DEVICES",
        "CUDA_DEVICE_ORDER",
        "CUDA_HOME",
        "CUDA_PATH",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "HIP_VISIBLE_DEVICES",
        "ROCR_VISIBLE_DEVICES",
        "OPAL_PREFIX",
        "OMPI_ALLOW_RUN_AS_ROOT",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "PYTHONPATH",
        "PYTHONHOME",
    }
)
INHERITED_PREFIXES = ("LC_", "NCCL_", "OMPI_MCA_", "PMIX_MCA_", "PRTE_MCA_", "OPENBLAS_")

# What the agent and its supervisors read themselves, on top of what the runs inherit.
AGENT_NAMES = frozenset(
    {
        "PYENV_ROOT",
        "XDG_RUNTIME_DIR",
        "XDG_CONFIG_DIRS",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    }
)
AGENT_PREFIXES = ("MODELYARD_", "PIP_", "UV_", "CONDA_", "MAMBA_")


def _pick(
    environ: Mapping[str, str], names: frozenset[str], prefixes: tuple[str, ...]
) -> dict[str, str]:
    return {
        name: value for name, value in environ.items() if name in names or name.startswith(prefixes)
    }


def inherited_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``environ`` that a run's processes inherit (the table above).

    Example::

        inherited_environment({"PATH": "/bin", "MY_API_TOKEN": "x"})   # {'PATH': '/bin'}
    """
    return _pick(environ, INHERITED_NAMES, INHERITED_PREFIXES)


def run_process_environment(
    environ: Mapping[str, str], run_variables: Mapping[str, str]
) -> dict[str, str]:
    """The environment of a run's processes: the inherited part of the supervisor's
    ``environ``, then ``run_variables`` (the run's own and what the runner sets) over it."""
    return {**inherited_environment(environ), **run_variables}


def agent_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """What the local compute agent is started with, from the starting client's ``environ``.

    Example::

        agent_environment({"MODELYARD_LOCAL_MAX_RUNS": "2", "MY_API_TOKEN": "x"})
        # {'MODELYARD_LOCAL_MAX_RUNS': '2'}
    """
    return {
        **inherited_environment(environ),
        **_pick(environ, AGENT_NAMES, AGENT_PREFIXES),
    }


__all__ = [
    "INHERITED_NAMES",
    "INHERITED_PREFIXES",
    "agent_environment",
    "inherited_environment",
    "run_process_environment",
]
