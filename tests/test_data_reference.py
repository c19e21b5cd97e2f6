"""Data references: v1 defaults, checked paths, and a config round trip a supervisor can read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelyard.data.data_reference import DataReference
from modelyard.errors import ValidationError


def test_v1_defaults() -> None:
    ref = DataReference("workspaceblobstore")

    assert ref.data_reference_name == "workspaceblobstore"
    assert (ref.mode, ref.path_on_datastore, ref.path_on_compute, ref.overwrite) == (
        "mount",
        None,
        None,
        False,
    )
    assert ref.datastore is None
    assert str(ref) == "$MODELYARD_DATAREFERENCE_workspaceblobstore"
    assert ref.env_var == "MODELYARD_DATAREFERENCE_workspaceblobstore"


def test_modes_and_sub_paths_make_new_references() -> None:
    ref = DataReference("store", path_on_datastore="./mnist//")

    down = ref.as_download("data/in", overwrite=True)
    train = down.path("train", data_reference_name="train")

    assert ref.path_on_datastore == "mnist"
    assert (down.mode, down.path_on_compute, down.overwrite) == ("download", "data/in", True)
    assert (train.mode, train.path_on_datastore, train.data_reference_name) == (
        "download",
        "mnist/train",
        "train",
    )
    assert train.as_mount().mode == "mount"
    assert ref.as_direct().mode == "direct"
    assert ref.mode == "mount"  # unchanged: references are values


def test_config_round_trip_through_json() -> None:
    ref = DataReference("raw", "inputs", "a/b", "download", "data", overwrite=True)

    config = json.loads(json.dumps(ref.to_config()))
    back = DataReference.from_config(config)

    assert back == ref
    assert hash(back) == hash(ref)
    assert config == {
        "data_reference_name": "inputs",
        "datastore_name": "raw",
        "path_on_datastore": "a/b",
        "mode": "download",
        "path_on_compute": "data",
        "overwrite": True,
    }
    assert "DataReference(data_reference_name='inputs'" in repr(ref)


def test_references_are_read_only() -> None:
    ref = DataReference("raw")

    with pytest.raises(AttributeError):
        ref.mode = "download"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"datastore": "bad name"}, "datastore"),
        ({"datastore": "ok", "data_reference_name": "a b"}, "data_reference_name"),
        ({"datastore": "ok", "path_on_datastore": "../up"}, "path_on_datastore"),
        ({"datastore": "ok", "path_on_datastore": "/abs"}, "path_on_datastore"),
        ({"datastore": "ok", "mode": "upload"}, "mode"),
        ({"datastore": "ok", "path_on_compute": "a\\b"}, "path_on_compute"),
        ({"datastore": "ok", "path_on_compute": "x/../../y"}, "path_on_compute"),
        ({"datastore": "ok", "overwrite": "yes"}, "overwrite"),
    ],
)
def test_bad_values_name_their_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DataReference(**kwargs)

    assert caught.value.field == field


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ([], "config"),
        ({}, "config"),
        ({"datastore_name": "ok", "extra": 1}, "config"),
        ({"datastore_name": "ok", "path_on_datastore": "../x"}, "path_on_datastore"),
        ({"datastore_name": "ok", "mode": "nope"}, "mode"),
    ],
)
def test_from_config_checks_everything_again(config: Any, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DataReference.from_config(config)

    assert caught.value.field == field
