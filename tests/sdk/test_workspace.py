from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard import Experiment, Workspace
from modelyard.errors import ConfigError, ConflictError, NotFoundError, ValidationError


def test_create_defaults_to_dot_modelyard_in_the_current_folder(in_tmp_cwd: Path) -> None:
    ws = Workspace.create("demo")
    assert ws.location == in_tmp_cwd / ".modelyard" / "demo"
    assert (ws.location / "workspace.json").is_file()
    assert Workspace.get("demo") == ws


def test_create_exist_ok(tmp_path: Path) -> None:
    ws = Workspace.create("a", location=tmp_path / "a")
    assert Workspace.create("a", location=tmp_path / "a") == ws
    with pytest.raises(ConflictError):
        Workspace.create("a", location=tmp_path / "a", exist_ok=False)


def test_get_missing_and_wrong_name(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"Workspace\.create"):
        Workspace.get("nope", location=tmp_path / "nope")
    Workspace.create("a", location=tmp_path / "a")
    with pytest.raises(NotFoundError, match="named 'a'"):
        Workspace.get("b", location=tmp_path / "a")


def test_bad_name_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        Workspace.create("../evil", location=tmp_path / "x")
    assert info.value.field == "name"
    assert list(tmp_path.iterdir()) == []


def test_create_refuses_a_folder_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("mine")
    with pytest.raises(ConflictError, match="not empty"):
        Workspace.create("w", location=tmp_path / "busy")


def test_write_config_and_from_config_in_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace.create("w", location=tmp_path / "store" / "w")
    written = ws.write_config(path=tmp_path / "project")
    assert written == tmp_path / "project" / ".modelyard" / "config.json"
    config = json.loads(written.read_text())
    assert config["workspace_name"] == "w"
    assert not Path(config["location"]).is_absolute()
    deep = tmp_path / "project" / "notebooks" / "deep"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert Workspace.from_config() == ws
    assert Workspace.from_config(path=written) == ws


def test_from_config_accepts_plain_config_json(tmp_path: Path) -> None:
    ws = Workspace.create("w", location=tmp_path / "w")
    (tmp_path / "config.json").write_text(json.dumps({"workspace_name": "w", "location": "w"}))
    assert Workspace.from_config(path=tmp_path) == ws


def test_from_config_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        Workspace.from_config()
    assert str(tmp_path / ".modelyard" / "config.json") in str(info.value)
    assert str(tmp_path / "config.json") in str(info.value)


def test_from_config_rejects_a_broken_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"subscription_id": "x"}')
    with pytest.raises(ConfigError, match="not a modelyard config"):
        Workspace.from_config(path=tmp_path)


def test_properties(workspace: Workspace) -> None:
    Experiment(workspace, "b")
    Experiment(workspace, "a")
    assert list(workspace.experiments) == ["a", "b"]
    assert list(workspace.datastores) == ["workspaceblobstore"]
    assert list(workspace.compute_targets) == ["local"]
    assert workspace.models == {}
    assert workspace.get_default_datastore().name == "workspaceblobstore"
    assert workspace.get_details()["name"] == "test-ws"


def test_a_moved_workspace_still_finds_its_default_datastore(tmp_path: Path) -> None:
    ws = Workspace.create("w", location=tmp_path / "one")
    (ws.location / "datastores" / "workspaceblobstore" / "f.txt").write_text("data")
    (tmp_path / "one").rename(tmp_path / "two")
    moved = Workspace.get("w", location=tmp_path / "two")
    url = moved.get_default_datastore().url
    assert url.startswith("file://") and "/two/" in url


def test_a_workspace_in_a_folder_with_a_space(tmp_path: Path) -> None:
    ws = Workspace.create("w", location=tmp_path / "my work" / "ws")
    source = tmp_path / "data"
    source.mkdir()
    (source / "a.txt").write_text("A")
    ws.get_default_datastore().upload(str(source), target_path="d", show_progress=False)
    run = Experiment(ws, "e").start_logging()
    run.upload_file("f.txt", source / "a.txt")
    assert (ws.location / "datastores" / "workspaceblobstore" / "d" / "a.txt").read_text() == "A"
    assert list((ws.location / "artifacts" / "runs").iterdir())
    assert not (tmp_path / "my%20work").exists()
