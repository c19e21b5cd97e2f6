"""A run's token on a real server reaches what its run's script may reach, and no more: the
server holds it to the run's scope itself, since the script on a cluster's node can read its
supervisor's token.

Each test makes a workspace, a run of it (Running, its job given the default datastore) and
that run's token, as the server mints it for a run queued on a cluster.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelyard.backend.records import COMPLETED, RUNNING
from modelyard.backend.remote.backend import RemoteBackend
from modelyard.backend.workspace_folder import open_backend, read_workspace_file
from modelyard.errors import AuthenticationError, PermissionDeniedError
from modelyard.runner.job import JOB_FILE, JobSpec
from tests.helpers import wait_for
from tests.server_process import ServerProcess

GIVEN = "workspaceblobstore"


@dataclass
class Team:
    name: str
    folder: Path  # the workspace's folder on the server's machine
    admin: RemoteBackend
    run_id: str
    own: RemoteBackend  # the workspace as the run's token reaches it
    token: str


def run_token(server: ServerProcess, workspace: str, run_id: str) -> str:
    accounts = server.accounts()
    try:
        _record, token = accounts.create_run_token(workspace, run_id)
    finally:
        accounts.close()
    return token


def active_run_tokens(server: ServerProcess, run_id: str) -> list[str]:
    accounts = server.accounts()
    try:
        return [t.id for t in accounts.list_run_tokens() if t.run_id == run_id]
    finally:
        accounts.close()


@pytest.fixture
def team(http_server: ServerProcess) -> Team:
    name = http_server.new_workspace()
    admin = RemoteBackend(http_server.url, name, http_server.admin_token)
    folder = http_server.data_dir / "workspaces" / admin.get_workspace().id
    run = admin.create_run(f"r_{uuid.uuid4().hex[:8]}", "train", run_type="script", status=RUNNING)
    given = {"data_reference_name": "data", "datastore_name": GIVEN, "mode": "mount"}
    job = JobSpec(script="train.py", inputs=[given]).to_json().encode()
    admin.upload_run_file(run.id, JOB_FILE, io.BytesIO(job))
    token = run_token(http_server, name, run.id)
    return Team(name, folder, admin, run.id, RemoteBackend(http_server.url, name, token), token)


def test_a_run_token_reaches_its_run_and_the_runs_below_it_only(team: Team) -> None:
    other = team.admin.create_run("someone_elses", "train", run_type="script", status=RUNNING)
    team.admin.set_run_tags(other.id, {"owner": "bob"})
    for refused in (
        lambda: team.own.get_run(other.id),
        lambda: team.own.read_run_file(other.id, JOB_FILE),
        lambda: team.own.set_run_tags(other.id, {"owner": "mallory"}),
        lambda: team.own.update_run_status(other.id, COMPLETED),
        lambda: team.own.renew_lease(other.id, "w", 30.0),
        lambda: team.own.list_runs("train"),
        lambda: team.own.create_run("top_level", "train", run_type="script", status=RUNNING),
        # An existing run of another's, named as a child: create_run would return it as it
        # is, and the server does not send it.
        lambda: team.own.create_run(
            other.id, "train", run_type="script", status=RUNNING, parent_id=team.run_id
        ),
    ):
        with pytest.raises(PermissionDeniedError):
            refused()
    assert team.admin.get_run_details(other.id).tags == {"owner": "bob"}
    assert team.admin.get_run(other.id).status == RUNNING

    child = team.own.create_run(
        "child_1", "train", run_type="script", status=RUNNING, parent_id=team.run_id
    )
    grandchild = team.own.create_run(
        "grandchild_1", "train", run_type="script", status=RUNNING, parent_id=child.id
    )
    team.own.set_run_tags(grandchild.id, {"trial": "3"})
    team.own.update_run_status(grandchild.id, COMPLETED)
    assert [r.id for r in team.own.list_runs("train", parent_id=team.run_id)] == [child.id]
    assert team.admin.get_run_details(grandchild.id).tags == {"trial": "3"}
    # The supervisor's own calls on its own run.
    team.own.update_run_status(team.run_id, RUNNING)
    assert team.own.get_run(team.run_id).status == RUNNING


def test_a_run_token_registers_a_model_from_its_runs_files(team: Team) -> None:
    team.own.upload_run_file(team.run_id, "outputs/model.txt", io.BytesIO(b"weights"))
    root = team.own.stage_model_from_run("mnist", "up1", team.run_id, "outputs/model.txt")
    model = team.own.create_model("mnist", "up1", root, run_id=team.run_id)
    assert (model.name, model.version, model.run_id) == ("mnist", 1, team.run_id)
    assert team.admin.get_model("mnist", 1).run_id == team.run_id
    other = team.admin.create_run("not_its_own", "train", run_type="script", status=RUNNING)
    team.admin.upload_run_file(other.id, "outputs/model.txt", io.BytesIO(b"theirs"))
    with pytest.raises(PermissionDeniedError, match="not_its_own"):
        team.own.stage_model_from_run("mnist", "up2", other.id, "outputs/model.txt")
    with pytest.raises(PermissionDeniedError):
        team.own.delete_model("mnist", 1)


def test_a_run_token_reads_only_the_datastores_its_job_was_given(team: Team) -> None:
    other_folder = team.folder / "datastores" / "private"
    other_folder.mkdir()
    (other_folder / "secret.csv").write_text("a,b\n")
    team.admin.register_datastore("private", str(other_folder), {})
    team.admin.upload_datastore_file(GIVEN, "mnist/train.csv", io.BytesIO(b"x,y\n"))

    assert team.own.get_datastore(GIVEN).name == GIVEN
    assert [d.name for d in team.own.list_datastores()] == [GIVEN]
    assert [f.path for f in team.own.list_datastore_files(GIVEN, "mnist")] == ["mnist/train.csv"]
    for refused in (
        lambda: team.own.get_datastore("private"),
        lambda: team.own.list_datastore_files("private", ""),
        lambda: team.own.open_datastore_file("private", "secret.csv"),
        lambda: team.own.upload_datastore_file("private", "planted.csv", io.BytesIO(b"!")),
        # Nor may it give itself the datastore by rewriting its job.
        lambda: team.own.upload_run_file(team.run_id, JOB_FILE, io.BytesIO(b"{}")),
    ):
        with pytest.raises(PermissionDeniedError, match=r"private|job\.json"):
            refused()
    assert not (other_folder / "planted.csv").exists()


def test_a_run_token_is_refused_and_revoked_once_its_run_ends_outside_the_server(
    http_server: ServerProcess, team: Team
) -> None:
    """As a cluster's admission ends a run: directly in the workspace, not through the
    server. The next call with the token is refused and revokes it; a token not used again
    is revoked by the server's sweep."""
    unused_run = team.admin.create_run("unused", "train", run_type="script", status=RUNNING)
    unused = run_token(http_server, team.name, unused_run.id)
    team.own.log_metrics(team.run_id, [])
    direct = open_backend(team.folder, read_workspace_file(team.folder, team.name))
    try:
        direct.update_run_status(team.run_id, COMPLETED)
        direct.update_run_status(unused_run.id, COMPLETED)
    finally:
        direct.db.engine.dispose()
    with pytest.raises(PermissionDeniedError, match="has ended"):
        team.own.get_run(team.run_id)
    with pytest.raises(AuthenticationError):
        team.own.get_run(team.run_id)
    assert active_run_tokens(http_server, team.run_id) == []
    wait_for(lambda: active_run_tokens(http_server, unused_run.id) == [], timeout=60)
    with pytest.raises(AuthenticationError):
        RemoteBackend(http_server.url, team.name, unused).get_run(unused_run.id)
