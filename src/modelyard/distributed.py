"""Distributed training configurations: how many processes a run starts, and for which runtime.

Give one as an estimator's ``distributed_training`` or a ScriptRunConfig's
``distributed_job_config``; the run supervisor then starts every process and sets what the
framework's runtime reads (see ``modelyard/runner/launchers.py``):

- :class:`MpiConfiguration`: the script runs under OpenMPI's ``mpirun``, one rank per process
  (Horovod, mpi4py); each rank sees ``OMPI_COMM_WORLD_RANK``, ``OMPI_COMM_WORLD_SIZE`` and
  ``OMPI_COMM_WORLD_LOCAL_RANK``.
- :class:`TensorflowConfiguration`: one process per chief, worker and parameter server, each
  with its ``TF_CONFIG``.
- :class:`PyTorchConfiguration`: one process per rank with ``MASTER_ADDR``, ``MASTER_PORT``,
  ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the rest of what ``torchrun`` sets.

A configuration is checked when the run is submitted, together with the estimator's
``node_count`` and ``process_count_per_node``; a wrong combination raises
:class:`~modelyard.errors.ValidationError` naming the value at fault.

Example::

    from modelyard.distributed import MpiConfiguration, TensorflowConfiguration

    est = Estimator("./src", "train.py", distributed_training=MpiConfiguration(
        process_count_per_node=4))
    est = TensorFlow("./src", "train.py", distributed_training=TensorflowConfiguration(
        worker_count=2, parameter_server_count=1, chief_count=1))
    config = ScriptRunConfig("./src", "train.py", distributed_job_config=PyTorchConfiguration(
        communication_backend="gloo", process_count=2))
"""

from __future__ import annotations

from typing import Any

from modelyard.errors import ValidationError
from modelyard.runner.job import MPI, PYTORCH, TENSORFLOW

KINDS = (MPI, TENSORFLOW, PYTORCH)
PYTORCH_BACKENDS = ("gloo", "nccl")


class MpiConfiguration:
    """Run the script under ``mpirun``: ``node_count`` × ``process_count_per_node`` ranks.

    Example::

        est = Estimator("./src", "train_horovod.py",
                        distributed_training=MpiConfiguration(process_count_per_node=4))
    """

    def __init__(self, process_count_per_node: int = 1, node_count: int = 1) -> None:
        self.process_count_per_node = process_count_per_node
        self.node_count = node_count

    def to_config(self) -> dict[str, Any]:
        """The configuration as stored with the run's job (``system_logs/job.json``).

        Example::

            MpiConfiguration(4).to_config()
            # {'type': 'mpi', 'process_count_per_node': 4, 'node_count': 1}
        """
        return {
            "type": MPI,
            "process_count_per_node": self.process_count_per_node,
            "node_count": self.node_count,
        }

    def __repr__(self) -> str:
        return (
            f"MpiConfiguration(process_count_per_node={self.process_count_per_node!r}, "
            f"node_count={self.node_count!r})"
        )


