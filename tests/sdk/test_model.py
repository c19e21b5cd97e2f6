"""The model registry, from a local path and from a run's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard import Experiment, Model, Workspace
from modelyard.errors import ConflictError, NotFoundError, ValidationError
from tests.helpers import tree


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "src" / "model"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph")
    (folder / "variables" / "v.data").write_bytes(b"\x00" * 1000)
    return folder


def test_register_a_folder_and_download_it(
    workspace: Workspace, model_folder: Path, tmp_path: Path
) -> None:
    model = Model.register(
        workspace,
        model_folder,
        "mnist",
        tags={"area": "vision"},
        properties={"acc": 0.9},
        description="first",
    )
    assert (model.name, model.version, model.id) == ("mnist", 1, "mnist:1")
    assert model.tags == {"area": "vision"} and model.properties == {"acc": "0.9"}
    assert model.description == "first" and model.run_id is None
    assert model.get_file_names() == ["model/saved_model.pb", "model/variables/v.data"]
    path = model.download(tmp_path / "dl")
    assert path == str(tmp_path / "dl" / "model")
    assert tree(Path(path)) == tree(model_folder)
    with pytest.raises(ConflictError, match="exist_ok"):
        model.download(tmp_path / "dl")
    (model_folder / "saved_model.pb").write_bytes(b"changed")
    again = Model.register(workspace, model_folder, "mnist")
    assert again.version == 2
    assert Path(again.download(tmp_path / "dl", exist_ok=True), "saved_model.pb").read_bytes() == (
        b"changed"
    )


def test_register_a_single_file(workspace: Workspace, tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"pickle-bytes")
    model = Model.register(workspace, tmp_path / "model.pkl", "sk")
    assert model.get_file_names() == ["model.pkl"]
    path = Path(model.download(tmp_path / "out"))
    assert path.name == "model.pkl" and path.read_bytes() == b"pickle-bytes"


def test_register_from_a_run_remembers_the_run(experiment: Experiment, model_folder: Path) -> None:
    run = experiment.start_logging()
    run.upload_folder("outputs/model", model_folder)
    run.upload_file("outputs/other.txt", model_folder / "saved_model.pb")
    model = run.register_model("tf-dnn-mnist", "outputs/model", tags={"from": "run"})
    assert model.run_id == run.id
    assert model.get_file_names() == ["model/saved_model.pb", "model/variables/v.data"]
    single = run.register_model("other", "outputs/other.txt")
    assert single.get_file_names() == ["other.txt"]
    with pytest.raises(NotFoundError, match="no file or folder"):
        run.register_model("x", "outputs/missing")
    with pytest.raises(ValidationError) as info:
        run.register_model("x", "../outputs")
    assert info.value.field == "model_path"


def test_lookup_list_and_latest(workspace: Workspace, model_folder: Path) -> None:
    for i in range(3):
        Model.register(workspace, model_folder, "a", tags={"i": str(i), "even": str(i % 2 == 0)})
    Model.register(workspace, model_folder, "b")
    assert Model(workspace, "a").version == 3
    assert Model(workspace, "a", version=1).tags["i"] == "0"
    assert Model(workspace, id="a:2").version == 2
    assert [m.id for m in Model.list(workspace)] == ["b:1", "a:3", "a:2", "a:1"]
    assert [m.id for m in Model.list(workspace, name="a", latest=True)] == ["a:3"]
    assert [m.id for m in Model.list(workspace, latest=True)] == ["b:1", "a:3"]
    assert [m.id for m in Model.list(workspace, tags=[["even", "True"]])] == ["a:3", "a:1"]
    assert [m.id for m in Model.list(workspace, tags=["i"])] == ["a:3", "a:2", "a:1"]
    assert {name: m.version for name, m in workspace.models.items()} == {"a": 3, "b": 1}
    with pytest.raises(NotFoundError, match="version 9"):
        Model(workspace, "a", version=9)
    with pytest.raises(NotFoundError, match="'zzz'"):
        Model(workspace, "zzz")


def test_tags_and_delete(workspace: Workspace, model_folder: Path) -> None:
    model = Model.register(workspace, model_folder, "m", tags={"a": "1", "b": "2"})
    model.add_tags({"c": "3", "a": "changed"})
    model.remove_tags(["b"])
    assert Model(workspace, "m").tags == {"a": "changed", "c": "3"}
    storage = workspace.folder / "artifacts" / "models" / "m"
    assert any(storage.rglob("saved_model.pb"))
    model.delete()
    with pytest.raises(NotFoundError):
        Model(workspace, "m")
    assert not any(storage.rglob("saved_model.pb"))
    assert Model.register(workspace, model_folder, "m").version == 2


def test_deleting_a_deleted_model_again_is_not_an_error(
    workspace: Workspace, model_folder: Path
) -> None:
    model = Model.register(workspace, model_folder, "m")
    same = Model(workspace, "m", version=1)  # another handle, as another notebook holds it
    model.delete()
    model.delete()  # a retry after a lost reply
    same.delete()
    with pytest.raises(NotFoundError):
        Model(workspace, "m", version=1)
    with pytest.raises(NotFoundError, match="'never'"):
        Model(workspace, "never")  # a model that never existed cannot be deleted either


def test_get_model_path(workspace: Workspace, model_folder: Path, in_tmp_cwd: Path) -> None:
    Model.register(workspace, model_folder, "m")
    with pytest.raises(NotFoundError, match="looked in"):
        Model.get_model_path("m")
    path = Model.get_model_path("m", _workspace=workspace)
    assert Path(path) == in_tmp_cwd / "azureml-models" / "m" / "1" / "model"
    assert (Path(path) / "saved_model.pb").read_bytes() == b"graph"
    assert Model.get_model_path("m") == path
    assert Model.get_model_path("m", version=1) == path


@pytest.mark.parametrize("bad_name", ["../m", "", "a b", "x" * 300])
def test_bad_names_write_nothing(workspace: Workspace, model_folder: Path, bad_name: str) -> None:
    before = tree(workspace.folder / "artifacts")
    with pytest.raises(ValidationError) as info:
        Model.register(workspace, model_folder, bad_name)
    assert info.value.field == "model_name"
    assert tree(workspace.folder / "artifacts") == before


def test_missing_or_empty_model_path(workspace: Workspace, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        Model.register(workspace, tmp_path / "nope", "m")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match="no files"):
        Model.register(workspace, tmp_path / "empty", "m")
    assert Model.list(workspace) == []
