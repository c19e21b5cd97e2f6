"""A scoring script for a linear model kept as JSON: ``{"weights": [[...]], "bias": [...]}``."""

import json
import os

import numpy as np

from modelyard.model import Model

weights = None
bias = None


def init():
    global weights, bias
    path = Model.get_model_path("linear")
    # v1 scripts reach the same file through AZUREML_MODEL_DIR.
    assert os.path.samefile(path, os.path.join(os.environ["AZUREML_MODEL_DIR"], "linear.json"))
    with open(path) as handle:
        model = json.load(handle)
    weights = np.array(model["weights"])
    bias = np.array(model["bias"])


def run(raw_data):
    data = np.array(json.loads(raw_data)["data"])
    if data.ndim != 2:
        raise ValueError(f"data must be a list of rows, got {data.ndim} dimensions")
    return (data @ weights + bias).argmax(axis=1).tolist()
