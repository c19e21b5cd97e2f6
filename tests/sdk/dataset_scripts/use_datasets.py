"""Reads its dataset inputs the v1 way and reports what it saw, one line per fact."""

import json
import os
import sys

from modelyard import Run
from modelyard.dataset import Dataset
from modelyard.errors import PermissionDeniedError

run = Run.get_context()
folder = sys.argv[sys.argv.index("--data") + 1]
print("arg_files", json.dumps(sorted(os.listdir(folder))))
inputs = run.input_datasets
print("input_mnist", inputs["mnist"] == folder)
print("input_iris_rows", len(inputs["iris"].to_pandas_dataframe()))
ws = run.experiment.workspace
registered = Dataset.get_by_name(ws, "iris", version="1")
print("by_name", registered.name, registered.version)
print("by_name_rows", len(registered.to_pandas_dataframe()))
try:
    registered.register(ws, "copied")
except PermissionDeniedError as error:
    print("register_refused", "register datasets" in str(error))
