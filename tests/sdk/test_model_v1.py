"""v1's Model surface: every argument of register, lookups, serialize, url, frameworks and
the ./azureml-models folder that v1 scripts name."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelyard import Experiment, Model, Workspace
from modelyard.errors import NotFoundError, ValidationError
from tests.helpers import tree

ME = pwd.getpwuid(os.getuid()).pw_name


@dataclass
class RegisteredDataset:
    """What ``datasets=`` needs of a dataset: its name (a registered one has one)."""

    name: str


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "src" / "model"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph")
    (folder / "variables" / "v.data").write_bytes(b"\x00" * 100)
    (folder / "notes.txt").write_text("not part of the model")
    return folder


def test_framework_constants_are_v1s() -> None:
    assert Model.Framework.TENSORFLOW == "TensorFlow"
    assert Model.Framework.PYTORCH == "PyTorch"
    assert Model.Framework.SCIKITLEARN == "ScikitLearn"
    assert Model.Framework.ONNX == "Onnx"
    assert Model.Framework.CUSTOM == "Custom"


def test_register_honours_framework_description_and_child_paths(
    workspace: Workspace, model_folder: Path
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # arguments with a meaning warn of nothing
        model = Model.register(
            workspace,
            model_path=model_folder,
            model_name="tf-mnist",
            tags={"Best Model": "yes"},
            properties={"accuracy": 0.93},
            description="a small DNN",
            datasets=[("training", RegisteredDataset("mnist-train"))],
            model_framework=Model.Framework.TENSORFLOW,
            model_framework_version="2.21",
            child_paths=["saved_model.pb", "variables"],
        )
    assert model.get_file_names() == ["model/saved_model.pb", "model/variables/v.data"]
    assert (model.model_framework, model.model_framework_version) == ("TensorFlow", "2.21")
    assert model.description == "a small DNN" and model.created_by == ME
    assert model.tags == {"Best Model": "yes"} and model.properties == {"accuracy": "0.93"}
    assert model.serialize()["datasets"] == {"training": ["mnist-train"]}


def test_register_refuses_bad_v1_arguments_naming_them(
    workspace: Workspace, model_folder: Path
) -> None:
    cases = [
        ({"no_such_argument": 1}, "no_such_argument"),
        ({"child_paths": ["missing.pb"]}, "child_paths"),
        ({"child_paths": ["../model/saved_model.pb"]}, "child_paths"),
        ({"child_paths": "saved_model.pb"}, "child_paths"),
        ({"model_framework_version": "2.21"}, "model_framework_version"),
        ({"model_framework": ""}, "model_framework"),
        ({"datasets": [("training",)]}, "datasets"),
        ({"datasets": [("training", object())]}, "datasets"),
        ({"properties": {"modelyard.framework": "x"}}, "properties"),
    ]
    for arguments, field in cases:
        with pytest.raises(ValidationError, match=field):
            Model.register(workspace, model_folder, "m", **arguments)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="child_paths"):
        Model.register(workspace, model_folder / "saved_model.pb", "m", child_paths=["x"])
    assert Model.list(workspace) == []


def test_deployment_arguments_are_recorded_with_one_warning(
    workspace: Workspace, model_folder: Path
) -> None:
    with pytest.warns(UserWarning, match="describe a deployment") as caught:
        model = Model.register(
            workspace,
            model_folder,
            "scored",
            sample_input_dataset=RegisteredDataset("sample-in"),
            sample_output_dataset=RegisteredDataset("sample-out"),
            resource_configuration={"cpu": 1, "memory_in_gb": 0.5},
        )
    assert len(caught) == 1 and caught[0].filename == __file__  # points at the user's call
    data = model.serialize()
    assert data["sampleInputDatasetId"] == {"dataset": "sample-in"}
    assert data["sampleOutputDatasetId"] == {"dataset": "sample-out"}
    assert data["resourceConfiguration"] == {"cpu": 1, "memory_in_gb": 0.5}


def test_serialize_and_url(workspace: Workspace, model_folder: Path) -> None:
    model = Model.register(
        workspace, model_folder, "m", model_framework="ScikitLearn", description="d"
    )
    data = model.serialize()
    json.dumps(data)  # plain JSON data, as v1's
    for key in (
        "createdTime",
        "createdBy",
        "description",
        "id",
        "mimeType",
        "name",
        "framework",
        "frameworkVersion",
        "tags",
        "properties",
        "version",
        "url",
        "experimentName",
        "runId",
    ):
        assert key in data
    assert (data["id"], data["name"], data["version"]) == ("m:1", "m", 1)
    assert data["framework"] == "ScikitLearn" and data["description"] == "d"
    assert data["createdBy"] == {"userName": ME} and data["mimeType"]
    assert data["runId"] is None and data["experimentName"] is None
    # The url is where the files are: here, a folder of this machine that holds them.
    stored = Path(model.url)
    assert stored.is_dir() and (stored / "model" / "saved_model.pb").read_bytes() == b"graph"


def test_register_model_from_a_run_takes_v1s_arguments(
    experiment: Experiment, tmp_path: Path
) -> None:
    (tmp_path / "model.pkl").write_bytes(b"pickle")
    run = experiment.start_logging(outputs=False)
    run.upload_file("outputs/model.pkl", tmp_path / "model.pkl")
    run.upload_file("sklearn-model", tmp_path / "model.pkl")
    model = run.register_model(
        "sklearn-mnist",
        "outputs/model.pkl",
        model_framework=Model.Framework.SCIKITLEARN,
        model_framework_version="1.5",
        description="from the run",
        datasets=[("training", RegisteredDataset("mnist"))],
    )
    data = model.serialize()
    assert data["runId"] == run.id and data["experimentName"] == experiment.name
    assert data["framework"] == "ScikitLearn" and data["frameworkVersion"] == "1.5"
    # v1: without model_path, the model's name is the path in the run.
    assert run.register_model("sklearn-model").get_file_names() == ["sklearn-model"]
    with pytest.raises(ValidationError, match="no_such_argument"):
        run.register_model("m", "outputs/model.pkl", no_such_argument=True)
    with pytest.warns(UserWarning, match="resource_configuration"):
        run.register_model("m", "outputs/model.pkl", resource_configuration={"cpu": 2})


def test_model_lookups_as_v1(workspace: Workspace, model_folder: Path, tmp_path: Path) -> None:
    first = Model.register(workspace, model_folder, "m", tags={"stage": "dev"})
    second = Model.register(
        workspace, model_folder, "m", tags={"stage": "prod"}, properties={"acc": "0.9"}
    )
    Model.register(workspace, model_folder, "m", model_framework="PyTorch")
    other = Model.register(workspace, model_folder, "other", tags={"stage": "prod"})
    assert Model(workspace, "m").version == 3
    assert Model(workspace, "m", version=1) == first
    assert Model(workspace, "m", version="2") == second
    assert Model(workspace, id="m:2") == second
    assert Model(workspace, "m", tags={"stage": "prod"}) == second
    assert Model(workspace, "m", tags="stage").version == 2  # the newest having the key
    assert Model(workspace, tags={"stage": "prod"}) == other  # any name: the newest
    assert Model(workspace, "m", properties={"acc": "0.9"}) == second
    assert Model(workspace, "m", model_framework="PyTorch").version == 3
    (tmp_path / "f").write_bytes(b"x")
    run = Experiment(workspace, "e").start_logging(outputs=False)
    run.upload_file("outputs/f", tmp_path / "f")
    made = run.register_model("m", "outputs/f")
    assert Model(workspace, run_id=run.id) == made
    with pytest.raises(NotFoundError, match="no registered model matches"):
        Model(workspace, "m", tags={"stage": "gone"})
    with pytest.raises(NotFoundError):
        Model(workspace, "m", version=9)
    with pytest.raises(ValidationError, match="version"):
        Model(workspace, "m", version="latest")
    with pytest.raises(ValidationError, match="name"):
        Model(workspace)
    with pytest.raises(ValidationError, match="no_such_argument"):
        Model(workspace, "m", no_such_argument=1)


# -- ./azureml-models ------------------------------------------------------------------------


def test_get_model_path_uses_v1s_folder(
    workspace: Workspace, model_folder: Path, in_tmp_cwd: Path
) -> None:
    Model.register(workspace, model_folder, "m")
    path = Model.get_model_path("m", _workspace=workspace)
    assert Path(path) == in_tmp_cwd / "azureml-models" / "m" / "1" / "model"
    assert (in_tmp_cwd / "azureml-models" / "m" / "1" / "model" / "saved_model.pb").is_file()
    assert Model.get_model_path("m") == path


def test_v1_scripts_find_a_model_by_azureml_models_and_azureml_model_dir(
    workspace: Workspace, tmp_path: Path, in_tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "model.pkl").write_bytes(b"weights")
    Model.register(workspace, tmp_path / "model.pkl", "clf")
    Model.get_model_path("clf", _workspace=workspace)  # downloads, as a v1 notebook did
    script = textwrap.dedent(
        """
        import os
        from modelyard import Model
        by_name = os.path.join("azureml-models", "clf", "1", "model.pkl")
        by_env = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model.pkl")
        found = Model.get_model_path("clf")
        for path in (by_name, by_env, found):
            with open(path, "rb") as f:
                print(path, f.read().decode())
        """
    )
    # v1's value for a script given one model: that model's version folder.
    model_dir = in_tmp_cwd / "azureml-models" / "clf" / "1"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=in_tmp_cwd,
        env={**os.environ, "AZUREML_MODEL_DIR": str(model_dir)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.count("weights") == 3, done.stdout
    # AZUREML_MODEL_DIR naming the folder of every model (v1 with several), from elsewhere.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    finder = "from modelyard import Model; print(open(Model.get_model_path('clf'), 'rb').read())"
    done = subprocess.run(
        [sys.executable, "-c", finder],
        cwd=elsewhere,
        env={**os.environ, "AZUREML_MODEL_DIR": str(in_tmp_cwd / "azureml-models")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "weights" in done.stdout
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(elsewhere))
    with pytest.raises(NotFoundError, match="AZUREML_MODEL_DIR"):
        Model.get_model_path("missing")
    assert tree(elsewhere) == {}
