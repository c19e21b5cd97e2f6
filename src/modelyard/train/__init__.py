"""Estimators: what to run, as the v1 SDK described it (``azureml.train``).

- :mod:`modelyard.train.estimator` (v1's ``azureml.train.estimator``): ``Estimator``;
- :mod:`modelyard.train.dnn` (v1's ``azureml.train.dnn``): ``TensorFlow``, ``PyTorch``,
  ``Chainer`` (refused), and the distributed backends ``Mpi``, ``ParameterServer``, ``Gloo``
  and ``Nccl``;
- :mod:`modelyard.train.v1_arguments`: which v1 arguments are honoured, recorded or refused.

Example::

    from modelyard.train import TensorFlow

    est = TensorFlow(source_directory="./tf-mnist", entry_script="tf_mnist.py",
                     script_params={"--data-folder": ds.as_mount(), "--batch-size": 50},
                     compute_target="local")
    run = exp.submit(est)
"""

from __future__ import annotations

from modelyard.train.dnn import PyTorch, TensorFlow
from modelyard.train.estimator import Estimator

__all__ = ["Estimator", "PyTorch", "TensorFlow"]
