"""The deep-learning estimators and their distributed backends (v1's ``azureml.train.dnn``).

``TensorFlow`` and ``PyTorch`` are Estimators whose run gets their framework. The backends are
v1's names of the distributed configurations of :mod:`modelyard.distributed`:

======================================================  ======================================
v1                                                      the same as
======================================================  ======================================
``Mpi(process_count_per_node=2)``                       ``MpiConfiguration(2)``
``ParameterServer(worker_count=2,                       ``TensorflowConfiguration(2, 1)``
parameter_server_count=1)``
``Gloo()`` / ``Nccl()``                                 ``PyTorchConfiguration("gloo")`` /
                                                        ``PyTorchConfiguration("nccl")``
======================================================  ======================================

``Chainer`` is refused when constructed: Chainer's development ended in December 2019.

Example::

    from modelyard.train.dnn import TensorFlow, ParameterServer

    est = TensorFlow(source_directory="./tf", entry_script="train.py", node_count=2,
                     distributed_training=ParameterServer(worker_count=2))
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from modelyard.distributed import (
    MpiConfiguration,
    PyTorchConfiguration,
    TensorflowConfiguration,
)
from modelyard.errors import ValidationError
from modelyard.runner.envbuild.requirements import DEFAULT_FRAMEWORK_VERSIONS
from modelyard.train.estimator import Estimator


class Mpi(MpiConfiguration):
    """v1's MPI backend: ``node_count`` × ``process_count_per_node`` ranks under ``mpirun``.

    Example::

        est = TensorFlow("./src", entry_script="train_horovod.py", node_count=1,
                         distributed_training=Mpi(process_count_per_node=2))
    """

    def __init__(self, process_count_per_node: int = 1) -> None:
        super().__init__(process_count_per_node=process_count_per_node)

    def __repr__(self) -> str:
        return f"Mpi(process_count_per_node={self.process_count_per_node!r})"


class ParameterServer(TensorflowConfiguration):
    """v1's TensorFlow parameter-server backend: ``worker_count`` workers and
    ``parameter_server_count`` parameter servers, spread over the estimator's nodes.

    Example::

        est = TensorFlow("./src", entry_script="train_ps.py", node_count=2,
                         distributed_training=ParameterServer(worker_count=2))
    """

    def __init__(self, worker_count: int = 1, parameter_server_count: int = 1) -> None:
        super().__init__(worker_count=worker_count, parameter_server_count=parameter_server_count)

    def __repr__(self) -> str:
        return (
            f"ParameterServer(worker_count={self.worker_count!r}, "
            f"parameter_server_count={self.parameter_server_count!r})"
        )


class Gloo(PyTorchConfiguration):
    """v1's PyTorch Gloo backend: one process per node × ``process_count_per_node``.

    Example::

        est = PyTorch("./src", entry_script="ddp.py", process_count_per_node=2,
                      distributed_training=Gloo())
    """

    def __init__(self) -> None:
        super().__init__(communication_backend="gloo")

    def __repr__(self) -> str:
        return "Gloo()"


class Nccl(PyTorchConfiguration):
    """v1's PyTorch NCCL backend (NVIDIA GPUs): as :class:`Gloo`, with ``nccl``.

    Example::

        est = PyTorch("./src", entry_script="ddp.py", use_gpu=True, distributed_training=Nccl())
    """

    def __init__(self) -> None:
        super().__init__(communication_backend="nccl")

    def __repr__(self) -> str:
        return "Nccl()"


class TensorFlow(Estimator):
    """An Estimator whose run needs TensorFlow (``framework_version`` pins it).

    Its run gets ``tensorflow`` at ``framework_version`` (``tensorflow-cpu`` on Linux x86-64
    without ``use_gpu``) and the matching ``tf-keras``; without a version, TensorFlow
    ``DEFAULT_VERSION`` (2.21). When modelyard's own Python has them, the run uses it.
    ``distributed_backend="ps"`` with ``worker_count`` and ``parameter_server_count`` is v1's
    older form of ``distributed_training=ParameterServer(...)``.

    Example::

        est = TensorFlow("./src", entry_script="train.py", node_count=2,
                         distributed_training=TensorflowConfiguration())
        est.distributed_training.worker_count = 2      # read when submitted
    """

    _framework = "tensorflow"
    _backends: ClassVar[tuple[str, ...]] = ("mpi", "ps")
    DEFAULT_VERSION = DEFAULT_FRAMEWORK_VERSIONS["tensorflow"]

    def __init__(
        self,
        source_directory: str | os.PathLike[str],
        *args: Any,
        worker_count: int = 1,
        parameter_server_count: int = 1,
        **kwargs: Any,
    ) -> None:
        self._worker_count = worker_count
        self._parameter_server_count = parameter_server_count
        super().__init__(source_directory, *args, **kwargs)
        counts_given = (worker_count, parameter_server_count) != (1, 1)
        if counts_given and self.distributed_training is None:
            # v1 read them only with distributed_backend="ps": a user who gives them wants it.
            self.distributed_training = ParameterServer(worker_count, parameter_server_count)
        elif counts_given and not isinstance(self.distributed_training, TensorflowConfiguration):
            raise ValidationError(
                "worker_count",
                "worker_count and parameter_server_count describe a parameter-server run, but "
                f"distributed_training is {self.distributed_training!r}; give them in a "
                "TensorflowConfiguration (or ParameterServer) instead",
            )
        elif counts_given and kwargs.get("distributed_backend") is None:
            raise ValidationError(
                "worker_count",
                "give worker_count and parameter_server_count in distributed_training's "
                "TensorflowConfiguration, not also to the estimator",
            )

    def _backend_config(self, backend: str) -> Any:
        if isinstance(backend, str) and backend.lower() == "ps":
            return ParameterServer(self._worker_count, self._parameter_server_count)
        return super()._backend_config(backend)


class PyTorch(Estimator):
    """An Estimator whose run needs PyTorch (``framework_version`` pins it).

    Its run gets ``torch`` at ``framework_version``; without a version, PyTorch
    ``DEFAULT_VERSION`` (2.13.0). When modelyard's own Python has it, the run uses it.
    ``distributed_backend="gloo"`` / ``"nccl"`` / ``"mpi"`` are v1's older form of
    ``distributed_training=Gloo()`` / ``Nccl()`` / ``Mpi()``.

    Example::

        est = PyTorch("./src", entry_script="ddp.py", process_count_per_node=2,
                      distributed_training=Gloo())
    """

    _framework = "pytorch"
    _backends: ClassVar[tuple[str, ...]] = ("mpi", "gloo", "nccl")
    DEFAULT_VERSION = DEFAULT_FRAMEWORK_VERSIONS["pytorch"]

    def _backend_config(self, backend: str) -> Any:
        if isinstance(backend, str) and backend.lower() in ("gloo", "nccl"):
            return PyTorchConfiguration(communication_backend=backend.lower())
        return super()._backend_config(backend)


class Chainer(Estimator):
    """v1's Chainer estimator, refused: Chainer's development ended in December 2019, when its
    developers (Preferred Networks) moved to PyTorch, and it does not install on today's
    Python. Port the script to PyTorch (the Chainer team's migration guide maps each API) and
    use :class:`PyTorch`, or run any framework with :class:`~modelyard.train.estimator.Estimator`
    and ``pip_packages``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise ValidationError(
            "Chainer",
            "Chainer's development ended in December 2019 (its developers moved to PyTorch) "
            "and it does not install on current Python versions; port the script to PyTorch "
            "and use PyTorch(...) from modelyard.train.dnn (with distributed_training=Mpi(), "
            "Gloo() or Nccl() as before), or Estimator(..., pip_packages=[...]) for another "
            "framework",
        )


__all__ = ["Chainer", "Gloo", "Mpi", "Nccl", "ParameterServer", "PyTorch", "TensorFlow"]