class TensorflowConfiguration:
    """A TensorFlow cluster: ``worker_count`` workers, ``parameter_server_count`` parameter
    servers and, with ``chief_count=1``, a chief.

    Each process gets ``TF_CONFIG``, for example for worker 1 of two workers and one parameter
    server::

        {"cluster": {"worker": ["127.0.0.1:41001", "127.0.0.1:41002"],
                     "ps": ["127.0.0.1:41003"]},
         "task": {"type": "worker", "index": 1}, "environment": "cloud"}

    Which processes the run waits for:

    - without a chief, every worker (v1's layout, and ``MultiWorkerMirroredStrategy`` with
      ``parameter_server_count=0``, where worker 0 acts as the chief);
    - with a chief (``chief_count=1``, what TensorFlow 2's ``ParameterServerStrategy`` needs:
      the chief is its coordinator), the chief alone: workers and parameter servers there are
      servers that never return.

    Once those have exited, the processes still running (parameter servers, and with a chief
    the workers) are stopped, and the run's state is that of the processes it waited for.

    Example::

        est = TensorFlow("./src", "train_ps.py", distributed_training=TensorflowConfiguration(
            worker_count=2, parameter_server_count=1, chief_count=1))
    """

    def __init__(
        self, worker_count: int = 1, parameter_server_count: int = 1, chief_count: int = 0
    ) -> None:
        self.worker_count = worker_count
        self.parameter_server_count = parameter_server_count
        self.chief_count = chief_count

    def to_config(self) -> dict[str, Any]:
        """The configuration as stored with the run's job.

        Example::

            TensorflowConfiguration(worker_count=2, parameter_server_count=0).to_config()
            # {'type': 'tensorflow', 'worker_count': 2, 'parameter_server_count': 0,
            #  'chief_count': 0}
        """
        return {
            "type": TENSORFLOW,
            "worker_count": self.worker_count,
            "parameter_server_count": self.parameter_server_count,
            "chief_count": self.chief_count,
        }

    def __repr__(self) -> str:
        return (
            f"TensorflowConfiguration(worker_count={self.worker_count!r}, "
            f"parameter_server_count={self.parameter_server_count!r}, "
            f"chief_count={self.chief_count!r})"
        )


class PyTorchConfiguration:
    """``process_count`` PyTorch processes (default: one per node, or the estimator's
    ``process_count_per_node`` on each node), as ``torchrun`` would start them.

    ``communication_backend`` (``"gloo"`` for CPUs, ``"nccl"`` for NVIDIA GPUs; any case) is
    what the script passes to ``torch.distributed.init_process_group``; modelyard checks it and
    keeps it with the run.

    Example::

        config = ScriptRunConfig("./src", "train_ddp.py", distributed_job_config=
                                 PyTorchConfiguration(communication_backend="gloo",
                                                      process_count=2))
    """

    def __init__(
        self,
        communication_backend: str = "gloo",
        process_count: int | None = None,
        node_count: int = 1,
    ) -> None:
        self.communication_backend = communication_backend
        self.process_count = process_count
        self.node_count = node_count

    def to_config(self) -> dict[str, Any]:
        """The configuration as stored with the run's job.

        Example::

            PyTorchConfiguration(process_count=2).to_config()
            # {'type': 'pytorch', 'communication_backend': 'gloo', 'process_count': 2,
            #  'node_count': 1}
        """
        backend = self.communication_backend
        return {
            "type": PYTORCH,
            "communication_backend": backend.lower() if isinstance(backend, str) else backend,
            "process_count": self.process_count,
            "node_count": self.node_count,
        }

    def __repr__(self) -> str:
        return (
            f"PyTorchConfiguration(communication_backend={self.communication_backend!r}, "
            f"process_count={self.process_count!r}, node_count={self.node_count!r})"
        )


def _count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValidationError(name, f"must be a whole number of at least {minimum}, not {value!r}")
    return value


def _one_count(name: str, config_value: int, job_value: int, config_name: str) -> int:
    """The estimator's count and the configuration's must agree, unless one is the default 1."""
    if job_value != 1 and config_value != 1 and job_value != config_value:
        raise ValidationError(
            name,
            f"the estimator asks for {name}={job_value} but the {config_name} for "
            f"{name}={config_value}; give it in one place (or the same in both)",
        )
    return config_value if config_value != 1 else job_value


