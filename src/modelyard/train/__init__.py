"""Estimators: what to run, as the v1 SDK described it (``azureml.train``)."""

from __future__ import annotations

from modelyard.train.estimator import Estimator, PyTorch, TensorFlow

__all__ = ["Estimator", "PyTorch", "TensorFlow"]
