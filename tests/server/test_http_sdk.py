"""The SDK and the CLI against a real server process: what a team member's notebook does.

The workspace is named by a config.json with the server's URL; the token comes from
MODELYARD_TOKEN. Runs submitted to ``local`` run on the server's machine (here the same one,
in the server's own workspace folder), their output streamed back through the server.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard import Datastore, Experiment, Model, Run, Workspace
from modelyard.backend.remote.backend import RemoteBackend
from modelyard.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from modelyard.script_run_config import ScriptRunConfig
from modelyard.train import Estimator
from tests.helpers import run_cli
from tests.server_process import ServerProcess

SCRIPTS = Path(__file__).parents[1] / "runner" / "scripts"


@pytest.fixture
def member(
    http_server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str]]:
    """A user who owns a new workspace: (workspace name, token), the token in MODELYARD_TOKEN
    and a config.json naming the workspace in the current folder."""
    user = f"u{uuid.uuid4().hex[:8]}"
    token = http_server.user(user)
    name = http_server.new_workspace(owner=user)
    monkeypatch.setenv("MODELYARD_TOKEN", token)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.json").write_text(
        json.dumps({"workspace_name": name, "server": http_server.url})
    )
    monkeypatch.chdir(project)
    yield name, token


def test_the_walkthrough_runs_against_the_server(
    member: tuple[str, str], http_server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    name, _token = member
    ws = Workspace.from_config()
    assert ws.name == name and ws.server == http_server.url
    experiment = Experiment(workspace=ws, name="report")
    run = experiment.submit(ScriptRunConfig(SCRIPTS, "report.py", arguments=["--lr", 0.5]))
    details = run.wait_for_completion(show_output=True)
    assert details["status"] == "Completed", details
    printed = capsys.readouterr().out
    assert "started" in printed and "args: --lr 0.5" in printed
    assert run.get_metrics() == {"loss": [1.0, 0.5, 1 / 3], "table": {"a": [1], "b": [2]}}
    assert run.get_tags()["phase"] == "train"
    (child,) = run.get_children()
    assert child.get_metrics() == {"inner_metric": 5}
    assert "outputs/model/weights.txt" in run.get_file_names()
    model = run.register_model(model_name="weights", model_path="outputs/model")
    assert [m.version for m in Model.list(ws, name="weights")] == [model.version]
    out = Path("downloaded")
    run.download_file("outputs/model/weights.txt", str(out / "weights.txt"))
    assert (out / "weights.txt").read_text() == "w=1"
    assert (Path(model.download(target_dir="m")) / "weights.txt").read_text() == "w=1"


def test_a_config_json_names_the_server_and_never_holds_the_token(
    member: tuple[str, str], http_server: ServerProcess, tmp_path: Path
) -> None:
    name, token = member
    ws = Workspace.get(name, server=http_server.url)
    written = ws.write_config(tmp_path / "elsewhere")
    config = json.loads(written.read_text())
    assert config["workspace_name"] == name and config["server"] == http_server.url
    assert token not in written.read_text() and "folder" not in config
    assert Workspace.from_config(written).name == name
    assert "server" in ws.get_details() and ws.get_details()["folder"] is None


def test_two_users_in_two_workspaces_cannot_see_each_other(
    http_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada, bob = f"ada{uuid.uuid4().hex[:6]}", f"bob{uuid.uuid4().hex[:6]}"
    ada_token, bob_token = http_server.user(ada), http_server.user(bob)
    ada_ws, bob_ws = http_server.new_workspace(owner=ada), http_server.new_workspace(owner=bob)
    monkeypatch.setenv("MODELYARD_TOKEN", ada_token)
    mine = Workspace.get(ada_ws, server=http_server.url)
    run = Experiment(mine, "secret").start_logging()
    run.log("acc", 0.9)
    run.complete()
    monkeypatch.setenv("MODELYARD_TOKEN", bob_token)
    with pytest.raises(NotFoundError, match="not one of its members"):
        Workspace.get(ada_ws, server=http_server.url)
    theirs = Workspace.get(bob_ws, server=http_server.url)
    with pytest.raises(NotFoundError):
        Run.get(theirs, run.id)
    assert list(theirs.experiments) == []
    # Bob's token in Ada's workspace, call by call: every one is a 404.
    sneaky = RemoteBackend(http_server.url, ada_ws, bob_token)
    for call in (
        lambda: sneaky.get_run(run.id),
        lambda: sneaky.list_experiments(),
        lambda: sneaky.get_metric_series(run.id),
        lambda: sneaky.set_run_tags(run.id, {"x": "y"}),
        lambda: sneaky.open_run_file(run.id, "outputs/x").read(),
    ):
        with pytest.raises(NotFoundError, match="not one of its members"):
            call()


def test_a_reader_reads_and_is_refused_writes(http_server: ServerProcess) -> None:
    owner, reader = f"own{uuid.uuid4().hex[:6]}", f"rd{uuid.uuid4().hex[:6]}"
    http_server.user(owner)
    reader_token = http_server.user(reader)
    name = http_server.new_workspace(owner=owner, **{reader: "reader"})
    admin = RemoteBackend(http_server.url, name, http_server.admin_token)
    admin.create_run("r1", "e", run_type="script", status="Running")
    as_reader = RemoteBackend(http_server.url, name, reader_token)
    assert as_reader.get_run("r1").id == "r1"
    with pytest.raises(PermissionDeniedError, match="contributor"):
        as_reader.set_run_tags("r1", {"a": "b"})
    assert admin.get_run_details("r1").tags == {}


def test_no_token_and_a_bad_token_say_how_to_log_in(
    http_server: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    name = http_server.new_workspace()
    with pytest.raises(AuthenticationError, match="modelyard login"):
        Workspace.get(name, server=http_server.url)
    monkeypatch.setenv("MODELYARD_TOKEN", "myd_nothing_like_a_token")
    with pytest.raises(AuthenticationError):
        Workspace.get(name, server=http_server.url)


def test_the_cli_logs_in_and_works_on_the_server_workspace(
    member: tuple[str, str], http_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, token = member
    project = Path.cwd()
    login = run_cli(project, "login", http_server.url)
    assert login.returncode == 0, login.stderr
    credentials = Path(str(Path.cwd().parent / "config-home" / "modelyard" / "credentials.json"))
    assert credentials.stat().st_mode & 0o777 == 0o600
    assert token in credentials.read_text()
    monkeypatch.delenv("MODELYARD_TOKEN")
    created = run_cli(project, "token", "create", "laptop", "--expires-in", "1", "--json")
    assert created.returncode == 0, created.stderr
    new = json.loads(created.stdout)
    listed = run_cli(project, "token", "list", "--json")
    assert new["id"] in {t["id"] for t in json.loads(listed.stdout)}
    assert new["token"] not in listed.stdout
    experiments = run_cli(project, "experiment", "list", "--json")
    assert experiments.returncode == 0, experiments.stderr
    revoked = run_cli(project, "token", "revoke", new["id"])
    assert revoked.returncode == 0, revoked.stderr
    monkeypatch.setenv("MODELYARD_TOKEN", new["token"])
    refused = run_cli(project, "experiment", "list")
    assert refused.returncode == AuthenticationError.exit_code, refused.stderr
    assert name  # the workspace the config names


def test_datastores_move_files_through_the_server_and_runs_read_them(
    member: tuple[str, str], http_server: ServerProcess, tmp_path: Path
) -> None:
    ws = Workspace.from_config()
    source = tmp_path / "data" / "mnist"
    source.mkdir(parents=True)
    (source / "a.txt").write_text("A")
    ds = ws.get_default_datastore()
    ds.upload(str(tmp_path / "data"), target_path="sets", show_progress=False)
    ds.download(str(tmp_path / "back"), prefix="sets", show_progress=False)
    assert (tmp_path / "back" / "sets" / "mnist" / "a.txt").read_text() == "A"
    run = Experiment(ws, "data").submit(
        Estimator(SCRIPTS, "read_data.py", script_params={"--data": ds.path("sets").as_mount()})
    )
    assert run.wait_for_completion()["status"] == "Completed"
    log = run._backend.read_run_file(run.id, "user_logs/std_log.txt", 0, 1 << 20).decode()
    assert "file mnist/a.txt A" in log
    # The files are in the server's folder of the workspace, not anywhere near the client.
    assert str(http_server.data_dir) in log


def test_a_member_cannot_register_a_folder_of_the_server_as_a_datastore(
    member: tuple[str, str],
) -> None:
    ws = Workspace.from_config()
    with pytest.raises(ValidationError, match="outside the folders"):
        Datastore.register(ws, "etc", "/etc")
    with pytest.raises(ValidationError):
        Datastore.register(ws, "meta", "s3://b/x", endpoint_url="http://169.254.169.254/")
    assert [d.name for d in Datastore.list(ws)] == ["workspaceblobstore"]