def resolve(
    config: dict[str, Any], node_count: int, process_count_per_node: int
) -> tuple[dict[str, Any], int, int]:
    """Check a stored configuration against the estimator's counts; returns the configuration
    with ``process_count`` (the total) filled in, the node count and the processes per node.

    Raises ValidationError naming the bad value: zero workers, counts that do not multiply out,
    a communication backend that does not exist.

    A TensorFlow cluster is spread over ``node_count`` nodes as v1 did it (a worker on each
    node, the parameter servers between them): ``TensorFlow(node_count=2,
    distributed_training=TensorflowConfiguration(worker_count=2))`` runs 2 workers and 1
    parameter server on 2 nodes; ``process_count_per_node``, when given, must multiply out.

    Example::

        resolve(MpiConfiguration(4).to_config(), node_count=1, process_count_per_node=1)
        # ({'type': 'mpi', 'process_count_per_node': 4, 'node_count': 1,
        #   'process_count': 4}, 1, 4)
    """
    kind = config.get("type")
    if kind not in KINDS:
        raise ValidationError(
            "distributed_training", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}"
        )
    resolved = dict(config)
    if kind == MPI:
        per_node = _count("process_count_per_node", config.get("process_count_per_node"), 1)
        nodes = _count("node_count", config.get("node_count"), 1)
        nodes = _one_count("node_count", nodes, node_count, "MpiConfiguration")
        per_node = _one_count(
            "process_count_per_node", per_node, process_count_per_node, "MpiConfiguration"
        )
        resolved.update(node_count=nodes, process_count_per_node=per_node)
        resolved["process_count"] = nodes * per_node
        return resolved, nodes, per_node
    if kind == TENSORFLOW:
        workers = _count("worker_count", config.get("worker_count"), 1)
        servers = _count("parameter_server_count", config.get("parameter_server_count"), 0)
        chiefs = _count("chief_count", config.get("chief_count", 0), 0)
        if chiefs > 1:
            raise ValidationError(
                "chief_count", f"a TensorFlow cluster has at most one chief, not {chiefs}"
            )
        total = chiefs + workers + servers
        layout = _tf_layout(chiefs, workers, servers)
        if process_count_per_node != 1 and node_count * process_count_per_node != total:
            raise ValidationError(
                "process_count_per_node",
                f"node_count={node_count} × process_count_per_node={process_count_per_node} "
                f"= {node_count * process_count_per_node} processes, but the "
                f"TensorflowConfiguration makes {total} ({layout}); make them agree or leave "
                "process_count_per_node at 1",
            )
        if node_count > total:
            raise ValidationError(
                "node_count",
                f"node_count={node_count}, but the TensorflowConfiguration makes only {total} "
                f"processes ({layout}); every node runs at least one: raise worker_count or "
                "lower node_count",
            )
        resolved["process_count"] = total
        # v1's layout: the processes spread over the nodes in turn (runner/launchers.py), so
        # a node runs at most ceil(total / node_count) of them.
        return resolved, node_count, -(-total // node_count)
    backend = config.get("communication_backend")
    if not isinstance(backend, str) or backend.lower() not in PYTORCH_BACKENDS:
        raise ValidationError(
            "communication_backend",
            f"{backend!r} is not a PyTorch communication backend; use "
            + " or ".join(repr(b) for b in PYTORCH_BACKENDS),
        )
    nodes = _count("node_count", config.get("node_count"), 1)
    nodes = _one_count("node_count", nodes, node_count, "PyTorchConfiguration")
    count = config.get("process_count")
    if count is None:
        total = nodes * process_count_per_node
    else:
        total = _count("process_count", count, 1)
        if total % nodes:
            raise ValidationError(
                "process_count",
                f"{total} processes do not divide evenly over node_count={nodes} nodes",
            )
        if process_count_per_node != 1 and total != nodes * process_count_per_node:
            raise ValidationError(
                "process_count",
                f"process_count={total}, but node_count={nodes} × process_count_per_node="
                f"{process_count_per_node} = {nodes * process_count_per_node}; make them "
                "agree or leave process_count_per_node at 1",
            )
    resolved.update(communication_backend=backend.lower(), node_count=nodes, process_count=total)
    return resolved, nodes, total // nodes


def _tf_layout(chiefs: int, workers: int, servers: int) -> str:
    parts = [f"{chiefs} chief"] if chiefs else []
    parts.append(f"{workers} worker" + ("s" if workers != 1 else ""))
    parts.append(f"{servers} parameter server" + ("s" if servers != 1 else ""))
    return " + ".join(parts)


__all__ = ["MpiConfiguration", "PyTorchConfiguration", "TensorflowConfiguration"]
