"""``run.input_datasets`` inside a submitted script: what the run's supervisor made of each
dataset input, read from the variable it sets (``MODELYARD_INPUT_DATASETS``).

A mounted or downloaded input is the local folder's path (a string, as in v1); an input given
as it is (``as_named_input(name)`` alone) is the dataset itself, reading the files the
supervisor made local, so a script needs no datastore credentials.

Example::

    run = Run.get_context()
    folder = run.input_datasets["mnist"]          # '/.../mnist' (as_mount / as_download)
    frame = run.input_datasets["iris"].to_pandas_dataframe()     # as_named_input alone
"""

from __future__ import annotations

import json
import os
from typing import Any

from modelyard.backend.dataset_files import INPUTS_ENV
from modelyard.backend.records import DatasetRecord
from modelyard.data.abstract_dataset import from_definition
from modelyard.data.dataset_consumption_config import DIRECT


def input_datasets(run_id: str) -> dict[str, Any]:
    """The dataset inputs of run ``run_id`` when this process is one of its script's; else
    an empty dict."""
    text = os.environ.get(INPUTS_ENV)
    if not text:
        return {}
    given = json.loads(text)
    if given.get("run_id") != run_id:
        return {}
    found: dict[str, Any] = {}
    for name, entry in given.get("inputs", {}).items():
        if entry["mode"] != DIRECT:
            found[name] = entry["path"]
            continue
        record = None
        if entry.get("id") is not None:
            record = DatasetRecord(
                entry["id"], entry["name"], entry["version"], entry["definition"], "", None, 0.0
            )
        found[name] = from_definition(entry["definition"], None, record)
    return found


__all__ = ["input_datasets"]
