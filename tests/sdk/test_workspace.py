from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard import Experiment, Workspace
from modelyard.errors import ConfigError, ConflictError, NotFoundError, ValidationError


def test_create_defaults_to_dot_modelyard_in_the_current_folder(in_tmp_cwd: Path) -> None:
    ws = Workspace.create("demo")
    assert ws.folder == in_tmp_cwd / ".modelyard" / "demo"
    assert (ws.folder / "workspace.json").is_file()
    assert Workspace.get("demo") == ws


def test_create_refuses_an_existing_workspace_unless_exist_ok_as_in_v1(tmp_path: Path) -> None:
    ws = Workspace.create("a", folder=tmp_path / "a")
    with pytest.raises(ConflictError, match="exist_ok=True"):
        Workspace.create("a", folder=tmp_path / "a")
    assert Workspace.create("a", folder=tmp_path / "a", exist_ok=True) == ws


def test_the_v1_coordinates_cell_prints_strings(tmp_path: Path) -> None:
    """The cell most v1 notebooks start with concatenates the coordinates as strings."""
    ws = Workspace.create("plain", folder=tmp_path / "plain")
    cell = "\n".join(
        [
            "Workspace name: " + ws.name,
            "Azure region: " + ws.location,
            "Subscription id: " + ws.subscription_id,
            "Resource group: " + ws.resource_group,
        ]
    )
    assert "Azure region: local" in cell and "Resource group: local" in cell
    assert ws.sku == "basic"
    assert ws.folder == (tmp_path / "plain").resolve()


def test_create_records_the_v1_coordinates_and_warns_once_of_the_rest(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="sku, storage_account mean nothing") as caught:
        ws = Workspace.create(
            name="v1",
            subscription_id="1234-abcd",
            resource_group="ml-rg",
            location="eastus2",
            create_resource_group=True,
            sku="enterprise",
            storage_account="/subscriptions/x/storage",
            exist_ok=True,
            folder=tmp_path / "v1",
        )
    assert len(caught) == 1
    again = Workspace.get("v1", folder=tmp_path / "v1")
    assert (again.subscription_id, again.resource_group, again.location) == (
        "1234-abcd",
        "ml-rg",
        "eastus2",
    )
    assert again.sku == "enterprise"
    recorded = json.loads((ws.folder / "workspace.json").read_text())
    assert recorded["v1_arguments"] == {
        "create_resource_group": True,
        "sku": "enterprise",
        "storage_account": "/subscriptions/x/storage",
    }
    with pytest.raises(ValidationError) as info:
        Workspace.create("v1", folder=tmp_path / "v1", exist_ok=True, skew="basic")
    assert info.value.field == "skew"


def test_a_v1_config_json_finds_the_workspace_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A v1 notebook's own config.json (no folder in it) opens .modelyard/<name> beside it,
    and the coordinates it names are what the workspace reports."""
    project = tmp_path / "project"
    Workspace.create("team-ws", folder=project / ".modelyard" / "team-ws")
    (project / ".azureml").mkdir()
    (project / ".azureml" / "config.json").write_text(
        json.dumps(
            {"subscription_id": "sub-1", "resource_group": "rg-1", "workspace_name": "team-ws"}
        )
    )
    monkeypatch.chdir(project)
    ws = Workspace.from_config()
    assert (ws.name, ws.subscription_id, ws.resource_group) == ("team-ws", "sub-1", "rg-1")
    v1 = Workspace(subscription_id="sub-2", resource_group="rg-2", workspace_name="team-ws")
    assert v1 == ws and v1.subscription_id == "sub-2"
    (project / ".azureml" / "config.json").write_text(json.dumps({"workspace_name": "other"}))
    with pytest.raises(NotFoundError, match=r"names workspace 'other'.*Workspace\.create"):
        Workspace.from_config()


def test_get_missing_and_wrong_name(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"Workspace\.create"):
        Workspace.get("nope", folder=tmp_path / "nope")
    Workspace.create("a", folder=tmp_path / "a")
    with pytest.raises(NotFoundError, match="named 'a'"):
        Workspace.get("b", folder=tmp_path / "a")


def test_a_folder_where_v1_takes_auth_is_refused_naming_folder(tmp_path: Path) -> None:
    Workspace.create("a", folder=tmp_path / "a")
    with pytest.raises(ValidationError, match="folder=") as info:
        Workspace.get("a", tmp_path / "a")  # type: ignore[arg-type]
    assert info.value.field == "auth"


def test_bad_name_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        Workspace.create("../evil", folder=tmp_path / "x")
    assert info.value.field == "name"
    assert list(tmp_path.iterdir()) == []


def test_create_refuses_a_folder_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("mine")
    with pytest.raises(ConflictError, match="not empty"):
        Workspace.create("w", folder=tmp_path / "busy")


def test_write_config_and_from_config_in_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace.create("w", folder=tmp_path / "store" / "w")
    written = ws.write_config(path=tmp_path / "project")
    assert written == tmp_path / "project" / ".modelyard" / "config.json"
    config = json.loads(written.read_text())
    assert config["workspace_name"] == "w"
    assert not Path(config["folder"]).is_absolute()
    deep = tmp_path / "project" / "notebooks" / "deep"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert Workspace.from_config() == ws
    assert Workspace.from_config(path=written) == ws


def test_from_config_accepts_plain_config_json(tmp_path: Path) -> None:
    ws = Workspace.create("w", folder=tmp_path / "w")
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
    ws = Workspace.create("w", folder=tmp_path / "one")
    (ws.folder / "datastores" / "workspaceblobstore" / "f.txt").write_text("data")
    (tmp_path / "one").rename(tmp_path / "two")
    moved = Workspace.get("w", folder=tmp_path / "two")
    url = moved.get_default_datastore().url
    assert url.startswith("file://") and "/two/" in url


def test_a_workspace_in_a_folder_with_a_space(tmp_path: Path) -> None:
    ws = Workspace.create("w", folder=tmp_path / "my work" / "ws")
    source = tmp_path / "data"
    source.mkdir()
    (source / "a.txt").write_text("A")
    ws.get_default_datastore().upload(str(source), target_path="d", show_progress=False)
    run = Experiment(ws, "e").start_logging()
    run.upload_file("f.txt", source / "a.txt")
    assert (ws.folder / "datastores" / "workspaceblobstore" / "d" / "a.txt").read_text() == "A"
    assert list((ws.folder / "artifacts" / "runs").iterdir())
    assert not (tmp_path / "my%20work").exists()
