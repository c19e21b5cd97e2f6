"""A v1 scoring script whose swagger comes from the inference-schema decorators."""

import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import (
    StandardPythonParameterType,
)
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("data", NumpyParameterType(np.zeros((1, 4))))
@input_schema("scale", StandardPythonParameterType(1.0))
@output_schema(StandardPythonParameterType([0.0]))
def run(data, scale):
    # The decorators hand over a NumPy array, not the JSON list.
    assert isinstance(data, np.ndarray), type(data)
    return (data.sum(axis=1) * scale).tolist()
